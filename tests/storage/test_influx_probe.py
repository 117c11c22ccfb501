"""`lastwatt run --influx` against a server that will never take our points: one line naming
the setting, exit 2, before any round runs and with nothing spooled (real influxd 1.x and
VictoriaMetrics; InfluxDB 2.x cannot run here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.servers import influxd_server

pytestmark = pytest.mark.integration

ADMIN = "admin:admin-pw"


def _query(port: int, q: str, auth: str | None = ADMIN) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/query?"
                                 + urllib.parse.urlencode({"q": q}), method="POST")
    if auth:
        user, pw = auth.split(":")
        req.add_header("Authorization", "Basic " + __import__("base64").b64encode(
            f"{user}:{pw}".encode()).decode())
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


@pytest.fixture(scope="module")
def influxd_auth(tmp_path_factory):
    """influxd with authentication: an admin and a user who may write only database `allowed`."""
    srv = influxd_server(tmp_path_factory.mktemp("influxd-auth"), auth=True).start(timeout_s=60)
    _query(srv.port, "CREATE USER admin WITH PASSWORD 'admin-pw' WITH ALL PRIVILEGES", None)
    _query(srv.port, "CREATE DATABASE allowed")
    _query(srv.port, "CREATE USER writer WITH PASSWORD 'writer-pw'")
    _query(srv.port, "GRANT WRITE ON allowed TO writer")
    yield srv
    srv.stop()


def _run(tmp_path: Path, url: str, influx_toml: str,
         token: str | None) -> subprocess.CompletedProcess:
    cfg = tmp_path / "run.toml"
    cfg.write_text(f"rounds = 3\n[influx]\nspool_dir = \"{tmp_path / 'spool'}\"\n{influx_toml}\n")
    env = {k: v for k, v in os.environ.items() if k != "INFLUX_TOKEN"}
    if token:
        env["INFLUX_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "lastwatt.cli", "run", str(cfg), "--out", str(tmp_path / "runs"),
         "--influx", url, "--quiet"], capture_output=True, text=True, env=env, timeout=120)


def _assert_refused(done: subprocess.CompletedProcess, tmp_path: Path, field: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}"), done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "spool").exists() or not any((tmp_path / "spool").iterdir())
    assert not (tmp_path / "runs").exists(), "no round may run"


def test_api_v2_against_influxdb_1x_is_a_config_error(influxd, tmp_path):
    done = _run(tmp_path, f"http://127.0.0.1:{influxd.port}", 'api = "v2"', None)
    _assert_refused(done, tmp_path, "influx.api")
    assert 'api = "v1"' in done.stderr


def test_wrong_token_is_a_config_error(influxd_auth, tmp_path):
    done = _run(tmp_path, f"http://127.0.0.1:{influxd_auth.port}",
                'api = "v1"\ndatabase = "allowed"', "writer:wrong-pw")
    _assert_refused(done, tmp_path, "influx.token_env")
    assert "401" in done.stderr


def test_missing_database_the_user_cannot_create_is_a_config_error(influxd_auth, tmp_path):
    done = _run(tmp_path, f"http://127.0.0.1:{influxd_auth.port}",
                'api = "v1"\ndatabase = "absent"', "writer:writer-pw")
    _assert_refused(done, tmp_path, "influx.database")


def test_the_right_token_passes_the_probe_and_the_run_writes(influxd_auth, tmp_path):
    done = _run(tmp_path, f"http://127.0.0.1:{influxd_auth.port}",
                'api = "v1"\ndatabase = "allowed"', "writer:writer-pw")
    assert done.returncode == 0, done.stderr
    got = _query(influxd_auth.port, "SELECT count(production_wh) FROM allowed..rounds")
    assert got["results"][0]["series"][0]["values"][0][1] == 3


def test_credentials_in_the_influx_url_are_refused(tmp_path):
    done = _run(tmp_path, "http://user:secret@127.0.0.1:9/", 'api = "v1"', None)
    _assert_refused(done, tmp_path, "--influx")
    assert "secret" not in done.stderr
