"""The durable spool: ordered, survives reopening, refuses loudly past its limit."""

from __future__ import annotations

import logging

import pytest

from lastwatt.config.influx import InfluxConfig
from lastwatt.errors import InputError, ServiceError
from lastwatt.storage.influx import make_influx_recorder
from lastwatt.storage.spool import Spool, SpoolFull
from tests.servers import free_port
from tests.storage_data import expected_points, make_meta, make_rounds


def test_spool_returns_batches_oldest_first_across_reopen(tmp_path):
    spool = Spool(tmp_path / "s.sqlite", limit_bytes=10_000)
    for i in range(5):
        spool.push(f"m v={i} {i}".encode(), points=1)
    head = spool.peek()
    assert head is not None and head[1] == b"m v=0 0"
    spool.pop(head[0])
    spool.close()

    reopened = Spool(tmp_path / "s.sqlite", limit_bytes=10_000)
    assert (len(reopened), reopened.points) == (4, 4)
    bodies = []
    while (head := reopened.peek()) is not None:
        bodies.append(head[1])
        reopened.pop(head[0])
    assert bodies == [f"m v={i} {i}".encode() for i in range(1, 5)]
    assert (reopened.bytes, reopened.points) == (0, 0)


def test_spool_refuses_a_batch_past_its_limit_and_keeps_the_earlier_ones(tmp_path):
    spool = Spool(tmp_path / "s.sqlite", limit_bytes=100)
    spool.push(b"x" * 60, points=6)
    with pytest.raises(SpoolFull, match=r"influx\.spool_limit_mb"):
        spool.push(b"y" * 60, points=6)
    assert (len(spool), spool.points, spool.bytes) == (1, 6, 60)


def _unreachable_cfg(tmp_path, **kw) -> InfluxConfig:
    return InfluxConfig(api="v1", spool_dir=tmp_path / "spool", max_retries=0,
                        retry_interval_ms=10, max_retry_delay_ms=20, timeout_ms=200,
                        flush_interval_ms=10, batch_size=50, close_timeout_s=0, **kw)


def test_unreachable_server_spools_every_point_and_drops_none(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    rec = make_influx_recorder(url, _unreachable_cfg(tmp_path))
    meta = make_meta()
    rec.open(meta)
    for r in make_rounds(meta, 30):
        rec.record(r)
    rec.close({}, None)
    total = expected_points(meta, 30)
    assert rec.stats["spooled"] == rec.stats["in_spool"] == total
    assert rec.stats["written"] == rec.stats["dropped"] == 0


def test_full_spool_counts_dropped_points_and_close_fails_loudly(tmp_path, caplog):
    url = f"http://127.0.0.1:{free_port()}"
    rec = make_influx_recorder(url, _unreachable_cfg(tmp_path, spool_limit_mb=0.005))
    meta = make_meta()
    rec.open(meta)
    for r in make_rounds(meta, 60):
        rec.record(r)
    with caplog.at_level(logging.ERROR), pytest.raises(ServiceError) as err:
        rec.close({}, None)
    assert not isinstance(err.value, InputError)  # a service failure (exit 3), not bad input
    assert rec.stats["dropped"] > 0
    assert rec.stats["spooled"] + rec.stats["dropped"] == expected_points(meta, 60)
    assert "points dropped" in str(err.value) and "influx.spool_limit_mb" in str(err.value)
    assert any("DROPPED" in r.message for r in caplog.records)
