"""The installed ``lastwatt-bridge`` and ``lastwatt devices`` commands, run as a user would:
help, bad input as one line with exit code 2, and a short run against a real mosquitto that
ends cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sysconfig
from pathlib import Path

import pytest

from lastwatt.messages import DeviceStatus, MeterReading, decode
from lastwatt.transport import topics
from tests.mqtt_probe import Probe, wait_until

SCRIPTS = Path(sysconfig.get_path("scripts"))
BRIDGE = str(SCRIPTS / "lastwatt-bridge")
LASTWATT = str(SCRIPTS / "lastwatt")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bridge.toml"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_bridge_help_names_its_options():
    proc = run(BRIDGE, "--help")
    assert proc.returncode == 0
    assert "--config" in proc.stdout and "--mqtt" in proc.stdout


@pytest.mark.parametrize(("toml", "named"), [
    ("poll_s = -1\n", "poll_s"),
    ("site = 'village'\nsurprise = 1\n", "surprise"),
    ("[[devices]]\nid = 'p1'\nbusiness = 0\ndialect = 'zigbee'\n", "devices.0.dialect"),
    ("[tasmota]\nfull_topic = 'tasmota/%topic%'\n", "tasmota.full_topic"),
])
def test_bad_bridge_config_is_one_line_naming_the_field_and_exit_2(tmp_path, toml, named):
    cfg = tmp_path / "bridge.toml"
    cfg.write_text(toml)
    assert named in one_line_error(run(BRIDGE, "--config", str(cfg), "--mqtt",
                                       "mqtt://127.0.0.1:1"))


def test_bridge_without_a_broker_or_with_a_bad_url_is_one_line_exit_2(tmp_path):
    cfg = tmp_path / "bridge.toml"
    cfg.write_text("site = 'village'\n")
    assert "--mqtt" in one_line_error(run(BRIDGE, "--config", str(cfg)))
    assert "--mqtt" in one_line_error(run(BRIDGE, "--config", str(cfg), "--mqtt", "http://x"))
    assert "not found" in one_line_error(run(BRIDGE, "--config", str(tmp_path / "none.toml")))


@pytest.mark.parametrize("args", [
    ("--dialect", "zigbee"), ("--count", "0"), ("--telemetry-s", "-1"), ("--latency-s", "-1"),
])
def test_devices_bad_argument_is_one_line_exit_2(args):
    assert args[0] in one_line_error(run(LASTWATT, "devices", "--mqtt", "mqtt://127.0.0.1:1",
                                         *args))


def test_devices_bad_broker_url_is_one_line_exit_2():
    assert "--mqtt" in one_line_error(run(LASTWATT, "devices", "--mqtt", "ftp://127.0.0.1"))


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(30) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.mark.integration
def test_bridge_serves_the_example_config_and_stops_on_sigterm(mosquitto):
    probe = Probe(mosquitto.port)
    probe.publish("tele/tasmota_3A4F1C/LWT", b"Online", retain=True)  # as Tasmota does
    proc = subprocess.Popen([BRIDGE, "--config", str(EXAMPLE), "--mqtt",
                             f"mqtt://127.0.0.1:{mosquitto.port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        status = topics.status_topic("village", "b003-plug")
        wait_until(lambda: probe.payloads(status), 60, "native status from the bridge")
        assert decode(DeviceStatus, probe.payloads(status)[-1]).online
        wait_until(lambda: probe.payloads("cmnd/tasmota_3A4F1C/TelePeriod"), 10, "setup")
        assert probe.payloads("cmnd/tasmota_3A4F1C/TelePeriod") == [b"10"]  # from the example
    finally:
        _stop(proc)
        probe.close()


@pytest.mark.integration
def test_devices_runs_a_fleet_that_reports_and_says_goodbye_on_sigterm(mosquitto):
    probe = Probe(mosquitto.port)
    proc = subprocess.Popen([LASTWATT, "devices", "--mqtt", f"mqtt://127.0.0.1:{mosquitto.port}",
                             "--count", "3", "--telemetry-s", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        meter = topics.meter_topic("village", "sim-00002")
        wait_until(lambda: len(probe.payloads(meter)) >= 2, 60, "telemetry from the fleet")
        assert decode(MeterReading, probe.payloads(meter)[-1]).device == "sim-00002"
    finally:
        _stop(proc)
    status = topics.status_topic("village", "sim-00002")
    assert not decode(DeviceStatus, probe.payloads(status)[-1]).online  # the goodbye
    probe.close()
