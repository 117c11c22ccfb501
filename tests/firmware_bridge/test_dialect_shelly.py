"""Shelly Gen2 dialect (bridge side) and simulated Shelly firmware: JSON-RPC over MQTT."""

from __future__ import annotations

import json

import numpy as np
import pytest

from firmware_bridge.dialects import Capability, Counter, DialectError, Online
from firmware_bridge.dialects.base import Switched
from firmware_bridge.dialects.shelly import ShellyDialect
from firmware_bridge.simulated.shelly import ShellyFirmware
from lastwatt.devices import DeviceModel, profile_fn

DEV = "shellyplus1pm-4417939341dc"


def test_switch_set_frame_has_id_src_and_goes_to_rpc_unretained():
    d = ShellyDialect([DEV], src="bridge-x")
    [p] = d.switch(DEV, True, off_after_s=120)
    frame = json.loads(p.payload)
    assert p.topic == f"{DEV}/rpc" and p.qos == 1 and not p.retain
    assert frame["src"] == "bridge-x" and isinstance(frame["id"], int)
    assert frame["method"] == "Switch.Set"
    assert frame["params"] == {"id": 0, "on": True, "toggle_after": 120.0}
    assert "bridge-x/rpc" in d.subscriptions()


def test_reply_is_matched_on_id_to_its_device():
    d = ShellyDialect([DEV, "other"], src="b")
    d.switch("other", True)
    [p] = d.switch(DEV, True)
    rid = json.loads(p.payload)["id"]
    reply = json.dumps({"id": rid, "src": DEV, "dst": "b", "result": {"was_on": False}})
    assert d.decode("b/rpc", reply.encode()) == (DEV, [Switched(True)])
    with pytest.raises(DialectError) as err:  # a duplicate (QoS 1) finds nothing pending
        d.decode("b/rpc", reply.encode())
    assert err.value.kind == "unmatched_reply"


def test_error_reply_is_reported_as_rpc_error():
    d = ShellyDialect([DEV], src="b")
    rid = json.loads(d.switch(DEV, True)[0].payload)["id"]
    reply = {"id": rid, "src": DEV, "dst": "b", "error": {"code": -105, "message": "not found"}}
    with pytest.raises(DialectError) as err:
        d.decode("b/rpc", json.dumps(reply).encode())
    assert err.value.kind == "rpc_error"


def test_notify_status_with_only_changed_keys():
    d = ShellyDialect([DEV])
    only_output = {"src": DEV, "dst": f"{DEV}/events", "method": "NotifyStatus",
                   "params": {"ts": 1.0, "switch:0": {"id": 0, "output": True}}}
    assert d.decode(f"{DEV}/events/rpc", json.dumps(only_output).encode())[1] == [Switched(True)]
    energy = {"src": DEV, "dst": f"{DEV}/events", "method": "NotifyStatus",
              "params": {"ts": 2.0, "switch:0": {"id": 0, "apower": 50.5,
                                                 "aenergy": {"total": 1234.5}}}}
    assert d.decode(f"{DEV}/events/rpc", json.dumps(energy).encode())[1] == [
        Counter(1234.5, 50.5)]
    other = {"src": DEV, "method": "NotifyEvent", "params": {"ts": 3.0, "events": []}}
    assert d.decode(f"{DEV}/events/rpc", json.dumps(other).encode())[1] == []


def test_generic_status_topic_and_online_flag():
    d = ShellyDialect([DEV])
    status = {"id": 0, "output": False, "apower": 0.0, "aenergy": {"total": 7.0}}
    assert d.decode(f"{DEV}/status/switch:0", json.dumps(status).encode())[1] == [
        Switched(False), Counter(7.0, 0.0)]
    assert d.decode(f"{DEV}/online", b"false")[1] == [Online(False)]


@pytest.mark.parametrize(("topic", "payload", "kind"), [
    (f"{DEV}/status/switch:0", b"\xff\xfe", "json"),
    (f"{DEV}/status/switch:0", b'{"output":"yes"}', "schema"),
    (f"{DEV}/status/switch:0", b'{"aenergy":{"total":1e400}}', "range"),
    (f"{DEV}/events/rpc", b'{"method":"NotifyStatus","params":5}', "schema"),
    (f"{DEV}/online", b"1", "schema"),
])
def test_malformed_payloads_raise_dialect_error_with_kind(topic, payload, kind):
    with pytest.raises(DialectError) as err:
        ShellyDialect([DEV]).decode(topic, payload)
    assert err.value.kind == kind


def _firmware() -> ShellyFirmware:
    model = DeviceModel(DEV, 3600.0, profile_fn("constant", 3600), np.random.default_rng(0),
                        enforce_quota=False)
    return ShellyFirmware(DEV, DEV, model, 60.0)


def test_simulated_shelly_answers_on_src_rpc_with_was_on():
    fw = _firmware()
    frame = {"id": 7, "src": "me", "method": "Switch.Set", "params": {"id": 0, "on": True}}
    out = fw.handle("rpc", json.dumps(frame).encode(), 100.0)
    assert out[0].topic == "me/rpc"
    assert json.loads(out[0].payload) == {"id": 7, "src": DEV, "dst": "me",
                                          "result": {"was_on": False}}
    assert any(p.topic == f"{DEV}/events/rpc" for p in out[1:])


def test_simulated_shelly_rpc_errors_and_frame_without_src():
    fw = _firmware()
    bad = {"id": 1, "src": "me", "method": "Switch.Set", "params": {"id": 0}}
    assert json.loads(fw.handle("rpc", json.dumps(bad).encode(), 0.0)[0].payload)["error"][
        "code"] == -103
    nomethod = {"id": 2, "src": "me", "method": "Foo.Bar"}
    assert json.loads(fw.handle("rpc", json.dumps(nomethod).encode(), 0.0)[0].payload)[
        "error"]["code"] == 404
    with pytest.raises(DialectError):
        fw.handle("rpc", b'{"id":3,"method":"Switch.Set"}', 0.0)


def test_simulated_shelly_aenergy_total_is_wh_and_toggle_after_switches_off():
    fw, d = _firmware(), ShellyDialect([DEV], src="me")
    [cmd] = d.switch(DEV, True, off_after_s=1800)
    fw.handle("rpc", cmd.payload, 0.0)
    out = fw.telemetry(1800.0)
    events = d.decode(f"{DEV}/events/rpc", out[0].payload)[1]
    assert events[0].total_wh == pytest.approx(1800.0, abs=0.01)  # 0.5 h at 3.6 kW
    assert fw.expire(1799.0) == [] and fw.model.on
    assert fw.expire(1800.0) and not fw.model.on


def _reply(rid: int, src: str, dst: str = "b", **body) -> bytes:
    return json.dumps({"id": rid, "src": src, "dst": dst, **body}).encode()


def test_spoofed_reply_with_the_right_id_is_refused_and_the_real_one_still_matches():
    d = ShellyDialect([DEV, "other"], src="b")
    rid = json.loads(d.switch(DEV, True)[0].payload)["id"]
    for spoof in (_reply(rid, "other", result={"was_on": True}),  # another device's src
                  _reply(rid, DEV, dst="someone-else", result={"was_on": True})):
        with pytest.raises(DialectError) as err:
            d.decode("b/rpc", spoof)
        assert err.value.kind == "spoofed_reply"
    assert d.decode("b/rpc", _reply(rid, DEV, result={"was_on": False})) == (DEV, [Switched(True)])


def test_reply_src_is_the_device_id_its_notifications_name_not_the_topic_prefix():
    d = ShellyDialect(["kitchen"], src="b")  # a user-set prefix
    note = {"src": DEV, "dst": "kitchen/events", "method": "NotifyStatus",
            "params": {"switch:0": {"id": 0, "output": False}}}
    d.decode("kitchen/events/rpc", json.dumps(note).encode())
    rid = json.loads(d.poll("kitchen")[0].payload)["id"]
    with pytest.raises(DialectError):
        d.decode("b/rpc", _reply(rid, "kitchen", result={"output": False}))
    assert d.decode("b/rpc", _reply(rid, DEV, result={"output": False}))[1] == [Switched(False)]


def test_toggle_after_confirmed_or_refused_by_the_switch_set_answer():
    d = ShellyDialect([DEV], src="b")
    rid = json.loads(d.switch(DEV, True, off_after_s=30)[0].payload)["id"]
    assert d.decode("b/rpc", _reply(rid, DEV, result={"was_on": False}))[1] == [
        Switched(True), Capability(True)]
    rid = json.loads(d.switch(DEV, True, off_after_s=30)[0].payload)["id"]
    refused = _reply(rid, DEV, error={"code": -103, "message": "Invalid argument 'toggle_after'!"})
    assert d.decode("b/rpc", refused)[1] == [Capability(False)]
