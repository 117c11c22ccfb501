"""Tasmota dialect (bridge side) and simulated Tasmota firmware, payloads as the firmware sends."""

from __future__ import annotations

import json

import numpy as np
import pytest

from firmware_bridge.dialects import Capability, Counter, DialectError, Online
from firmware_bridge.dialects.base import Switched
from firmware_bridge.dialects.tasmota import TasmotaDialect, pulsetime_seconds, pulsetime_value
from firmware_bridge.simulated.tasmota import TasmotaFirmware
from lastwatt.devices import DeviceModel, profile_fn

SENSOR = (b'{"Time":"2026-11-26T22:00:00","ENERGY":{"TotalStartTime":"2026-01-01T00:00:00",'
          b'"Total":12.345,"Yesterday":0.5,"Today":0.2,"Period":0,"Power":230,'
          b'"ApparentPower":240,"ReactivePower":60,"Factor":0.96,"Voltage":231,"Current":1.0}}')


def test_sensor_total_in_kwh_becomes_wh_and_power_is_read():
    d = TasmotaDialect(["plug1"])
    topic, events = d.decode("tele/plug1/SENSOR", SENSOR)
    assert topic == "plug1"
    assert events == [Counter(total_wh=12345.0, power_w=230.0)]


def test_status10_answer_carries_the_energy_register():
    d = TasmotaDialect(["plug1"])
    body = json.dumps({"StatusSNS": json.loads(SENSOR)}).encode()
    assert d.decode("stat/plug1/STATUS10", body)[1] == [Counter(12345.0, 230.0)]


def test_result_of_other_commands_is_ignored_and_power_result_is_a_switch():
    d = TasmotaDialect(["plug1"])
    assert d.decode("stat/plug1/RESULT", b'{"PulseTime1":{"Set":0,"Remaining":0}}')[1] == []
    assert d.decode("stat/plug1/RESULT", b'{"POWER":"ON"}')[1] == [Switched(True)]
    assert d.decode("stat/plug1/POWER", b"OFF")[1] == [Switched(False)]


def test_lwt_online_offline():
    d = TasmotaDialect(["plug1"])
    assert d.decode("tele/plug1/LWT", b"Offline")[1] == [Online(False)]
    assert d.decode("tele/plug1/LWT", b"Online")[1] == [Online(True)]


def test_commands_are_never_retained_and_failsafe_sets_pulsetime_before_power_on():
    d = TasmotaDialect(["plug1"])
    out = d.switch("plug1", True, off_after_s=300)
    assert [(p.topic, p.payload) for p in out] == [
        ("cmnd/plug1/PulseTime", b"400"), ("cmnd/plug1/POWER", b"ON")]
    assert not any(p.retain for p in out + d.switch("plug1", False) + d.poll("plug1"))
    assert [p.payload for p in d.switch("plug1", False, off_after_s=300)] == [b"OFF"]


@pytest.mark.parametrize("seconds", [0.1, 0.3, 0.5, 11.1, 12, 3600, 64_800])
def test_pulsetime_encoding_round_trips(seconds):
    assert pulsetime_seconds(pulsetime_value(seconds)) == pytest.approx(seconds)


@pytest.mark.parametrize(("seconds", "value"), [
    (0.05, 0), (0.1, 1), (0.37, 3), (11.1, 111), (11.9, 111), (12.7, 112), (1e6, 64_900)])
def test_pulsetime_never_ends_later_than_asked(seconds, value):
    assert pulsetime_value(seconds) == value
    assert TasmotaDialect(["plug1"]).off_timer_s(seconds) == pytest.approx(
        pulsetime_seconds(value))
    assert pulsetime_seconds(value) <= seconds


def test_timer_step_is_the_shortest_pulsetime_the_plug_can_run():
    dialect = TasmotaDialect(["plug1"])
    assert dialect.off_timer_s(dialect.timer_step_s) == dialect.timer_step_s == 0.1
    assert dialect.off_timer_s(0.099) == 0


def test_custom_full_topic_layout_is_followed():
    d = TasmotaDialect(["kitchen"], full_topic="tasmota/%topic%/%prefix%/")
    assert "tasmota/kitchen/tele/SENSOR" in d.subscriptions()
    assert d.switch("kitchen", True)[0].topic == "tasmota/kitchen/cmnd/POWER"


@pytest.mark.parametrize(("topic", "payload", "kind"), [
    ("tele/plug1/SENSOR", b"{not json", "json"),
    ("tele/plug1/SENSOR", b"[1,2]", "schema"),
    ("tele/plug1/SENSOR", b'{"ENERGY":{"Total":"12"}}', "schema"),
    ("tele/plug1/SENSOR", b'{"ENERGY":{"Total":-1}}', "range"),
    ("tele/plug1/SENSOR", b'{"ENERGY":{"Power":5}}', "schema"),
    ("tele/plug1/LWT", b"maybe", "schema"),
    ("stat/plug1/POWER", b"HALF", "schema"),
])
def test_malformed_payloads_raise_dialect_error_with_kind(topic, payload, kind):
    with pytest.raises(DialectError) as err:
        TasmotaDialect(["plug1"]).decode(topic, payload)
    assert err.value.kind == kind


def test_sensor_of_another_sensor_yields_nothing():
    body = b'{"Time":"2026-11-26T22:00:00","DS18B20":{"Temperature":21.5}}'
    assert TasmotaDialect(["plug1"]).decode("tele/plug1/SENSOR", body)[1] == []


def _firmware() -> TasmotaFirmware:
    model = DeviceModel("t1", 3600.0, profile_fn("constant", 3600), np.random.default_rng(0),
                        enforce_quota=False)
    return TasmotaFirmware("t1", "plug1", model, 10.0)


def test_simulated_tasmota_answers_power_with_result_then_power_and_bridge_reads_it():
    fw, d = _firmware(), TasmotaDialect(["plug1"])
    out = fw.handle("POWER", b"ON", 1000.0)
    assert [(p.topic, p.payload) for p in out] == [
        ("stat/plug1/RESULT", b'{"POWER":"ON"}'), ("stat/plug1/POWER", b"ON")]
    tele = fw.telemetry(1000.0 + 3600.0)
    sensor = next(p for p in tele if p.topic == "tele/plug1/SENSOR")
    [counter] = d.decode(sensor.topic, sensor.payload)[1]
    assert counter.total_wh == pytest.approx(3600.0, abs=0.5)  # 1 h at 3.6 kW, 1 Wh steps


def test_simulated_tasmota_reads_all_zero_power_values_when_off():
    fw = _firmware()
    energy = json.loads(fw.telemetry(1000.0)[1].payload)["ENERGY"]
    assert energy["Power"] == energy["Voltage"] == energy["Current"] == 0


def test_simulated_tasmota_pulsetime_switches_itself_off():
    fw = _firmware()
    fw.handle("PulseTime", b"130", 1000.0)  # 30 s
    fw.handle("POWER", b"ON", 1000.0)
    assert fw.off_at == pytest.approx(1030.0)
    assert fw.expire(1029.0) == [] and fw.model.on
    out = fw.expire(1030.0)
    assert not fw.model.on and out[-1].payload == b"OFF"


def test_simulated_tasmota_pulsetime_restarts_the_running_countdown_as_the_firmware_does():
    fw, d = _firmware(), TasmotaDialect(["plug1"])
    for p in d.switch("plug1", True, off_after_s=30):
        fw.handle(p.topic.rsplit("/", 1)[1], p.payload, 1000.0)
    assert fw.off_at == pytest.approx(1030.0)
    [rearm] = d.rearm("plug1", 5.0)
    [answer] = fw.handle("PulseTime", rearm.payload, 1010.0)  # relay stays on, 5 s from now
    assert json.loads(answer.payload) == {"PulseTime1": {"Set": 50, "Remaining": 50}}
    assert fw.model.on and fw.off_at == pytest.approx(1015.0)
    assert fw.expire(1014.0) == [] and fw.model.on
    assert fw.expire(1015.0) and not fw.model.on


def test_simulated_tasmota_teleperiod_follows_firmware_limits():
    fw = _firmware()
    fw.handle("TelePeriod", b"3", 0.0)
    assert fw.telemetry_s == 10
    fw.handle("TelePeriod", b"0", 0.0)
    assert fw.telemetry_s == 0


def test_status8_final_read_answer_carries_the_energy_register_with_energyres_decimals():
    d = TasmotaDialect(["plug1"], energy_res=5)
    assert [(p.topic, p.payload) for p in d.read("plug1")] == [("cmnd/plug1/Status", b"8")]
    assert ("cmnd/plug1/EnergyRes", b"5") in [(p.topic, p.payload) for p in d.setup("plug1")]
    body = json.dumps({"StatusSNS": {"ENERGY": {"Total": 0.01234, "Power": 800}}}).encode()
    [counter] = d.decode("stat/plug1/STATUS8", body)[1]
    assert counter.total_wh == pytest.approx(12.34) and counter.power_w == 800.0


def test_pulsetime_probe_answer_says_whether_the_build_has_an_off_timer():
    d = TasmotaDialect(["with", "without"])
    [q1] = d.probe("with")
    d.probe("without")
    assert q1.topic == "cmnd/with/PulseTime" and q1.payload == b""  # a query, changes nothing
    # an unrelated answer first (POWER), then the probe's answers
    assert d.decode("stat/with/RESULT", b'{"POWER":"OFF"}')[1] == [Switched(False)]
    assert d.decode("stat/with/RESULT", b'{"PulseTime1":{"Set":0,"Remaining":0}}')[1] == [
        Capability(True)]
    assert d.decode("stat/without/RESULT", b'{"Command":"Unknown"}')[1] == [Capability(False)]
    # answered once: a later Unknown (another command) says nothing about the off-timer
    assert d.decode("stat/without/RESULT", b'{"Command":"Unknown"}')[1] == []
