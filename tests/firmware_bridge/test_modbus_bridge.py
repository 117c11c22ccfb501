"""The bridge against simulated Modbus TCP relays + SDM120 meters on pymodbus servers
(real Modbus TCP on loopback) and a real mosquitto."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware_bridge.bridge import Bridge
from firmware_bridge.simulated.modbus import ModbusFleet, ModbusFleetOptions
from lastwatt.config import DeviceEntry
from lastwatt.config.bridge import BridgeConfig, load_bridge_config
from lastwatt.config.modbus import ModbusDevice, ModbusOptions
from lastwatt.errors import ConfigError
from lastwatt.messages import DeviceStatus, MeterReading, Setpoint, decode, encode
from lastwatt.transport import topics
from tests.mqtt_probe import Probe, wait_until
from tests.servers import free_port

pytestmark = pytest.mark.integration
SITE = "village"
POWER_W = 36_000.0  # 10 Wh per second
INTERVAL_S = 0.2  # the bridge's metering interval: 2 Wh between readings
OPTIONS = ModbusOptions(interval_s=INTERVAL_S, timeout_s=0.3, offline_after=2,
                        startup_grace_s=0.5)


def bridge_for(fleet: ModbusFleet, url: str, **options) -> Bridge:
    entries, modbus = fleet.bridge_devices()
    mb = OPTIONS.model_copy(update={"devices": modbus, **options})
    return Bridge(BridgeConfig(site=SITE, poll_s=0, devices=entries, modbus=mb), url).start()


@pytest.fixture()
def loop(mosquitto):
    url = f"mqtt://127.0.0.1:{mosquitto.port}"
    probe = Probe(mosquitto.port)
    fleet = ModbusFleet([("m1", POWER_W), ("m2", POWER_W)]).start()
    bridge = bridge_for(fleet, url)
    yield probe, fleet, bridge, url
    bridge.stop()
    fleet.stop()
    probe.close()


def send(probe: Probe, device: str, round_: int, quota_wh: float, valid_s: float) -> float:
    valid_until = time.time() + valid_s
    sp = Setpoint(device, round_, quota_wh > 0, 3600.0, quota_wh, valid_until)
    probe.publish(topics.set_topic(SITE, device), encode(sp), retain=True)
    return valid_until


def readings(probe: Probe, device: str) -> list[MeterReading]:
    return [decode(MeterReading, p) for p in probe.payloads(topics.meter_topic(SITE, device))]


def test_relay_stops_at_quota_within_one_metering_interval_and_meters_true_energy(loop):
    probe, fleet, bridge, _ = loop
    for dev in ("m1", "m2"):
        send(probe, dev, 0, quota_wh=25.0, valid_s=60)
    wait_until(lambda: fleet.is_on("m1") and fleet.is_on("m2"), 5, "relays on")
    wait_until(lambda: not fleet.is_on("m1") and not fleet.is_on("m2"), 10, "relays off")
    time.sleep(3 * INTERVAL_S)
    true_wh = fleet.true_energy_wh()
    interval_wh = POWER_W * INTERVAL_S / 3600
    for dev in ("m1", "m2"):
        assert 25.0 - interval_wh <= true_wh[dev] <= 25.0 + interval_wh, (dev, true_wh[dev])
        last = readings(probe, dev)[-1]
        # float32 kWh registers: far below a milli-Wh at these totals
        assert last.energy_wh == pytest.approx(true_wh[dev], abs=1e-3)
        assert not last.on
    assert bridge.worker.errors == 0


def test_silent_controller_relay_off_by_valid_until_plus_one_polling_interval(loop):
    probe, fleet, bridge, _ = loop
    valid_until = send(probe, "m1", 0, quota_wh=1e6, valid_s=1.0)
    wait_until(lambda: fleet.is_on("m1"), 5, "relay on")
    wait_until(lambda: not fleet.is_on("m1"), 5, "relay off")
    assert time.time() <= valid_until + INTERVAL_S
    # the bridge counts the stop when it runs (valid_until) or reads it (the relay's timer)
    wait_until(lambda: bridge.counts["valid_until_off"] + bridge.counts["timer_off"] >= 1,
               INTERVAL_S + 1, "the stop counted")


def test_relay_switched_on_by_hand_is_switched_off_within_a_poll(loop):
    _, fleet, bridge, _ = loop
    wait_until(lambda: bridge.worker.call(lambda: bridge.devices["m1"].on) is False, 5,
               "relay state known")
    fleet.press("m1", True)
    wait_until(lambda: not fleet.is_on("m1"), 3 * INTERVAL_S + 1, "switched off again")


@pytest.mark.parametrize(("fault", "kinds"), [
    ("garbage", {"modbus_garbage"}),
    # swapped words read as a negative or absurd float (word_order) or as a value that no
    # load could have drawn since the last reading (implausible)
    ("word_order", {"modbus_word_order", "modbus_implausible"}),
    ("illegal_address", {"modbus_illegal_address"}), ("device_busy", {"modbus_device_busy"}),
    ("timeout", {"modbus_timeout"})])
def test_faulty_meter_is_counted_reported_offline_and_never_stops_the_bridge(loop, fault,
                                                                            kinds):
    probe, fleet, bridge, _ = loop
    status = topics.status_topic(SITE, "m1")
    send(probe, "m1", 0, quota_wh=5.0, valid_s=60)  # some energy on the register first
    wait_until(lambda: probe.payloads(status), 5, "online status")
    wait_until(lambda: readings(probe, "m1") and readings(probe, "m1")[-1].energy_wh >= 4.0
               and not readings(probe, "m1")[-1].on, 5, "quota drawn")
    before = readings(probe, "m1")[-1].energy_wh
    fleet.set_fault("m1", fault)
    wait_until(lambda: sum(bridge.rejected[k] for k in kinds) >= 2, 10, f"{kinds} counted")
    wait_until(lambda: not decode(DeviceStatus, probe.payloads(status)[-1]).online, 5, "offline")
    send(probe, "m2", 0, quota_wh=1e6, valid_s=60)  # the other device is served as before
    wait_until(lambda: fleet.is_on("m2"), 5, "m2 still switched")
    # nothing of the garbage reached the native counter
    assert readings(probe, "m1")[-1].energy_wh == before
    fleet.set_fault("m1", None)
    wait_until(lambda: decode(DeviceStatus, probe.payloads(status)[-1]).online, 10, "online")
    assert bridge.worker.errors == 0


def test_restarted_bridge_keeps_a_relay_its_setpoint_wants_on_and_continues_the_counter(
        loop):
    probe, fleet, bridge, url = loop
    send(probe, "m1", 0, quota_wh=1e6, valid_s=60)
    wait_until(lambda: fleet.is_on("m1"), 5, "relay on")
    time.sleep(0.5)
    bridge.stop()  # the relay keeps its state while no bridge runs
    time.sleep(0.5)
    assert fleet.is_on("m1")
    n_before = len(readings(probe, "m1"))
    restarted = bridge_for(fleet, url)
    try:
        # the restarted bridge reads the relay, then applies the retained setpoint: never off
        deadline = time.monotonic() + 2 * OPTIONS.startup_grace_s + 1
        while time.monotonic() < deadline:
            assert fleet.is_on("m1")
            time.sleep(0.02)
        wait_until(lambda: restarted.worker.call(lambda: restarted.devices["m1"].want_on), 5,
                   "setpoint applied")
        time.sleep(0.5)
    finally:
        restarted.stop()
    # readings published before the restarted bridge's broker connection was up may arrive
    # after newer ones: the controller orders them by timestamp, and so does this check
    energies = [r.energy_wh for r in sorted(readings(probe, "m1"), key=lambda r: r.ts)]
    assert len(energies) > n_before
    assert all(b >= a for a, b in itertools.pairwise(energies)), energies
    assert energies[-1] == pytest.approx(fleet.true_energy_wh()["m1"], abs=POWER_W / 3600)


def test_unreachable_modbus_host_at_start_is_a_config_error_naming_the_device(mosquitto):
    port = free_port()
    cfg = BridgeConfig(site=SITE, devices=[DeviceEntry(id="gone", business=0, dialect="modbus")],
                       modbus=ModbusOptions(devices={"gone": ModbusDevice(port=port)}))
    with pytest.raises(ConfigError, match=r"modbus\.devices\.gone\.host"):
        Bridge(cfg, f"mqtt://127.0.0.1:{mosquitto.port}").start()


def test_devices_command_starts_a_modbus_fleet_that_its_written_bridge_config_serves(
        mosquitto, tmp_path):
    path = tmp_path / "bridge.toml"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lastwatt.cli", "devices", "--dialect", "modbus", "--count", "4",
         "--modbus-port", str(port), "--units-per-server", "2", "--bridge-config", str(path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=Path(__file__).parents[2])
    probe = Probe(mosquitto.port)
    bridge = None
    try:
        wait_until(path.exists, 30, "bridge config written")
        cfg = load_bridge_config(path)
        assert [(d.port, d.unit_id) for d in cfg.modbus.devices.values()] == [
            (port, 1), (port, 2), (port + 1, 1), (port + 1, 2)]
        fast = cfg.model_copy(update={"modbus": cfg.modbus.model_copy(
            update={"interval_s": 0.2, "startup_grace_s": 0.2})})
        bridge = Bridge(fast, f"mqtt://127.0.0.1:{mosquitto.port}").start()
        for d in cfg.devices:
            wait_until(lambda d=d: probe.payloads(topics.status_topic(SITE, d.id)), 10,
                       f"{d.id} online")
            assert decode(DeviceStatus, probe.payloads(topics.status_topic(SITE, d.id))[-1]).online
    finally:
        if bridge is not None:
            bridge.stop()
        probe.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else ""


def test_lost_modbus_server_is_counted_offline_and_reconnected_when_back(mosquitto):
    url = f"mqtt://127.0.0.1:{mosquitto.port}"
    probe = Probe(mosquitto.port)
    fleet = ModbusFleet([("m1", POWER_W)]).start()
    port = fleet.ports[0]
    bridge = bridge_for(fleet, url)
    status = topics.status_topic(SITE, "m1")
    try:
        wait_until(lambda: probe.payloads(status), 5, "online")
        fleet.stop()  # the module loses power: its TCP server is gone
        wait_until(lambda: not decode(DeviceStatus, probe.payloads(status)[-1]).online, 10,
                   "offline")
        assert bridge.rejected["modbus_connection"] + bridge.rejected["modbus_timeout"] >= 2
        fleet = ModbusFleet([("m1", POWER_W)], ModbusFleetOptions(base_port=port)).start()
        wait_until(lambda: decode(DeviceStatus, probe.payloads(status)[-1]).online, 15,
                   "online again")
        assert bridge.worker.errors == 0
    finally:
        bridge.stop()
        fleet.stop()
        probe.close()
