"""The simulated fleet against a real mosquitto: native firmware, Last Will, failsafes."""

from __future__ import annotations

import time

import pytest

from firmware_bridge.simulated.fleet import Fleet, FleetDevice, FleetOptions
from lastwatt.messages import DeviceStatus, MeterReading, Setpoint, decode, encode
from lastwatt.transport import topics
from tests.mqtt_probe import Probe, wait_until

pytestmark = pytest.mark.integration
SITE = "village"
POWER_W = 36_000.0
TELEMETRY_S = 0.2


def start(mosquitto, n: int, connections: int | None, **opts) -> tuple[Probe, Fleet]:
    probe = Probe(mosquitto.port)
    devices = [FleetDevice(f"d{i}", "native", max_power_w=POWER_W) for i in range(n)]
    fleet = Fleet(f"mqtt://127.0.0.1:{mosquitto.port}", devices,
                  FleetOptions(site=SITE, telemetry_s=TELEMETRY_S, connections=connections,
                               **opts)).start()
    return probe, fleet


def send(probe: Probe, device: str, quota_wh: float, valid_s: float, round_: int = 0) -> None:
    sp = Setpoint(device, round_, True, POWER_W, quota_wh, time.time() + valid_s)
    probe.publish(topics.set_topic(SITE, device), encode(sp), retain=True)


def last_reading(probe: Probe, device: str) -> MeterReading | None:
    ps = probe.payloads(topics.meter_topic(SITE, device))
    return decode(MeterReading, ps[-1]) if ps else None


def status(probe: Probe, device: str) -> DeviceStatus | None:
    ps = probe.payloads(topics.status_topic(SITE, device))
    return decode(DeviceStatus, ps[-1]) if ps else None


def wait_for_readings(probe: Probe, devices: tuple[str, ...], n: int) -> None:
    """Wait until each of ``devices`` has sent ``n`` more meter readings than it has now."""
    before = {d: len(probe.payloads(topics.meter_topic(SITE, d))) for d in devices}
    wait_until(lambda: all(len(probe.payloads(topics.meter_topic(SITE, d))) >= before[d] + n
                           for d in devices), 5, f"{n} readings from {devices}")


def test_native_device_stops_itself_at_its_quota(mosquitto):
    probe, fleet = start(mosquitto, 1, None)
    try:
        send(probe, "d0", quota_wh=10.0, valid_s=60)
        wait_until(lambda: fleet.is_on("d0"), 5, "on")
        wait_until(lambda: not fleet.is_on("d0"), 5, "off at quota")
        assert fleet.true_energy_wh()["d0"] == pytest.approx(10.0)
        wait_until(lambda: last_reading(probe, "d0").energy_wh == pytest.approx(10.0), 5,
                   "reading of the full quota")
    finally:
        fleet.stop()
        probe.close()


def test_native_device_switches_off_at_valid_until_when_the_controller_is_silent(mosquitto):
    probe, fleet = start(mosquitto, 1, None)
    try:
        send(probe, "d0", quota_wh=1e6, valid_s=0.8)
        wait_until(lambda: fleet.is_on("d0"), 5, "on")
        wait_until(lambda: not fleet.is_on("d0"), 5, "off at valid_until")
        energy = fleet.true_energy_wh()["d0"]
        assert energy <= POWER_W * 0.8 / 3600 + 1e-6  # nothing drawn past valid_until
        wait_until(lambda: not last_reading(probe, "d0").on, 5, "off reading")
    finally:
        fleet.stop()
        probe.close()


@pytest.mark.parametrize("connections", [0, 1], ids=["per-device", "shared"])
def test_killed_device_is_announced_offline_by_its_last_will(mosquitto, connections):
    probe, fleet = start(mosquitto, 3, connections)
    try:
        wait_until(lambda: all(status(probe, f"d{i}") for i in range(3)), 5, "online")
        assert all(status(probe, f"d{i}").online for i in range(3))
        fleet.kill("d1")
        wait_until(lambda: not status(probe, "d1").online, 5, "d1 offline")
        wait_for_readings(probe, ("d0", "d2"), 3)  # the living devices report on
        n_before = len(probe.payloads(topics.meter_topic(SITE, "d1")))
        wait_for_readings(probe, ("d0", "d2"), 3)  # three telemetry periods, counted
        assert len(probe.payloads(topics.meter_topic(SITE, "d1"))) == n_before  # silent
        assert status(probe, "d0").online and status(probe, "d2").online
    finally:
        fleet.stop()
        probe.close()


def test_rebooted_native_device_resets_its_counter_and_resumes_its_retained_setpoint(mosquitto):
    probe, fleet = start(mosquitto, 1, 0)
    try:
        send(probe, "d0", quota_wh=1e6, valid_s=60)
        wait_until(lambda: fleet.is_on("d0"), 5, "on")
        wait_until(lambda: (r := last_reading(probe, "d0")) is not None and r.energy_wh > 5.0,
                   5, "energy drawn")
        fleet.reboot("d0")
        wait_until(lambda: last_reading(probe, "d0").energy_wh < 3.0, 5, "counter restarted")
        assert fleet.is_on("d0")  # the retained setpoint applies again after the boot
        assert fleet.true_energy_wh()["d0"] > 5.0  # energy before the reboot is not forgotten
    finally:
        fleet.stop()
        probe.close()


def test_dropout_silences_the_device_then_it_comes_back(mosquitto):
    probe, fleet = start(mosquitto, 1, 1)
    try:
        wait_until(lambda: status(probe, "d0") is not None, 5, "online")
        fleet.dropout("d0", 0.8)
        wait_until(lambda: not status(probe, "d0").online, 5, "offline")
        wait_until(lambda: status(probe, "d0").online, 5, "back online")
    finally:
        fleet.stop()
        probe.close()


def test_malformed_setpoints_are_counted_and_the_device_keeps_working(mosquitto):
    probe, fleet = start(mosquitto, 1, None)
    try:
        t = topics.set_topic(SITE, "d0")
        bad = [b"", b"{", b"[]", b'{"v":2}', b'{"device":"d0","round":-1}', b"x" * 5000,
               encode(Setpoint("other", 0, True, 1.0, 1.0, 1.0))]
        for b in bad:
            probe.publish(t, b)
        wait_until(lambda: sum(fleet.rejected.values()) == len(bad), 5, "all rejected")
        assert set(fleet.rejected) <= {"json", "schema", "range", "version", "oversize"}
        send(probe, "d0", quota_wh=1e6, valid_s=60)
        wait_until(lambda: fleet.is_on("d0"), 5, "still obeys a good setpoint")
        assert fleet.worker.errors == 0
    finally:
        fleet.stop()
        probe.close()


def test_command_latency_delays_the_acknowledgement(mosquitto):
    probe, fleet = start(mosquitto, 1, None, latency_s=0.5)
    try:
        wait_until(lambda: status(probe, "d0") is not None and status(probe, "d0").online, 5,
                   "online")
        sent = time.monotonic()
        send(probe, "d0", quota_wh=1e6, valid_s=60)
        wait_until(lambda: fleet.is_on("d0"), 5, "on")
        assert time.monotonic() - sent >= 0.5
    finally:
        fleet.stop()
        probe.close()
