"""SIGKILL in the middle of a spool flush, five times: no point lost, none stored twice
(counted in a real influxd), and the flushed spool gives its disk space back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from lastwatt.config.influx import InfluxConfig
from lastwatt.storage.influx import make_influx_recorder
from tests.servers import influxd_server, wait_for
from tests.storage.test_storage_influx import count_points
from tests.storage_data import expected_points, make_meta, make_rounds

pytestmark = pytest.mark.integration

ROUNDS = 1200  # enough batches that every kill lands mid-flush on a fast machine
KILLS = 5

FLUSHER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from lastwatt.storage.influx import make_influx_recorder
    from lastwatt.config.influx import InfluxConfig
    from tests.storage_data import make_meta
    cfg = InfluxConfig(api="v1", database="spoolkill", spool_dir=Path(sys.argv[2]),
                       batch_size=50, max_retries=0, close_timeout_s=120)
    rec = make_influx_recorder(sys.argv[1], cfg)
    rec.open(make_meta("flusher"))   # no rounds of its own: it only flushes the spool
    rec.close({}, None)
""")


def _spool_points(spool_dir) -> int:
    import sqlite3
    (path,) = spool_dir.glob("*.sqlite")
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT COALESCE(SUM(points), 0) FROM batch").fetchone()[0]
    finally:
        db.close()


def test_sigkill_during_spool_flush_loses_and_duplicates_nothing(tmp_path):
    (tmp_path / "srv").mkdir()
    srv = influxd_server(tmp_path / "srv")  # not started: the first run spools everything
    url = f"http://127.0.0.1:{srv.port}"
    spool_dir = tmp_path / "spool"
    meta = make_meta("killed")
    cfg = InfluxConfig(api="v1", database="spoolkill", spool_dir=spool_dir, batch_size=50,
                       max_retries=0, close_timeout_s=0, timeout_ms=300, flush_interval_ms=10)
    rec = make_influx_recorder(url, cfg)
    rec.open(meta)
    for r in make_rounds(meta, ROUNDS):
        rec.record(r)
    rec.close({}, None)
    total = expected_points(meta, ROUNDS)
    assert rec.stats["in_spool"] == total
    full_size = next(spool_dir.glob("*.sqlite")).stat().st_size

    srv.start(timeout_s=60)
    try:
        env = os.environ | {"PYTHONPATH": str(os.getcwd())}
        kills = 0
        for _ in range(KILLS):
            before = _spool_points(spool_dir)
            proc = subprocess.Popen([sys.executable, "-c", FLUSHER, url, str(spool_dir)], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # mid-flush: some batches are in the database, others still in the spool
            wait_for(lambda b=before, p=proc: 0 < _spool_points(spool_dir) < b
                     or p.poll() is not None,
                     60, "flush under way")
            if proc.poll() is None:  # at once: a pause could let a fast flush finish
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
            proc.wait(10)
        assert kills == KILLS, "the spool was flushed before every kill: make it bigger"
        assert 0 < _spool_points(spool_dir) < total
        done = subprocess.run([sys.executable, "-c", FLUSHER, url, str(spool_dir)], env=env,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        assert _spool_points(spool_dir) == 0
        # a batch re-sent after a kill overwrites the same points (same series and time)
        assert count_points(srv.port, "spoolkill", meta.run_id) == total
        assert next(spool_dir.glob("*.sqlite")).stat().st_size < full_size / 10
    finally:
        srv.stop()
