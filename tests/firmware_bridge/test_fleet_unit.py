"""The simulated fleet with a fake MQTT client and a fake clock: births and Wills, the
firmware's own off-timers firing exactly when the clock reaches them, command latency,
dropouts, bad commands, and its validated options."""

from __future__ import annotations

import json

import pytest

from firmware_bridge.simulated.fleet import FIRMWARE, Fleet, FleetDevice, FleetOptions
from firmware_bridge.simulated.site import fleet_options
from lastwatt.config import Config
from lastwatt.errors import ConfigError
from lastwatt.messages import DeviceStatus, MeterReading, Setpoint, decode, encode
from lastwatt.transport import topics
from lastwatt.transport.publish import Publish
from tests.fake_mqtt import FakeBroker, FakeClock

SITE = "village"
POWER_W = 3600.0  # 1 Wh a second
DEVICES = [FleetDevice("n1", "native", None, POWER_W),
           FleetDevice("t1", "tasmota", "tasmota_A1", POWER_W),
           FleetDevice("s1", "shelly", "shellyplus1pm-aa", POWER_W)]


class Rig:
    def __init__(self, connections: int | None = None, **options) -> None:
        self.broker, self.clock = FakeBroker(), FakeClock()
        opts = FleetOptions(site=SITE, telemetry_s=options.pop("telemetry_s", 60.0),
                            connections=connections, **options)
        self.fleet = Fleet("mqtt://127.0.0.1:1", DEVICES, opts, clock=self.clock,
                           connect=self.broker.connect).connect()
        self.run()

    def run(self) -> None:
        self.fleet.worker.run_pending()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.run()

    def inject(self, topic: str, payload: bytes | str) -> None:
        self.broker.inject(topic, payload)
        self.run()

    def setpoint(self, quota_wh: float, valid_s: float, round_: int = 0) -> None:
        sp = Setpoint("n1", round_, True, POWER_W, quota_wh, self.clock() + valid_s)
        self.inject(topics.set_topic(SITE, "n1"), encode(sp))

    def on(self, device: str) -> bool:
        return self.fleet.is_on(device)


@pytest.fixture()
def rig() -> Rig:
    return Rig()


def test_every_device_announces_itself_retained_on_connect(rig):
    retained = {s.topic: s.payload for s in rig.broker.sent if s.retain and s.qos == 1}
    assert decode(DeviceStatus, retained[topics.status_topic(SITE, "n1")]).online
    assert retained["tele/tasmota_A1/LWT"] == b"Online"
    assert retained["shellyplus1pm-aa/online"] == b"true"


def test_small_fleet_gives_each_device_its_own_connection_with_its_will(rig):
    wills = {c.client_id: c.will for c in rig.broker.clients}
    assert wills["lastwatt-sim-tasmota-t1"] == Publish("tele/tasmota_A1/LWT", b"Offline", 1, True)
    assert wills["lastwatt-sim-shelly-s1"] == Publish("shellyplus1pm-aa/online", b"false", 1, True)


@pytest.mark.parametrize("connections", [0, 1])
def test_killed_device_goes_offline_by_its_will_and_stops_answering(connections):
    rig = Rig(connections)
    rig.broker.sent.clear()
    rig.fleet.kill("t1")
    assert rig.broker.payloads("tele/tasmota_A1/LWT") == [b"Offline"]  # broker's or fleet's
    rig.inject("cmnd/tasmota_A1/POWER", "ON")
    assert not rig.on("t1")


def test_native_device_switches_itself_off_exactly_at_valid_until(rig):
    rig.setpoint(quota_wh=1e6, valid_s=30)
    assert rig.on("n1")
    rig.advance(29.999)
    assert rig.on("n1")
    rig.advance(0.001)  # one clock for the timer and the check: no early-timer slack
    assert not rig.on("n1")
    assert rig.fleet.true_energy_wh()["n1"] == pytest.approx(30.0)


def test_native_setpoint_is_answered_by_a_meter_reading(rig):
    rig.broker.sent.clear()
    rig.setpoint(quota_wh=1e6, valid_s=30)
    [payload] = rig.broker.payloads(topics.meter_topic(SITE, "n1"))
    assert decode(MeterReading, payload).on


def test_tasmota_pulsetime_switches_the_relay_off_when_it_runs_out(rig):
    rig.inject("cmnd/tasmota_A1/PulseTime", "112")  # 12 s
    rig.inject("cmnd/tasmota_A1/POWER", "ON")
    rig.broker.sent.clear()
    rig.advance(11.999)
    assert rig.on("t1")
    rig.advance(0.001)
    assert not rig.on("t1")
    assert rig.broker.payloads("stat/tasmota_A1/POWER") == [b"OFF"]
    assert rig.fleet.true_energy_wh()["t1"] == pytest.approx(12.0)


def test_a_rearmed_timer_outlives_the_first_one(rig):
    rig.inject("cmnd/tasmota_A1/PulseTime", "112")
    rig.inject("cmnd/tasmota_A1/POWER", "ON")
    rig.advance(10)
    rig.inject("cmnd/tasmota_A1/PulseTime", "112")  # restarted: now ends at 22 s
    rig.advance(2)
    assert rig.on("t1")
    rig.advance(10)
    assert not rig.on("t1")


def test_shelly_switch_set_is_answered_to_src_and_toggle_after_ends_it(rig):
    frame = {"id": 7, "src": "me", "method": "Switch.Set",
             "params": {"id": 0, "on": True, "toggle_after": 5}}
    rig.inject("shellyplus1pm-aa/rpc", json.dumps(frame))
    [answer] = rig.broker.payloads("me/rpc")
    assert json.loads(answer)["result"] == {"was_on": False}
    rig.advance(5)
    assert not rig.on("s1")


def test_command_latency_delays_the_switch():
    rig = Rig(latency_s=0.5)
    rig.inject("cmnd/tasmota_A1/POWER", "ON")
    assert not rig.on("t1")
    rig.advance(0.5)
    assert rig.on("t1")


def test_telemetry_comes_every_period_per_device():
    rig = Rig(telemetry_s=1.0)
    rig.broker.sent.clear()
    for _ in range(3):
        rig.advance(1.0)
    assert len(rig.broker.payloads(topics.meter_topic(SITE, "n1"))) == 3
    assert len(rig.broker.payloads("tele/tasmota_A1/SENSOR")) == 3
    assert len(rig.broker.payloads("shellyplus1pm-aa/events/rpc")) == 3


def test_dropout_is_silent_then_back_and_a_setpoint_sent_meanwhile_is_applied():
    rig = Rig(telemetry_s=1.0)
    rig.fleet.dropout("n1", 5.0)
    meter = topics.meter_topic(SITE, "n1")
    rig.broker.sent.clear()
    rig.advance(2.0)
    rig.setpoint(quota_wh=1e6, valid_s=60)
    assert rig.broker.payloads(meter) == [] and not rig.on("n1")
    rig.advance(3.0)
    assert rig.on("n1")
    assert decode(DeviceStatus, rig.broker.payloads(topics.status_topic(SITE, "n1"))[-1]).online


def test_bad_commands_are_counted_and_the_fleet_keeps_answering(rig):
    rig.inject(topics.set_topic(SITE, "n1"), b"{")
    rig.inject("shellyplus1pm-aa/rpc", b"[]")
    rig.inject("cmnd/tasmota_A1/PulseTime", b"soon")
    assert rig.fleet.rejected == {"json": 1, "schema": 2}
    assert rig.fleet.worker.errors == 0
    rig.inject("cmnd/tasmota_A1/POWER", "ON")
    assert rig.on("t1")


def test_stop_says_goodbye_with_each_live_devices_will_payload(rig):
    rig.fleet.kill("s1")
    rig.broker.sent.clear()
    rig.fleet.stop()
    assert rig.broker.payloads("tele/tasmota_A1/LWT") == [b"Offline"]
    assert not decode(DeviceStatus, rig.broker.payloads(topics.status_topic(SITE, "n1"))[0]).online
    assert rig.broker.payloads("shellyplus1pm-aa/online") == []  # dead already


def test_every_registered_firmware_builds_from_the_options():
    devices = [FleetDevice(f"d{i}", name) for i, name in enumerate(FIRMWARE)]
    fleet = Fleet("mqtt://127.0.0.1:1", devices)
    assert [fw.dialect for fw in fleet.firmware] == list(FIRMWARE)


def test_unknown_firmware_is_a_one_line_error_naming_the_device():
    with pytest.raises(ConfigError, match=r"^device d0: dialect: no simulated firmware 'zigbee'"):
        Fleet("mqtt://127.0.0.1:1", [FleetDevice("d0", "zigbee")])


@pytest.mark.parametrize(("override", "field"), [
    ({"latency_s": -1}, "latency_s"), ({"connections": -2}, "connections"),
    ({"tasmota_full_topic": "tasmota/%topic%"}, "tasmota_full_topic"),
    ({"telemetry_qos": 3}, "telemetry_qos"), ({"speed": 2}, "speed"),
])
def test_bad_fleet_option_is_one_line_naming_the_field(override, field):
    with pytest.raises(ConfigError) as err:
        fleet_options(Config(), **override)
    assert str(err.value).startswith(f"fleet options: {field}")
    assert "\n" not in str(err.value)
