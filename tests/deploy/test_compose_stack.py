"""The compose stack, run from docker-compose.yml's own files without Docker
(tests/compose_harness.py): broker, controller, bridge and simulated fleet close the loop and
their points land in the database; a broken ACL turns the broker's healthcheck red."""

from __future__ import annotations

import json
import re
import subprocess
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from tests.compose_harness import ROOT, Stack

pytestmark = pytest.mark.integration

ROUNDS = 3  # the controller's run, bounded through .env's LASTWATT_ROUNDS


def _env(tmp_path: Path) -> Path:
    env = tmp_path / ".env"
    subprocess.run(["sh", str(ROOT / "scripts/gen-env.sh"), str(env)], check=True,
                   capture_output=True, timeout=30)
    text = env.read_text()
    assert "\nLASTWATT_ROUNDS=" in text  # as a user would edit it
    env.write_text(re.sub(r"(?m)^LASTWATT_ROUNDS=.*$", f"LASTWATT_ROUNDS={ROUNDS}", text))
    return env


def _vm_series(stack: Stack, metric: str) -> list[dict]:
    stack.http_get("http://127.0.0.1:8086/internal/force_flush")
    body = stack.http_get(f"http://127.0.0.1:8086/api/v1/export?match[]={metric}")
    return [json.loads(line) for line in body.decode().splitlines()]


def _broker_up(stack: Stack) -> None:
    assert stack.run_to_completion("mosquitto-passwd") == 0, stack.logs("mosquitto-passwd")
    stack.start("mosquitto")


@pytest.fixture()
def stack(tmp_path):
    s = Stack(tmp_path, _env(tmp_path))
    s.open_network()
    yield s
    s.close()


def test_compose_stack_closes_the_loop_and_lands_every_round(stack):
    stack.start_influxdb_stand_in()
    _broker_up(stack)
    health = stack.wait_healthy("mosquitto")
    assert health.returncode == 0, health.stderr + stack.logs("mosquitto")
    for name in ("bridge", "devices"):  # depends_on: started
        stack.start(name)
    stack.start("controller")

    # the run ends by itself after ROUNDS rounds: the last one switches every device off and
    # reads its meter, so nothing the fleet drew is missing from the run's tables
    controller = stack.services["controller"].proc
    deadline = time.monotonic() + 240
    while controller.poll() is None:
        assert time.monotonic() < deadline, stack.logs("controller")[-3000:]
        for name in ("bridge", "devices", "mosquitto"):
            assert stack.services[name].proc.poll() is None, f"{name} died: " + stack.logs(name)
        time.sleep(1)
    assert controller.returncode == 0, stack.logs("controller")[-3000:]
    assert stack.healthcheck("mosquitto").returncode == 0  # still healthy after the run
    assert stack.stop("devices") is not None  # SIGTERM: the fleet logs what it drew
    stack.stop("bridge")

    run_dirs = list((stack.volumes["lastwatt-data"] / "runs").iterdir())
    assert len(run_dirs) == 1, run_dirs
    devices = pd.read_parquet(run_dirs[0] / "devices.parquet")
    rounds = devices["round"].nunique()
    assert rounds == ROUNDS
    # every device of the compose village was online and switched every round
    assert set(devices["device"]) == {f"plug-{i:02d}" for i in range(20)}
    assert (devices["online"] == 1).all()

    # per device, the run's metered energy against what its simulated load really drew (the
    # fleet's own integral over the whole run, logged at exit): within 1 %
    fleet_log = stack.logs("devices")
    assert "DENIED" not in fleet_log and "simulated devices up" in fleet_log, fleet_log
    drawn = json.loads(re.search(r"energy drawn \(Wh\): (\{.*\})", fleet_log).group(1))
    metered = devices.groupby("device")["metered_wh"].sum()
    quota = devices.groupby("device")["quota_wh"].sum()
    assert set(drawn) == set(metered.index)
    village = tomllib.loads((ROOT / "deploy/compose/village.toml").read_text())
    dialect = {d["id"]: d["dialect"] for d in village["devices"]["map"]}
    # energy reached plugs of every dialect (native; Tasmota and Shelly through the bridge)
    assert {dialect[d] for d in metered.index if metered[d] > 0} == set(dialect.values())
    off = [d for d in metered.index if abs(metered[d] - drawn[d]) > 0.01 * drawn[d]]
    assert not off, {d: (metered[d], drawn[d]) for d in off}
    for device, wh in metered.items():
        assert (wh > 0) == (quota[device] > 0), device

    # points counted in the database: one per device and round, values equal to the run's
    series = _vm_series(stack, "devices_metered_wh")
    per_device = {s["metric"]["device"]: s["values"] for s in series}
    assert set(per_device) == set(metered.index)
    for device, values in per_device.items():
        assert len(values) == rounds, device
        assert sum(values) == pytest.approx(metered[device], rel=1e-9, abs=1e-9)
    assert len(_vm_series(stack, "rounds_production_wh")[0]["values"]) == rounds
    assert "Denied PUBLISH" not in stack.logs("mosquitto")


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    acl = tmp_path / "acl"
    text = (ROOT / "deploy/mosquitto/acl").read_text()
    assert old in text
    acl.write_text(text.replace(old, new))
    return acl


@pytest.mark.parametrize("old, new", [
    ("village", "farm"),  # the ACL of another site: every rule misses
    ("user health\n", "user lastwatt-health\n"),  # names no account compose creates
], ids=["other-site", "unknown-account"])
def test_a_broken_acl_turns_the_broker_healthcheck_red(tmp_path, old, new):
    stack = Stack(tmp_path, _env(tmp_path),
                  replace_files={"./deploy/mosquitto/acl": _broken(tmp_path, old, new)})
    stack.open_network()
    try:
        _broker_up(stack)
        # the broker runs and accepts the login: only the round trip can tell
        time.sleep(1.0)
        assert stack.services["mosquitto"].proc.poll() is None, stack.logs("mosquitto")
        done = stack.healthcheck("mosquitto")
        assert done.returncode != 0
        # red by the script's verdict, or by compose's timeout on a machine under load
        assert "round trip failed" in done.stderr or done.stderr == "healthcheck timeout"
    finally:
        stack.close()


def test_the_healthcheck_passes_with_the_acl_as_shipped(stack):
    _broker_up(stack)
    done = stack.wait_healthy("mosquitto")
    assert done.returncode == 0, done.stderr + stack.logs("mosquitto")
