"""The InfluxDB sinks against real servers: influxd 1.x (v1 /write) and VictoriaMetrics
(v2 write API through influxdb_client). Every point arrives, with the recorded values."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from lastwatt.config.influx import InfluxConfig
from lastwatt.errors import ConfigError
from lastwatt.result import BUSINESS_FIELDS, ROUND_FIELDS
from lastwatt.storage.influx import make_influx_recorder
from tests.servers import influxd_server, wait_for
from tests.storage_data import START_TS, expected_points, make_meta, make_rounds

pytestmark = pytest.mark.integration


def influxql(port: int, q: str, db: str = "lastwatt") -> list[dict]:
    query = urllib.parse.urlencode({"db": db, "q": q, "epoch": "ms"})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/query?{query}", timeout=10) as r:
        result = json.load(r)["results"][0]
    assert "error" not in result, result
    return result.get("series", [])


def count_points(port: int, db: str, run: str) -> int:
    total = 0
    for m, field in (("rounds", "production_wh"), ("businesses", "stake_tokens"),
                     ("staker_policies", "stakers"), ("devices", "power_w")):
        series = influxql(port, f"SELECT count({field}) FROM {m} WHERE run = '{run}'", db)
        total += series[0]["values"][0][1] if series else 0
    return total


def fast_cfg(tmp_path, **kw) -> InfluxConfig:
    base = dict(api="v1", spool_dir=tmp_path / "spool", batch_size=200, flush_interval_ms=50,
                timeout_ms=2000, max_retries=1, retry_interval_ms=50, max_retry_delay_ms=300)
    return InfluxConfig(**(base | kw))


def write_run(url, cfg, meta, rounds):
    rec = make_influx_recorder(url, cfg)
    rec.open(meta)
    for r in rounds:
        rec.record(r)
    rec.close({}, None)
    return rec


def assert_rounds_equal(port, db, meta, rounds, offset_s=0.0):
    cols = ", ".join(ROUND_FIELDS)
    series = influxql(port, f"SELECT {cols} FROM rounds WHERE run = '{meta.run_id}'", db)
    got = np.array(series[0]["values"], dtype=float)  # NULL -> nan
    assert got[:, 0].tolist() == [round((r.start_ts + offset_s) * 1000) for r in rounds]
    want = np.array([[r.scalars[f] for f in ROUND_FIELDS] for r in rounds])
    np.testing.assert_array_equal(got[:, 1:], want)


def test_v1_sink_delivers_every_point_with_the_recorded_values(influxd, tmp_path):
    meta, url = make_meta("v1-values"), f"http://127.0.0.1:{influxd.port}"
    rounds = make_rounds(meta, 40)
    rec = write_run(url, fast_cfg(tmp_path, database="values"), meta, rounds)
    n = expected_points(meta, 40)
    assert rec.stats["written"] == n and rec.stats["spooled"] == rec.stats["dropped"] == 0
    assert count_points(influxd.port, "values", meta.run_id) == n
    assert_rounds_equal(influxd.port, "values", meta, rounds)
    cols = ", ".join(BUSINESS_FIELDS)
    series = influxql(influxd.port, f"SELECT {cols} FROM businesses WHERE run = '{meta.run_id}' "
                      f"AND business = 'shop 1'", "values")
    got = np.array(series[0]["values"], dtype=float)[:, 1:]
    np.testing.assert_array_equal(got, [[r.business[f][1] for f in BUSINESS_FIELDS]
                                        for r in rounds])


def test_start_date_puts_round_zero_of_a_headless_run_there(influxd, tmp_path):
    meta, url = make_meta("shifted"), f"http://127.0.0.1:{influxd.port}"
    rounds = make_rounds(meta, 5)
    start = datetime(2031, 6, 1, tzinfo=UTC)
    write_run(url, fast_cfg(tmp_path, database="shifted", start=start), meta, rounds)
    assert_rounds_equal(influxd.port, "shifted", meta, rounds, start.timestamp() - START_TS)


def vm_export(port: int, match: str) -> list[dict]:
    urllib.request.urlopen(f"http://127.0.0.1:{port}/internal/force_flush", timeout=10).read()
    query = urllib.parse.urlencode({"match[]": match})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/export?{query}",
                                timeout=10) as r:
        return [json.loads(line) for line in r.read().decode().splitlines()]


def test_v2_sink_through_influxdb_client_delivers_every_point(victoria_metrics, tmp_path):
    meta, url = make_meta("v2-values"), f"http://127.0.0.1:{victoria_metrics.port}"
    rounds = make_rounds(meta, 30)
    # VictoriaMetrics keeps one month by default: put the run inside it
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    rec = write_run(url, fast_cfg(tmp_path, api="v2", start=start), meta, rounds)
    assert rec.stats["written"] == expected_points(meta, 30)
    # VictoriaMetrics stores each field as its own series: <measurement>_<field>
    exported = vm_export(victoria_metrics.port, f'{{run="{meta.run_id}"}}')
    per_metric = {}
    for s in exported:
        per_metric.setdefault(s["metric"]["__name__"], 0)
        per_metric[s["metric"]["__name__"]] += len(s["values"])
    assert per_metric["rounds_production_wh"] == 30
    assert per_metric["businesses_stake_tokens"] == 30 * len(meta.business_names)
    assert per_metric["staker_policies_stakers"] == 30 * len(meta.policy_names)
    assert per_metric["devices_power_w"] == 30 * len(meta.device_dialects)
    assert per_metric["rounds_efficiency"] == 24  # every 5th round has no efficiency
    prod = next(s for s in exported if s["metric"]["__name__"] == "rounds_production_wh")
    offset_ms = round((start.timestamp() - START_TS) * 1000)
    assert prod["timestamps"] == [round(r.start_ts * 1000) + offset_ms for r in rounds]
    np.testing.assert_allclose(prod["values"], [r.scalars["production_wh"] for r in rounds],
                               rtol=1e-11)


def test_influxd_killed_mid_run_loses_no_point_and_the_run_never_stalls(tmp_path):
    (tmp_path / "srv").mkdir()
    srv = influxd_server(tmp_path / "srv").start(timeout_s=60)
    try:
        meta, url = make_meta("crash"), f"http://127.0.0.1:{srv.port}"
        rounds = make_rounds(meta, 90)
        rec = make_influx_recorder(url, fast_cfg(tmp_path, database="crash", batch_size=60))
        rec.open(meta)
        for r in rounds[:30]:
            rec.record(r)
        wait_for(lambda: rec.stats["written"] == expected_points(meta, 30), 20, "first rounds")
        srv.kill()
        for r in rounds[30:60]:  # the database is down: these must not block
            rec.record(r)
        wait_for(lambda: rec.stats["spooled"] > 0, 20, "spooling")
        srv.start(timeout_s=60)  # several rounds later, same port and data
        for r in rounds[60:]:
            rec.record(r)
        rec.close({}, None)
        st = rec.stats
        assert st["dropped"] == st["rejected"] == st["in_spool"] == 0
        assert st["flushed"] == st["spooled"] > 0
        assert st["written"] + st["flushed"] == expected_points(meta, 90)
        assert count_points(srv.port, "crash", meta.run_id) == expected_points(meta, 90)
        assert_rounds_equal(srv.port, "crash", meta, rounds)  # all rounds, in time order
    finally:
        srv.stop()


def test_spool_left_by_a_run_goes_out_first_with_the_next_run(tmp_path):
    (tmp_path / "srv").mkdir()
    srv = influxd_server(tmp_path / "srv")  # not started: the first run finds no server
    url = f"http://127.0.0.1:{srv.port}"
    cfg = fast_cfg(tmp_path, database="later", close_timeout_s=0, max_retries=0)
    first, second = make_meta("first"), make_meta("second")
    rec = write_run(url, cfg, first, make_rounds(first, 10))
    assert rec.stats["in_spool"] == expected_points(first, 10)
    srv.start(timeout_s=60)
    try:
        rec2 = write_run(url, cfg, second, make_rounds(second, 10, seed=1))
        assert rec2.stats["flushed"] == expected_points(first, 10)
        assert rec2.stats["in_spool"] == 0
        assert count_points(srv.port, "later", "first") == expected_points(first, 10)
        assert count_points(srv.port, "later", "second") == expected_points(second, 10)
    finally:
        srv.stop()


def test_record_returns_at_once_while_the_database_hangs(tmp_path):
    """A server that accepts connections but never answers: the run still finishes."""
    import socket
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        url = f"http://127.0.0.1:{hung.getsockname()[1]}"
        cfg = fast_cfg(tmp_path, timeout_ms=5000, close_timeout_s=0, max_retries=0)
        meta = make_meta("hung")
        rec = make_influx_recorder(url, cfg)
        rec.open(meta)
        t0 = time.monotonic()
        for r in make_rounds(meta, 200):
            rec.record(r)
        recorded_s = time.monotonic() - t0
        rec.close({}, None)
    # behaviour, not speed: all 200 rounds were accepted long before one request timed out
    assert recorded_s < 5.0
    assert rec.stats["spooled"] == expected_points(meta, 200)


def test_influx_url_and_token_file_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="--influx: not an http"):
        make_influx_recorder("influx.local:8086", InfluxConfig())
    with pytest.raises(ConfigError, match=r"influx\.token_file: cannot read"):
        make_influx_recorder("http://localhost:8086",
                             InfluxConfig(token_file=tmp_path / "missing"))


def test_short_simulation_through_v1_equals_the_run_files(influxd, tmp_path):
    import pandas as pd

    from lastwatt.config import Config
    from lastwatt.simulation import run_simulation

    cfg = Config().with_overrides(rounds=48)
    rec = make_influx_recorder(f"http://127.0.0.1:{influxd.port}",
                               fast_cfg(tmp_path, database="simulated"))
    out = run_simulation(cfg, tmp_path / "runs", [rec])
    run_id = out.run_dir.name
    assert rec.stats["dropped"] == rec.stats["spooled"] == 0
    assert rec.stats["written"] == count_points(influxd.port, "simulated", run_id)

    rounds = pd.read_parquet(out.run_dir / "rounds.parquet")
    cols = ", ".join(ROUND_FIELDS)
    series = influxql(influxd.port, f"SELECT {cols} FROM rounds WHERE run = '{run_id}'",
                      "simulated")
    got = np.array(series[0]["values"], dtype=float)
    np.testing.assert_array_equal(got[:, 0], np.round(rounds["ts"].to_numpy() * 1000))
    np.testing.assert_array_equal(got[:, 1:], rounds[list(ROUND_FIELDS)].to_numpy(float))

    businesses = pd.read_parquet(out.run_dir / "businesses.parquet")
    series = influxql(influxd.port, "SELECT stake_tokens, metered_wh FROM businesses "
                      f"WHERE run = '{run_id}' GROUP BY business", "simulated")
    assert len(series) == cfg.businesses.count
    got = {s["tags"]["business"]: np.array(s["values"], dtype=float)[:, 1:] for s in series}
    for name, rows in businesses.groupby("business"):
        np.testing.assert_array_equal(got[str(name)],
                                      rows[["stake_tokens", "metered_wh"]].to_numpy(float))
