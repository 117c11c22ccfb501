"""The bridge with a fake MQTT client and a fake clock: every case is a message in, a clock
step, and what the bridge then published, compared with payloads written out by hand from
the vendors' documentation (docs/devices.md)."""

from __future__ import annotations

import json

import pytest

from firmware_bridge.bridge import Bridge
from lastwatt.config import DeviceEntry
from lastwatt.config.bridge import BridgeConfig
from lastwatt.messages import DeviceStatus, MeterReading, Setpoint, decode, encode
from lastwatt.transport import topics
from tests.fake_mqtt import FakeBroker, FakeClock

SITE = "village"
TAS = ("t1", "tasmota_A1B2C3")
SHE = ("s1", "shellyplus1pm-4417939341dc")
SRC = "lastwatt-bridge-village"  # the bridge's default Shelly RPC source


class Rig:
    """A connected bridge for one Tasmota and one Shelly plug, on a fake broker and clock."""

    def __init__(self, **options) -> None:
        self.broker = FakeBroker()
        self.clock = FakeClock()
        cfg = BridgeConfig(site=SITE, poll_s=options.pop("poll_s", 0), **options, devices=[
            DeviceEntry(id=TAS[0], business=0, dialect="tasmota", topic=TAS[1]),
            DeviceEntry(id=SHE[0], business=1, dialect="shelly", topic=SHE[1])])
        self.bridge = Bridge(cfg, "mqtt://127.0.0.1:1", self.clock, self.broker.connect)
        self.bridge.connect()
        self.run()
        self.birth = self.sent()  # the bridge's own status on connecting


    def run(self) -> None:
        self.bridge.worker.run_pending()

    def inject(self, topic: str, payload: bytes | str) -> None:
        self.broker.inject(topic, payload)
        self.run()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.run()

    def setpoint(self, device: str, quota_wh: float, valid_s: float, round_: int = 0,
                 on: bool = True) -> None:
        sp = Setpoint(device, round_, on, 1000.0, quota_wh, self.clock() + valid_s)
        self.inject(topics.set_topic(SITE, device), encode(sp))

    def sensor(self, total_kwh: float, power_w: float) -> None:
        body = {"ENERGY": {"Total": total_kwh, "Power": power_w, "Period": 0}}
        self.inject(f"tele/{TAS[1]}/SENSOR", json.dumps(body))

    def sent(self) -> list[tuple[str, bytes, int, bool]]:
        out = [(s.topic, s.payload, s.qos, s.retain) for s in self.broker.sent]
        self.broker.sent.clear()
        return out

    def commands(self) -> list[tuple[str, bytes]]:
        return [(t, p) for t, p, _, _ in self.sent() if not t.startswith("lastwatt/")]

    def readings(self, device: str) -> list[MeterReading]:
        return [decode(MeterReading, p)
                for p in self.broker.payloads(topics.meter_topic(SITE, device))]


@pytest.fixture()
def rig() -> Rig:
    return Rig()


def test_bridge_subscribes_to_setpoints_and_each_vendor_topic_it_reads(rig):
    subs = set(rig.broker.clients[0].subscriptions)
    assert {topics.all_setpoints_pattern(SITE), f"tele/{TAS[1]}/SENSOR", f"tele/{TAS[1]}/LWT",
            f"stat/{TAS[1]}/POWER", f"{SHE[1]}/events/rpc", f"{SHE[1]}/online",
            f"{SRC}/rpc"} <= subs


def test_tasmota_setpoint_becomes_pulsetime_then_power_on_at_qos1_never_retained(rig):
    rig.setpoint(TAS[0], quota_wh=1e6, valid_s=100)
    # no power measured yet: the off-timer runs to valid_until, 100 s = PulseTime 100 + 100
    assert rig.sent() == [(f"cmnd/{TAS[1]}/PulseTime", b"200", 1, False),
                          (f"cmnd/{TAS[1]}/POWER", b"ON", 1, False)]


def test_shelly_setpoint_becomes_switch_set_rpc_with_toggle_after(rig):
    rig.setpoint(SHE[0], quota_wh=1e6, valid_s=100)
    [(topic, payload, qos, retain)] = rig.sent()
    assert (topic, qos, retain) == (f"{SHE[1]}/rpc", 1, False)
    assert json.loads(payload) == {"id": 1, "src": SRC, "method": "Switch.Set",
                                   "params": {"id": 0, "on": True, "toggle_after": 100.0}}


def test_without_failsafe_a_setpoint_is_a_bare_power_on_and_off_is_power_off():
    rig = Rig(failsafe=False)
    rig.setpoint(TAS[0], quota_wh=1e6, valid_s=100)
    assert rig.commands() == [(f"cmnd/{TAS[1]}/POWER", b"ON")]
    rig.setpoint(TAS[0], quota_wh=0.0, valid_s=100, round_=1, on=False)
    # and the register right after the switch-off (Status 8): the round's last energy
    assert rig.commands() == [(f"cmnd/{TAS[1]}/POWER", b"OFF"), (f"cmnd/{TAS[1]}/Status", b"8")]


@pytest.mark.parametrize("failsafe", [True, False])
def test_valid_until_switches_the_plug_off_when_the_clock_reaches_it_and_not_before(failsafe):
    rig = Rig(failsafe=failsafe)
    rig.setpoint(TAS[0], quota_wh=1e6, valid_s=30)
    rig.sent()
    rig.advance(29.999)
    # its power is not known yet: read once, on_poll_s after the ON (nobody answers here)
    assert rig.commands() == [(f"cmnd/{TAS[1]}/Status", b"8")]
    rig.advance(0.001)  # exactly valid_until: one clock, no slack needed
    assert rig.commands() == [(f"cmnd/{TAS[1]}/POWER", b"OFF"), (f"cmnd/{TAS[1]}/Status", b"8")]
    assert rig.bridge.counts["valid_until_off"] == 1


def test_round_energy_reaching_the_quota_switches_the_plug_off(rig):
    rig.sensor(1.000, 0)  # register before the round: 1000 Wh
    rig.setpoint(TAS[0], quota_wh=20.0, valid_s=600)
    rig.sensor(1.010, 3600)  # 10 Wh into the round: still on
    assert (f"cmnd/{TAS[1]}/POWER", b"OFF") not in rig.commands()
    rig.sensor(1.020, 3600)  # 20 Wh: the quota
    assert (f"cmnd/{TAS[1]}/POWER", b"OFF") in rig.commands()
    assert rig.bridge.counts["quota_off"] == 1


def test_off_timer_is_armed_for_the_predicted_time_to_quota_at_the_measured_power(rig):
    rig.sensor(0.0, 3600)  # 3600 W: 1 Wh a second
    rig.setpoint(TAS[0], quota_wh=50.0, valid_s=600)
    # 50 Wh at 3600 W is 50 s, sooner than valid_until: PulseTime 50 + 100
    assert rig.commands()[:2] == [(f"cmnd/{TAS[1]}/PulseTime", b"150"),
                                  (f"cmnd/{TAS[1]}/POWER", b"ON")]


def test_native_energy_stays_monotonic_across_a_vendor_counter_reset(rig):
    for total_kwh in (0.050, 0.060, 0.000, 0.010):  # the register restarts at 0 after 60 Wh
        rig.clock.advance(1)
        rig.sensor(total_kwh, 100)
    assert [r.energy_wh for r in rig.readings(TAS[0])] == [50.0, 60.0, 60.0, 70.0]


def test_a_small_register_drop_is_a_late_reading_not_a_reset(rig):
    for total_kwh in (0.050, 0.0495, 0.051):  # 0.5 Wh back: within jitter_wh (1 Wh)
        rig.clock.advance(1)
        rig.sensor(total_kwh, 100)
    assert [r.energy_wh for r in rig.readings(TAS[0])] == [50.0, 50.0, 51.0]


def test_shelly_register_seen_twice_within_the_window_is_published_once(rig):
    status = {"id": 0, "output": True, "apower": 100.0, "aenergy": {"total": 5.0}}
    note = {"method": "NotifyStatus", "params": {"switch:0": status}}
    rig.inject(f"{SHE[1]}/events/rpc", json.dumps(note))
    rig.inject(f"{SHE[1]}/status/switch:0", json.dumps(status))
    assert [r.energy_wh for r in rig.readings(SHE[0])] == [5.0]
    rig.advance(1.0)  # later the same value is sent again: a late subscriber's baseline
    rig.inject(f"{SHE[1]}/status/switch:0", json.dumps(status))
    assert [r.energy_wh for r in rig.readings(SHE[0])] == [5.0, 5.0]


@pytest.mark.parametrize(("device", "vendor_topic", "offline", "online"), [
    (TAS, f"tele/{TAS[1]}/LWT", "Offline", "Online"),
    (SHE, f"{SHE[1]}/online", "false", "true"),
])
def test_vendor_availability_becomes_retained_native_status(rig, device, vendor_topic, offline,
                                                             online):
    status_topic = topics.status_topic(SITE, device[0])
    rig.inject(vendor_topic, offline)
    [(topic, payload, qos, retain)] = rig.sent()
    assert (topic, qos, retain) == (status_topic, 1, True)
    assert decode(DeviceStatus, payload) == DeviceStatus(device[0], False, rig.clock(), via=SRC)
    rig.inject(vendor_topic, online)
    sent = rig.sent()
    assert sent[0][0] == status_topic and decode(DeviceStatus, sent[0][1]).online
    assert len(sent) > 1  # and the device is asked for its state and told ours


def test_tasmota_coming_online_is_polled_and_the_wanted_state_reasserted(rig):
    rig.setpoint(TAS[0], quota_wh=1e6, valid_s=100)
    rig.sent()
    rig.inject(f"tele/{TAS[1]}/LWT", "Online")  # it rebooted: relay off, timers gone
    # the off-timer probe (a PulseTime query), EnergyRes, a poll, then the wanted state
    assert rig.commands() == [(f"cmnd/{TAS[1]}/PulseTime", b""),
                              (f"cmnd/{TAS[1]}/EnergyRes", b"5"),
                              (f"cmnd/{TAS[1]}/POWER", b""), (f"cmnd/{TAS[1]}/Status", b"10"),
                              (f"cmnd/{TAS[1]}/PulseTime", b"200"),
                              (f"cmnd/{TAS[1]}/POWER", b"ON")]


def test_plug_switched_on_by_hand_while_not_wanted_is_switched_off(rig):
    rig.inject(f"stat/{TAS[1]}/POWER", "ON")
    assert rig.commands() == [(f"cmnd/{TAS[1]}/POWER", b"OFF")]


def test_plug_stopped_early_by_its_timer_is_read_and_switched_on_while_quota_is_left(rig):
    rig.sensor(0.0, 3600)
    rig.setpoint(TAS[0], quota_wh=50.0, valid_s=600)
    rig.inject(f"stat/{TAS[1]}/POWER", "ON")
    rig.sent()
    rig.advance(40)
    rig.inject(f"stat/{TAS[1]}/POWER", "OFF")  # its timer ended: the draw was lower
    assert rig.commands() == [(f"cmnd/{TAS[1]}/POWER", b""), (f"cmnd/{TAS[1]}/Status", b"10")]
    rig.sensor(0.030, 0)  # 30 Wh of 50: 20 Wh left at the last power, 3600 W -> 20 s
    assert rig.commands() == [(f"cmnd/{TAS[1]}/PulseTime", b"120"),
                              (f"cmnd/{TAS[1]}/POWER", b"ON")]
    assert (rig.bridge.counts["timer_off"], rig.bridge.counts["timer_resumed"]) == (1, 1)


def test_an_older_rounds_setpoint_is_counted_stale_and_ignored(rig):
    rig.setpoint(TAS[0], quota_wh=1e6, valid_s=100, round_=5)
    rig.sent()
    rig.setpoint(TAS[0], quota_wh=0.0, valid_s=100, round_=4, on=False)
    assert rig.commands() == []
    assert rig.bridge.counts["stale_setpoints"] == 1


def test_shelly_rpc_answer_is_matched_on_id_and_an_unknown_id_is_rejected(rig):
    rig.setpoint(SHE[0], quota_wh=1e6, valid_s=100)
    rid = json.loads(rig.sent()[0][1])["id"]
    rig.inject(f"{SRC}/rpc", json.dumps({"id": rid, "src": SHE[1], "result": {"was_on": False}}))
    assert rig.bridge.devices[SHE[0]].on is True
    rig.inject(f"{SRC}/rpc", json.dumps({"id": rid, "src": SHE[1], "result": {"was_on": False}}))
    assert rig.bridge.rejected["unmatched_reply"] == 1  # a QoS 1 duplicate finds nothing


def test_a_silent_device_is_polled_after_poll_s_and_a_reporting_one_is_not():
    rig = Rig(poll_s=30)
    rig.sent()
    rig.advance(15)  # the Tasmota plug's poll comes first (phases spread over the period)
    assert rig.commands() == [(f"cmnd/{TAS[1]}/POWER", b""), (f"cmnd/{TAS[1]}/Status", b"10")]
    rig.advance(5)
    rig.sensor(0.0, 0)
    rig.advance(25)  # Tasmota's next poll: it reported 25 s ago, so no; Shelly never did
    assert [t for t, _ in rig.commands()] == [f"{SHE[1]}/rpc"]
    assert rig.bridge.counts["polls"] == 2


MALFORMED = [b"", b"{", b"[]", b"null", b'{"ENERGY":{"Total":"x"}}', b"\xff" * 5000,
             b'{"ENERGY":{"Total":-1}}', b'{"method":"NotifyStatus","params":3}']


def test_malformed_payloads_are_counted_by_kind_and_the_bridge_keeps_switching(rig):
    vendor_topics = [f"tele/{TAS[1]}/SENSOR", f"tele/{TAS[1]}/LWT", f"stat/{TAS[1]}/POWER",
                     f"stat/{TAS[1]}/STATUS10", f"{SHE[1]}/events/rpc",
                     f"{SHE[1]}/status/switch:0", f"{SHE[1]}/online", f"{SRC}/rpc",
                     topics.set_topic(SITE, TAS[0])]
    for t in vendor_topics:
        for g in MALFORMED:
            rig.inject(t, g)
    # every topic rejects at least 6 of the 8 (some are valid "nothing to report" elsewhere)
    assert sum(rig.bridge.rejected.values()) >= 6 * len(vendor_topics)
    assert {"json", "schema", "range"} <= set(rig.bridge.rejected)
    assert rig.bridge.worker.errors == 0
    rig.sent()
    rig.setpoint(TAS[0], quota_wh=1e6, valid_s=100)
    assert (f"cmnd/{TAS[1]}/POWER", b"ON") in rig.commands()


def test_setpoint_whose_body_names_another_device_is_rejected(rig):
    sp = Setpoint(SHE[0], 0, True, 1000.0, 1e6, rig.clock() + 100)
    rig.inject(topics.set_topic(SITE, TAS[0]), encode(sp))
    assert rig.commands() == []
    assert rig.bridge.rejected["schema"] == 1


def test_a_native_devices_setpoint_is_left_alone(rig):
    sp = Setpoint("n1", 0, True, 1000.0, 1e6, rig.clock() + 100)
    rig.inject(topics.set_topic(SITE, "n1"), encode(sp))
    assert rig.sent() == [] and not rig.bridge.rejected


def test_bridge_never_publishes_a_retained_command(rig):
    rig.sensor(0.0, 3600)
    for dev in (TAS[0], SHE[0]):
        rig.setpoint(dev, quota_wh=30.0, valid_s=60)
    rig.inject(f"tele/{TAS[1]}/LWT", "Online")
    rig.sensor(0.030, 3600)
    rig.advance(60)
    retained = [t for t, _, _, r in rig.sent() if r]
    assert retained and all(t.startswith(f"lastwatt/{SITE}/device/") for t in retained)


# --- hardware-loop truth (issue 15) ----------------------------------------------------


def test_bridge_has_a_retained_birth_and_last_will_and_names_itself_in_device_statuses(rig):
    bridge_topic = topics.bridge_status_topic(SITE, SRC)
    [(topic, payload, qos, retain)] = rig.birth
    assert (topic, qos, retain) == (bridge_topic, 1, True)
    assert decode(DeviceStatus, payload).online
    will = rig.broker.clients[0].will
    assert will.topic == bridge_topic and will.retain
    assert not decode(DeviceStatus, will.payload).online
    rig.inject(f"tele/{TAS[1]}/LWT", "Online")
    status = decode(DeviceStatus, rig.broker.payloads(topics.status_topic(SITE, TAS[0]))[-1])
    assert status.via == SRC and status.online


def test_tasmota_without_pulsetime_is_flagged_and_read_at_its_predicted_quota(rig):
    rig.inject(f"tele/{TAS[1]}/LWT", "Online")
    rig.sent()
    rig.inject(f"stat/{TAS[1]}/RESULT", '{"Command":"Unknown"}')  # answer to the probe
    sent = rig.sent()
    status = decode(DeviceStatus, next(p for t, p, _, _ in sent if t.endswith("/t1/status")))
    assert status.off_timer is False
    assert (f"cmnd/{TAS[1]}/TelePeriod", b"10") in [(t, p) for t, p, _, _ in sent]
    rig.sensor(1.000, 3600)  # 1 Wh per s
    rig.setpoint(TAS[0], quota_wh=20.0, valid_s=600)
    assert rig.commands() == [(f"cmnd/{TAS[1]}/POWER", b"ON")]  # no PulseTime to arm
    rig.inject(f"stat/{TAS[1]}/POWER", "ON")
    rig.advance(19.9)
    assert rig.commands() == []
    rig.advance(0.1)  # the predicted quota: read it now
    assert rig.commands() == [(f"cmnd/{TAS[1]}/Status", b"8")]
    body = {"StatusSNS": {"ENERGY": {"Total": 1.020, "Power": 3600}}}
    rig.inject(f"stat/{TAS[1]}/STATUS8", json.dumps(body))
    assert rig.commands() == [(f"cmnd/{TAS[1]}/POWER", b"OFF"), (f"cmnd/{TAS[1]}/Status", b"8")]


def test_read_request_reads_every_plug_and_its_answer_is_published_even_unchanged(rig):
    rig.sensor(1.000, 0)
    rig.sent()
    rig.inject(topics.read_topic(SITE), b'{"round":0,"ts":1.0,"v":1}')
    cmds = rig.commands()
    assert (f"cmnd/{TAS[1]}/Status", b"8") in cmds
    assert any(json.loads(p)["method"] == "Switch.GetStatus" for t, p in cmds if t.endswith("/rpc"))
    rig.sensor(1.000, 0)  # unchanged, right after the last one: published all the same
    assert len(rig.readings(TAS[0])) == 1


def test_a_new_runs_round_0_outranks_the_last_runs_round_5_but_a_stale_setpoint_does_not(rig):
    def send(epoch: int, round_: int, on: bool) -> None:
        sp = Setpoint(TAS[0], round_, on, 1000.0, 1e6, rig.clock() + 100, epoch=epoch)
        rig.inject(topics.set_topic(SITE, TAS[0]), encode(sp))
    send(1, 5, True)
    send(2, 0, False)  # the next run
    assert not rig.bridge.devices[TAS[0]].want_on and rig.bridge.devices[TAS[0]].epoch == 2
    send(1, 6, True)  # the old run, delivered late
    assert rig.bridge.counts["stale_setpoints"] == 1
    assert not rig.bridge.devices[TAS[0]].want_on


def test_setpoints_queued_for_one_device_collapse_into_the_newest(rig):
    for k in range(5):  # a backlog arriving at once
        sp = Setpoint(TAS[0], k, k % 2 == 0, 1000.0, 1e6, rig.clock() + 100)
        rig.broker.inject(topics.set_topic(SITE, TAS[0]), encode(sp))
    rig.run()
    assert rig.bridge.counts["coalesced_setpoints"] == 4 and rig.bridge.counts["setpoints"] == 1
    assert rig.bridge.devices[TAS[0]].round == 4


def test_nothing_is_queued_while_the_bridge_is_disconnected(rig):
    rig.setpoint(TAS[0], quota_wh=1e6, valid_s=100)
    rig.sent()
    rig.broker.clients[0].connected = False
    rig.advance(100)  # valid_until passes: the switch-off and its read are not kept for later
    assert rig.bridge.counts["dropped_offline"] >= 2
    rig.broker.clients[0].connected = True
    rig.advance(1)
    assert rig.commands() == []


def test_stale_on_answers_to_an_earlier_query_do_not_repeat_an_unconfirmed_off(rig):
    rig.inject(f"tele/{TAS[1]}/LWT", "Online")  # polls (POWER query) and switches it off
    rig.sent()
    rig.inject(f"stat/{TAS[1]}/RESULT", '{"POWER":"ON"}')  # the query's answers, stale
    rig.inject(f"stat/{TAS[1]}/POWER", "ON")
    assert rig.commands() == []
    rig.inject(f"stat/{TAS[1]}/POWER", "OFF")  # the OFF confirmed: a later ON is news
    rig.inject(f"stat/{TAS[1]}/POWER", "ON")
    assert rig.commands() == [(f"cmnd/{TAS[1]}/POWER", b"OFF")]


# --- quotas shorter than the off-timer's shortest step --------------------------------------


def test_a_quota_shorter_than_the_shortest_pulsetime_is_drawn_with_that_pulsetime(rig):
    rig.sensor(0.0, 3600)  # 3600 W: 1 Wh a second
    # 0.0625 Wh is 0.0625 s of draw, below PulseTime's 0.1 s step (compressed time makes such
    # quotas common): switched on all the same, with the shortest PulseTime (1 = 0.1 s)
    rig.setpoint(TAS[0], quota_wh=0.0625, valid_s=600)
    assert rig.commands() == [(f"cmnd/{TAS[1]}/PulseTime", b"1"),
                              (f"cmnd/{TAS[1]}/POWER", b"ON")]
    rig.inject(f"stat/{TAS[1]}/POWER", "ON")
    rig.advance(0.1)
    rig.inject(f"stat/{TAS[1]}/POWER", "OFF")  # its PulseTime ended: 0.1 Wh drawn
    rig.sent()
    rig.sensor(0.0001, 0)
    assert (f"cmnd/{TAS[1]}/POWER", b"ON") not in rig.commands()  # the quota is met
    assert rig.bridge.counts["quota_off"] == 1


def test_a_quota_shorter_than_the_validity_left_gets_no_pulsetime_past_valid_until(rig):
    rig.sensor(0.0, 3600)
    # 0.05 s of quota, but the shortest PulseTime (0.1 s) would run past valid_until (0.08 s)
    rig.setpoint(TAS[0], quota_wh=0.05, valid_s=0.08)
    assert rig.commands() == [(f"cmnd/{TAS[1]}/POWER", b"OFF")]
    assert rig.bridge.counts["valid_until_off"] == 1


def test_a_reading_leaving_less_than_one_pulsetime_step_stops_the_plug_at_the_quota_not_now(rig):
    rig.sensor(0.0, 3600)
    rig.setpoint(TAS[0], quota_wh=1.0, valid_s=600)  # 1 s at 3600 W: PulseTime 10
    rig.inject(f"stat/{TAS[1]}/POWER", "ON")
    rig.sent()
    rig.advance(0.5)
    rig.sensor(0.0009, 7200)  # the draw doubled: 0.1 Wh left is 0.05 s, below one step
    assert (f"cmnd/{TAS[1]}/POWER", b"OFF") not in rig.commands()
    rig.advance(0.04)
    assert rig.commands() == []
    rig.advance(0.02)  # past the predicted quota
    assert rig.commands() == [(f"cmnd/{TAS[1]}/POWER", b"OFF"), (f"cmnd/{TAS[1]}/Status", b"8")]
    assert rig.bridge.counts["quota_off"] == 1


def test_a_plug_its_timer_stopped_with_less_than_one_step_left_stays_off(rig):
    rig.sensor(0.0, 3600)
    rig.setpoint(TAS[0], quota_wh=50.0, valid_s=600)
    rig.inject(f"stat/{TAS[1]}/POWER", "ON")
    rig.advance(49.95)
    rig.inject(f"stat/{TAS[1]}/POWER", "OFF")  # its timer (rounded down) ended
    rig.sent()
    rig.sensor(0.04995, 0)  # 0.05 Wh left: the timer's rounding, counted as met
    assert (f"cmnd/{TAS[1]}/POWER", b"ON") not in rig.commands()
    assert rig.bridge.counts["timer_resumed"] == 0 and not rig.bridge.devices[TAS[0]].want_on
