"""The bridge service: native LastWatt topics <-> vendor dialects, per device.

For every vendor device in the config it subscribes to the device's native ``set`` topic and
to its vendor topics. A setpoint becomes a relay command; vendor energy registers become
native ``meter`` readings with a monotonic ``energy_wh``; vendor availability becomes the
native retained ``status``. Vendor plugs know nothing of quotas or ``valid_until``, so the
bridge enforces both. With ``failsafe`` on (the default) it arms the plug's own off-timer
(Tasmota PulseTime, Shelly toggle_after) for the predicted time to quota — remaining quota /
last measured power — capped at ``valid_until``, and re-arms it at every reading while the
plug is on: the plug stops itself at its quota, without the reading -> bridge -> command
delay, and at ``valid_until`` even when the bridge is gone. As a backstop the bridge switches
a plug off when the energy metered since the round's first setpoint reaches ``quota_wh`` and
when ``valid_until`` passes. A plug whose timer stopped it early (its draw fell) is read
and switched on again while quota is left.

Final reads, quota polls, the off-timer capability check and the bridge's own birth / Last
Will live in :mod:`firmware_bridge.readout`. The bridge keeps no MQTT session and sends
nothing while disconnected: after a reconnect the retained setpoints give each device its
current state once, never a backlog.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter as Tally
from collections.abc import Callable
from typing import Any

from firmware_bridge.connection import Connect
from firmware_bridge.counters import MonotonicCounter
from firmware_bridge.dialects import DIALECTS, Dialect, DialectError
from firmware_bridge.dialects.base import Capability, Counter, Event, Online, Switched
from firmware_bridge.homeassistant import Discovery
from firmware_bridge.readout import ReadoutMixin
from firmware_bridge.state import DeviceState
from firmware_bridge.worker import Clock, Worker
from lastwatt.config.bridge import BridgeConfig
from lastwatt.config.mqtt import resolve_broker
from lastwatt.errors import ConfigError
from lastwatt.messages import MessageError, MeterReading, Setpoint, decode, encode
from lastwatt.transport import topics
from lastwatt.transport.mqtt import RateLimitedLog
from lastwatt.transport.mqtt_client import Inbound, MqttClient
from lastwatt.transport.publish import Publish

log = logging.getLogger(__name__)

# Shelly reports the same register on events/rpc and status/switch:0; an unchanged reading
# within this window of the last one published is not republished. Later it is: an idle
# device's reading is the baseline of a controller that (re)subscribed after the last change.
SAME_READING_WINDOW_S = 0.5
# The plug's off-timer is restarted when a reading moves the predicted stop by more than this
# share of the time between readings (later: at most that share of an interval overshoot).
# Not on every reading: Tasmota writes PulseTime to its settings flash each time.
REARM_SHARE = 0.1
# An OFF not yet confirmed is not sent again within this time: the answers to a query sent
# before it (Tasmota answers on RESULT and POWER) still say ON, and are no reason to repeat it.
OFF_REPEAT_S = 1.0


def make_dialects(cfg: BridgeConfig) -> dict[str, Dialect]:
    """One dialect instance per dialect the devices use, built from the ``DIALECTS`` registry."""
    by_dialect: dict[str, list[str]] = {}
    for i, d in enumerate(cfg.devices):
        if d.dialect == "native":
            continue  # native devices speak for themselves
        if d.dialect not in DIALECTS:
            raise ConfigError(f"devices[{i}].dialect", f"the bridge has no dialect {d.dialect!r}",
                              f"use one of {', '.join(['native', *DIALECTS])}")
        by_dialect.setdefault(d.dialect, []).append(d.topic or d.id)
    return {name: DIALECTS[name].from_config(device_topics, cfg)
            for name, device_topics in by_dialect.items()}


class Bridge(ReadoutMixin):
    """``Bridge(cfg).start()`` connects and serves in a thread; ``stop()`` leaves cleanly.

    ``clock`` (epoch seconds) stamps readings, is what ``valid_until`` is compared with and
    runs every timer; ``connect`` makes the MQTT connection (``MqttClient``; tests pass a
    fake). ``connect()`` without ``start()`` leaves the worker to the caller
    (``worker.run_pending()``), which is how the unit tests drive the bridge.
    """

    def __init__(self, cfg: BridgeConfig, mqtt_url: str | None = None,
                 clock: Clock = time.time, connect: Connect = MqttClient) -> None:
        url = resolve_broker(mqtt_url, cfg.mqtt)
        self.cfg = cfg
        self.site = cfg.site
        self.clock = clock
        self.dialects = make_dialects(cfg)
        self.devices: dict[str, DeviceState] = {}
        self.by_vendor: dict[tuple[str, str], DeviceState] = {}
        for e in cfg.vendor_devices:
            st = DeviceState(e, self.dialects[e.dialect], e.topic or e.id,
                             MonotonicCounter(cfg.jitter_wh))
            self.devices[e.id] = st
            self.by_vendor[(e.dialect, st.topic)] = st
        self.routes: dict[str, Dialect] = {
            t: dl for dl in self.dialects.values() for t in dl.subscriptions()
        }
        # one handler per event type: a new event is a method and a line here
        self.handlers: dict[type, Callable[[DeviceState, Any], None]] = {
            Counter: self._on_counter, Switched: self._on_switched, Online: self._on_online,
            Capability: self._on_capability,
        }
        self.rejected: Tally[str] = Tally()
        self.counts: Tally[str] = Tally()
        self._log = RateLimitedLog(log, cfg.mqtt.log_interval_s)
        self.worker = Worker(self._on_message, f"bridge-{cfg.site}", clock)
        self.bridge_id = cfg.resolved_client_id()
        self._latest: dict[str, Setpoint] = {}  # setpoints not yet applied, newest per device
        subs = [topics.all_setpoints_pattern(cfg.site), topics.read_topic(cfg.site),
                *self.routes]
        self.ha = (Discovery(cfg.site, cfg.devices, cfg.homeassistant)
                   if cfg.homeassistant.discovery else None)
        if self.ha is not None:
            subs += self.ha.subscriptions()
        # no persistent session: what was queued for a dead bridge is stale; the retained
        # setpoints and vendor statuses it gets on resubscribing are the current state
        mqtt = cfg.mqtt.model_copy(update={"session_expiry_s": 0})
        self.client = connect(url, mqtt, self.bridge_id, will=self._bridge_status(False),
                              subscriptions=subs, on_connect=self._on_connect)
        self.client.inbound = self.worker.queue  # paho thread hands messages to the worker

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> Bridge:
        self.worker.start()
        return self.connect()

    def connect(self) -> Bridge:
        for dl in self.dialects.values():  # polling dialects (Modbus) connect, may refuse
            dl.start(self._polled_sink(dl), self._reject_later)
        self.client.start()
        ha = self.ha
        if ha is not None:
            self.worker.post(lambda: self._send_all(ha.announcements()))
        if self.cfg.poll_s > 0:
            self.worker.post(self._schedule_polls)
        return self

    def stop(self) -> None:
        """Leave cleanly: say offline (as the Will would), then disconnect."""
        self._say_offline()
        for dl in self.dialects.values():
            dl.stop()
        self.client.stop()
        self.worker.stop()

    # --- inbound ------------------------------------------------------------------------

    def _on_message(self, msg: Inbound) -> None:
        if self.ha is not None and self.ha.handles(msg.topic):
            self._on_homeassistant(msg)
            return
        dialect = self.routes.get(msg.topic)
        if dialect is not None:
            self._on_vendor(dialect, msg)
            return
        if msg.topic == topics.read_topic(self.site):
            self._on_read_request(msg)
            return
        parsed = topics.parse_device_topic(self.site, msg.topic)
        if parsed is None or parsed[1] != topics.SET or parsed[0] not in self.devices:
            return  # a native device's setpoint: not ours to translate
        try:
            sp = decode(Setpoint, msg.payload)
        except MessageError as err:
            self._reject(err.kind, f"{msg.topic}: {err}")
            return
        if sp.device != parsed[0]:
            self._reject("schema", f"{msg.topic}: body names device {sp.device!r}")
            return
        # dedupe by device: setpoints queued behind each other (a burst after a reconnect)
        # collapse into the newest; it is applied after everything queued now
        if sp.device in self._latest:
            self.counts["coalesced_setpoints"] += 1
        else:
            self.worker.post(lambda d=sp.device: self._apply_latest(d))
        self._latest[sp.device] = sp

    def _apply_latest(self, device: str) -> None:
        sp = self._latest.pop(device, None)
        if sp is not None:
            self._on_setpoint(self.devices[device], sp)

    def _on_vendor(self, dialect: Dialect, msg: Inbound) -> None:
        try:
            device_topic, events = dialect.decode(msg.topic, msg.payload)
        except DialectError as err:
            self._reject(err.kind, f"{msg.topic}: {err}")
            return
        st = self.by_vendor.get((dialect.name, device_topic))
        if st is None:
            self._reject("unknown_device", f"{msg.topic}: no device with topic {device_topic!r}")
            return
        self.on_events(st, events)

    def _on_homeassistant(self, msg: Inbound) -> None:
        """A retained discovery config of ours (cleared when stale) or an HA switch command:
        ignored unless ``allow_override``; then OFF holds a bridged relay off."""
        assert self.ha is not None
        self._send_all(self.ha.stale(msg.topic, msg.payload))
        try:
            cmd = self.ha.command(msg.topic, msg.payload)
        except ValueError as err:
            self._reject("ha_command", str(err))
            return
        if cmd is None:
            return
        dev_id, on = cmd
        st = self.devices.get(dev_id)
        if not self.cfg.homeassistant.allow_override or st is None:
            self.counts["ha_commands_ignored"] += 1  # read-only, or a native device
            return
        if on:
            self.ha.forced_off.discard(dev_id)  # the relay follows its next setpoint
        else:
            self.ha.forced_off.add(dev_id)
            self._switch(st, False)
        self.counts["ha_overrides"] += 1

    def _polled_sink(self, dialect: Dialect) -> Callable[[str, list[Event]], None]:
        """What a polling dialect's thread hands its events to: the worker, in order."""
        def sink(device_topic: str, events: list[Event]) -> None:
            st = self.by_vendor[(dialect.name, device_topic)]
            self.worker.post(lambda: self.on_events(st, events))
        return sink

    def _reject_later(self, kind: str, detail: str) -> None:
        self.worker.post(lambda: self._reject(kind, detail))

    def on_events(self, st: DeviceState, events: list[Event]) -> None:
        """What a device reported, already read by its dialect (worker thread only)."""
        for ev in events:
            self.handlers[type(ev)](st, ev)

    def _on_counter(self, st: DeviceState, ev: Counter) -> None:
        st.counter.update(ev.total_wh)
        st.seen_counter = True
        if st.round_start_wh is None and st.round >= 0:
            st.round_start_wh = st.counter.energy_wh  # first register after the setpoint
        if ev.power_w is not None:
            st.power_w = ev.power_w
            if ev.power_w > 0:
                st.on_power_w = ev.power_w
        fresh = self._report(st, self.clock())
        if not st.want_on:
            return
        if st.round_energy_wh() >= st.quota_wh:
            self.counts["quota_off"] += 1
            self._switch(st, False)
        elif st.stopped_self:  # its register read after the timer: on again while quota is left
            st.stopped_self = False
            self._resume(st)
        elif fresh and st.on and self.cfg.failsafe and st.off_timer is not False:
            self._rearm(st)
        self._plan_poll(st)

    def _report(self, st: DeviceState, now: float) -> bool:
        """Publish the native reading unless it repeats the last one within
        SAME_READING_WINDOW_S (Shelly sends each register twice); is it a new one?"""
        st.last_counter_ts = now
        values = (st.counter.energy_wh, st.power_w, bool(st.on))
        fresh = values != st.last_sent
        if fresh and math.isfinite(st.last_sent_ts):
            st.reading_gap_s = now - st.last_sent_ts
        if fresh or st.read_pending or now - st.last_sent_ts > SAME_READING_WINDOW_S:
            st.read_pending = False
            st.last_sent, st.last_sent_ts = values, now
            reading = MeterReading(st.entry.id, now, *values)
            self._send(Publish(topics.meter_topic(self.site, st.entry.id), encode(reading)))
            self.counts["readings"] += 1
        return fresh

    def _on_switched(self, st: DeviceState, ev: Switched) -> None:
        was_on, st.on = st.on, ev.on
        if not ev.on:
            st.off_sent_ts = -math.inf  # confirmed: a later ON is news
        if ev.on and not st.want_on:  # switched on by a button, a reboot or a late reply
            self._send_off(st)
        elif was_on and not ev.on and st.want_on and self.cfg.failsafe:
            # our timer ended before the quota did (the draw fell, or timer resolution):
            # read the register now and decide on the reading
            st.stopped_self = True
            st.timer_end_ts = math.inf
            self.counts["timer_off"] += 1
            self._send_all(st.dialect.poll(st.topic))

    def _on_online(self, st: DeviceState, ev: Online) -> None:
        st.online = ev.online
        self._publish_status(st)
        if ev.online:  # a (re)booted device: configure it, learn its state, reassert ours
            self._send_all(st.dialect.probe(st.topic))
            self._send_all(st.dialect.setup(st.topic))
            self._send_all(st.dialect.poll(st.topic))
            self._switch(st, st.want_on)

    def _on_setpoint(self, st: DeviceState, sp: Setpoint) -> None:
        if sp.order() < (st.epoch, st.round):  # an older round's, or an older run's
            self.counts["stale_setpoints"] += 1
            return
        if sp == st.applied:  # a reassertion: switching again would restart the timer
            self.counts["duplicate_setpoints"] += 1
            return
        st.applied = sp
        if sp.order() > (st.epoch, st.round):  # a new round (a new run's round 0 included)
            st.epoch, st.round = sp.order()
            st.round_start_wh = st.counter.energy_wh if st.seen_counter else None
            st.stopped_self = False
        st.quota_wh = sp.quota_wh
        st.valid_until = sp.valid_until
        self.counts["setpoints"] += 1
        self._switch(st, sp.on)
        if st.want_on:
            self.worker.call_at(sp.valid_until, lambda: self._expire(st))

    # --- switching ----------------------------------------------------------------------

    def _switch(self, st: DeviceState, on: bool) -> None:
        now = self.clock()
        want = on and now < st.valid_until and st.round_energy_wh() < st.quota_wh and (
            self.ha is None or st.entry.id not in self.ha.forced_off)
        off_s = None
        st.timer_end_ts = math.inf
        if want and self.cfg.failsafe and st.off_timer is not False:
            off_s = self._arm_s(st, now)
            want = off_s > 0
        was_on = st.want_on or bool(st.on)
        st.want_on = want
        if want:
            st.off_sent_ts = -math.inf
            self._send_all(st.dialect.switch(st.topic, True, off_s))
        else:
            self._send_off(st)
        if want:
            self._plan_poll(st)
        elif was_on:  # the register after the switch-off: the round's last energy
            self._final_read(st)

    def _send_off(self, st: DeviceState) -> None:
        now = self.clock()
        if now - st.off_sent_ts < OFF_REPEAT_S:
            self.counts["off_repeats_skipped"] += 1
            return
        st.off_sent_ts = now
        self._send_all(st.dialect.switch(st.topic, False))

    def _time_left_s(self, st: DeviceState, now: float) -> tuple[float, str]:
        """Until the predicted quota (at the last measured power) or ``valid_until``, and
        the counter of the stop that comes first."""
        left_s, reason = st.valid_until - now, "valid_until_off"
        if st.on_power_w > 0 and math.isfinite(st.quota_wh):
            used_wh = st.round_energy_wh()
            if st.on:  # drawn since the last reading, at the last power
                used_wh += st.on_power_w * (now - st.last_counter_ts) / 3600.0
            quota_s = (st.quota_wh - used_wh) / st.on_power_w * 3600.0
            if quota_s < left_s:
                left_s, reason = quota_s, "quota_off"
        return left_s, reason

    def _rearm(self, st: DeviceState) -> None:
        now = self.clock()
        left_s, reason = self._time_left_s(st, now)
        off_s = st.dialect.off_timer_s(left_s)
        end = now + left_s  # the wanted end, before the timer's rounding down
        if abs(end - st.timer_end_ts) <= REARM_SHARE * st.reading_gap_s:
            return
        st.timer_end_ts = end
        if off_s <= 0:  # less than one timer step left: the bridge stops it at the quota
            self._stop_at(st, end, reason)
            return
        self.counts["timer_rearmed"] += 1
        self._send_all(st.dialect.rearm(st.topic, off_s))

    def _arm_s(self, st: DeviceState, now: float) -> float:
        """The off-timer to arm when switching on; 0: do not switch on. A quota shorter than
        the timer's shortest step (small, or in compressed time) is drawn, with the shortest
        timer: over by less than one step, where refusing it would leave it all undrawn."""
        left_s, reason = self._time_left_s(st, now)
        st.timer_end_ts = now + left_s
        off_s = st.dialect.off_timer_s(left_s)
        if off_s <= 0 < left_s and reason == "quota_off":
            off_s = st.dialect.off_timer_s(min(st.dialect.timer_step_s, st.valid_until - now))
            reason = "valid_until_off"  # if even that does not fit
        if off_s <= 0:  # quota reached, or less validity left than the shortest step
            self.counts[reason] += 1
        return off_s

    def _stop_at(self, st: DeviceState, end: float, reason: str) -> None:
        """Switch the plug off at ``end`` unless a newer prediction or switch replaced it."""
        def stop() -> None:
            if st.want_on and st.timer_end_ts == end:
                self.counts[reason] += 1
                self._switch(st, False)
        self.worker.call_at(end, stop)

    def _resume(self, st: DeviceState) -> None:
        """On again after its timer stopped it early, while at least one timer step of quota
        is left: less is the timer's rounding down, counted as met (no sliver of a switch-on)."""
        left_s, reason = self._time_left_s(st, self.clock())
        if st.dialect.off_timer_s(left_s) > 0:
            self._switch(st, True)
            self.counts["timer_resumed"] += st.want_on
        else:
            self.counts[reason] += 1
            self._switch(st, False)

    def _expire(self, st: DeviceState) -> None:
        if st.want_on and self.clock() >= st.valid_until:
            self.counts["valid_until_off"] += 1
            self._switch(st, False)

    # --- polling ------------------------------------------------------------------------

    def _schedule_polls(self) -> None:
        n = max(len(self.devices), 1)
        t0 = self.clock()
        for i, st in enumerate(self.devices.values()):
            # spread over the period so a big site is not polled in one burst
            self.worker.call_at(t0 + self.cfg.poll_s * (i + 1) / n, lambda st=st: self._poll(st))

    def _poll(self, st: DeviceState) -> None:
        now = self.clock()
        if st.online is not False and now - st.last_counter_ts >= self.cfg.poll_s:
            self.counts["polls"] += 1
            self._send_all(st.dialect.poll(st.topic))
        self.worker.call_at(now + self.cfg.poll_s, lambda: self._poll(st))

    # --- outbound -----------------------------------------------------------------------

    def _send(self, p: Publish) -> None:
        if not self.client.is_connected():
            # nothing queues for later: after the reconnect the current state is reasserted
            self.counts["dropped_offline"] += 1
            return
        self.client.publish(p.topic, p.payload, p.qos, p.retain)

    def _send_all(self, ps: list[Publish]) -> None:
        for p in ps:
            self._send(p)

    def _reject(self, kind: str, detail: str) -> None:
        self.rejected[kind] += 1
        self._log.warning(kind, f"bridge rejected {kind} ({self.rejected[kind]} so far): {detail}")
