"""`written` means confirmed stored: at the end of a run the recorder reads back this run's
point count from the server, and `lastwatt run` warns about any difference. Against real
influxd 1.x and VictoriaMetrics, one of them dropping points outside its retention."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lastwatt.config.influx import InfluxConfig
from lastwatt.storage.influx import make_influx_recorder
from tests.servers import victoria_metrics_server
from tests.storage_data import expected_points, make_meta, make_rounds

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def vm_short_retention(tmp_path_factory):
    """VictoriaMetrics keeping one day: a run stamped in 2020 is accepted, then dropped."""
    srv = victoria_metrics_server(tmp_path_factory.mktemp("vm-1d"),
                                  "-retentionPeriod=1d").start(timeout_s=30)
    yield srv
    srv.stop()


def _record(url: str, cfg: InfluxConfig, run: str, rounds: int, start_ts: float):
    meta = make_meta(run, businesses=4, devices=2)
    rec = make_influx_recorder(url, cfg)
    rec.open(meta)
    for r in make_rounds(meta, rounds, start_ts=start_ts):
        rec.record(r)
    rec.close({}, None)
    return rec, expected_points(meta, rounds)


def _cfg(tmp_path: Path, **kw) -> InfluxConfig:
    return InfluxConfig(spool_dir=tmp_path / "spool", flush_interval_ms=50, **kw)


def test_influxd_confirms_every_point_of_the_run(influxd, tmp_path):
    rec, n = _record(f"http://127.0.0.1:{influxd.port}", _cfg(tmp_path, api="v1",
                     database="confirm"), "confirm-v1", 12, 1_767_225_600.0)
    assert rec.confirmation.sent == rec.confirmation.stored == n  # 12 x (1 + 4 + 2 + 2)
    assert rec.confirmation.missing == 0


def test_victoria_metrics_confirms_a_run_inside_its_retention(vm_short_retention, tmp_path):
    recent = (datetime.now(UTC) - timedelta(hours=6)).timestamp()
    rec, n = _record(f"http://127.0.0.1:{vm_short_retention.port}", _cfg(tmp_path),
                     "confirm-vm-recent", 4, recent)
    assert rec.stats["written"] == n
    assert rec.confirmation.stored == n and rec.confirmation.how == "/api/v1/export"


def test_victoria_metrics_outside_retention_accepts_but_confirms_nothing(vm_short_retention,
                                                                         tmp_path):
    old = datetime(2020, 1, 1, tzinfo=UTC).timestamp()
    rec, n = _record(f"http://127.0.0.1:{vm_short_retention.port}", _cfg(tmp_path),
                     "confirm-vm-2020", 4, old)
    assert rec.stats["written"] == n  # HTTP 204 for every batch
    assert rec.confirmation.sent == n and rec.confirmation.stored == 0


def _run_cli(tmp_path: Path, url: str, toml: str, influx: str,
             *args: str) -> subprocess.CompletedProcess:
    cfg = tmp_path / "run.toml"
    cfg.write_text(f"rounds = 3\n{toml}\n[influx]\nspool_dir = \"{tmp_path / 'spool'}\"\n"
                   f"{influx}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("INFLUX_TOKEN",
                                                            "LASTWATT_GRAFANA_URL")}
    return subprocess.run(
        [sys.executable, "-m", "lastwatt.cli", "run", str(cfg), "--out", str(tmp_path / "runs"),
         "--influx", url, "--quiet", *args], capture_output=True, text=True, env=env,
        timeout=180)


def test_cli_warns_when_the_server_keeps_fewer_points_than_were_sent(vm_short_retention,
                                                                      tmp_path):
    done = _run_cli(tmp_path, f"http://127.0.0.1:{vm_short_retention.port}",
                    '[time]\nstart = 2020-06-01T00:00:00Z', "")
    assert done.returncode == 0, done.stderr
    warning = re.search(r"warning: influx: sent (\d+) points, the server holds 0 \((\d+) "
                        "missing", done.stderr)
    assert warning and warning[1] == warning[2] and int(warning[1]) > 0, done.stderr
    assert "grafana: http://localhost:3000/d/lastwatt-overview/" in done.stdout


def test_cli_says_every_point_is_confirmed_when_influxd_holds_them(influxd, tmp_path):
    done = _run_cli(tmp_path, f"http://127.0.0.1:{influxd.port}", "",
                    'api = "v1"\ndatabase = "confirm-cli"', "--grafana", "http://127.0.0.1:3999/")
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr
    stats = re.search(r"'written': (\d+)", done.stdout)
    assert f"influx: {stats[1]} points confirmed stored" in done.stdout
    assert "grafana: http://127.0.0.1:3999/d/lastwatt-overview/" in done.stdout
