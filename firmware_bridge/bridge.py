"""The bridge service: native LastWatt topics <-> vendor dialects, per device.

For every vendor device in the config it subscribes to the device's native ``set`` topic and
to its vendor topics. A setpoint becomes a relay command; vendor energy registers become
native ``meter`` readings with a monotonic ``energy_wh``; vendor availability becomes the
native retained ``status``. Vendor plugs know nothing of quotas or ``valid_until``, so the
bridge enforces both: it switches a plug off when the energy metered since the round's
first setpoint reaches ``quota_wh``, and when ``valid_until`` passes. With ``failsafe`` on it
also arms the plug's own timer (PulseTime / toggle_after) so the plug turns off by itself
when the bridge dies.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field

from firmware_bridge.config import BridgeConfig
from firmware_bridge.counters import MonotonicCounter
from firmware_bridge.dialects import Counter, Dialect, DialectError, Event, Online, Publish
from firmware_bridge.dialects.base import Switched
from firmware_bridge.dialects.shelly import ShellyDialect
from firmware_bridge.dialects.tasmota import TasmotaDialect
from firmware_bridge.worker import Worker
from lastwatt.config import DeviceEntry
from lastwatt.errors import InputError
from lastwatt.messages import DeviceStatus, MessageError, MeterReading, Setpoint, decode, encode
from lastwatt.transport import topics
from lastwatt.transport.mqtt import RateLimitedLog
from lastwatt.transport.mqtt_client import Inbound, MqttClient

log = logging.getLogger(__name__)

# Shelly reports the same register on events/rpc and status/switch:0; an unchanged reading
# within this window of the last one published is not republished. Later it is: an idle
# device's reading is the baseline of a controller that (re)subscribed after the last change.
SAME_READING_WINDOW_S = 0.5


@dataclass(slots=True)
class DeviceState:
    """What the bridge knows and wants of one vendor device."""

    entry: DeviceEntry
    dialect: Dialect
    topic: str
    counter: MonotonicCounter
    round: int = -1
    round_start_wh: float | None = None  # native energy when the round's first setpoint came
    quota_wh: float = math.inf
    valid_until: float = 0.0
    want_on: bool = False
    on: bool | None = None  # as last reported by the device
    online: bool | None = None
    power_w: float = 0.0
    seen_counter: bool = False
    last_counter_mono: float = field(default=-math.inf)
    last_sent_mono: float = field(default=-math.inf)
    last_sent: tuple[float, float, bool] | None = None

    def round_energy_wh(self) -> float:
        if self.round_start_wh is None:
            return 0.0
        return self.counter.energy_wh - self.round_start_wh


def make_dialects(cfg: BridgeConfig) -> dict[str, Dialect]:
    by_dialect: dict[str, list[str]] = {}
    for d in cfg.vendor_devices:
        by_dialect.setdefault(d.dialect, []).append(d.topic or d.id)
    out: dict[str, Dialect] = {}
    if "tasmota" in by_dialect:
        t = cfg.tasmota
        out["tasmota"] = TasmotaDialect(by_dialect["tasmota"], t.full_topic, t.prefixes,
                                        t.tele_period_s)
    if "shelly" in by_dialect:
        out["shelly"] = ShellyDialect(by_dialect["shelly"], cfg.resolved_src())
    return out


class Bridge:
    """``Bridge(cfg).start()`` connects and serves in a thread; ``stop()`` leaves cleanly."""

    def __init__(self, cfg: BridgeConfig, mqtt_url: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        url = mqtt_url or cfg.mqtt.url
        if url is None:
            raise InputError("--mqtt", "no broker given", "pass --mqtt URL or set mqtt.url")
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
        self.rejected: Tally[str] = Tally()
        self.counts: Tally[str] = Tally()
        self._log = RateLimitedLog(log, cfg.mqtt.log_interval_s)
        self.worker = Worker(self._on_message, f"bridge-{cfg.site}")
        subs = [topics.all_setpoints_pattern(cfg.site), *self.routes]
        self.client = MqttClient(url, cfg.mqtt, cfg.resolved_client_id(), subscriptions=subs)
        self.client.inbound = self.worker.queue  # paho thread hands messages to the worker

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> Bridge:
        self.worker.start()
        self.client.start()
        if self.cfg.poll_s > 0:
            self.worker.post(self._schedule_polls)
        return self

    def stop(self) -> None:
        self.client.stop()
        self.worker.stop()

    def state(self, device_id: str) -> DeviceState:
        """A device's state, read in the worker thread (for tests and diagnostics)."""
        return self.worker.call(lambda: self.devices[device_id])

    # --- inbound ------------------------------------------------------------------------

    def _on_message(self, msg: Inbound) -> None:
        dialect = self.routes.get(msg.topic)
        if dialect is not None:
            self._on_vendor(dialect, msg)
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
        self._on_setpoint(self.devices[sp.device], sp)

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
        for ev in events:
            self._on_event(st, ev)

    def _on_event(self, st: DeviceState, ev: Event) -> None:
        now = self.clock()
        if isinstance(ev, Counter):
            st.counter.update(ev.total_wh)
            if st.round_start_wh is None and st.round >= 0:
                st.round_start_wh = st.counter.energy_wh  # first register after the setpoint
            if ev.power_w is not None:
                st.power_w = ev.power_w
            mono = time.monotonic()
            st.seen_counter = True
            st.last_counter_mono = mono
            values = (st.counter.energy_wh, st.power_w, bool(st.on))
            if values != st.last_sent or mono - st.last_sent_mono > SAME_READING_WINDOW_S:
                st.last_sent, st.last_sent_mono = values, mono
                reading = MeterReading(st.entry.id, now, *values)
                self._send(Publish(topics.meter_topic(self.site, st.entry.id), encode(reading)))
                self.counts["readings"] += 1
            if st.want_on and st.round_energy_wh() >= st.quota_wh:
                self.counts["quota_off"] += 1
                self._switch(st, False)
        elif isinstance(ev, Switched):
            st.on = ev.on
            if ev.on and not st.want_on:  # switched on by a button, a reboot or a late reply
                self._send_all(st.dialect.switch(st.topic, False))
        elif isinstance(ev, Online):
            st.online = ev.online
            status = DeviceStatus(st.entry.id, ev.online, now)
            self._send(Publish(topics.status_topic(self.site, st.entry.id), encode(status),
                               1, True))
            if ev.online:  # a (re)booted device: configure it, learn its state, reassert ours
                self._send_all(st.dialect.setup(st.topic))
                self._send_all(st.dialect.poll(st.topic))
                self._switch(st, st.want_on)

    def _on_setpoint(self, st: DeviceState, sp: Setpoint) -> None:
        if sp.round < st.round:
            self.counts["stale_setpoints"] += 1
            return
        if sp.round > st.round:
            st.round = sp.round
            st.round_start_wh = st.counter.energy_wh if st.seen_counter else None
        st.quota_wh = sp.quota_wh
        st.valid_until = sp.valid_until
        self.counts["setpoints"] += 1
        self._switch(st, sp.on)
        if st.want_on:
            delay_s = max(0.0, sp.valid_until - self.clock())
            self.worker.call_at(time.monotonic() + delay_s, lambda: self._expire(st))

    def _switch(self, st: DeviceState, on: bool) -> None:
        now = self.clock()
        st.want_on = on and now < st.valid_until and st.round_energy_wh() < st.quota_wh
        failsafe_s = st.valid_until - now if (st.want_on and self.cfg.failsafe) else None
        self._send_all(st.dialect.switch(st.topic, st.want_on, failsafe_s))

    def _expire(self, st: DeviceState) -> None:
        if st.want_on and self.clock() >= st.valid_until:
            self.counts["valid_until_off"] += 1
            self._switch(st, False)

    # --- polling ------------------------------------------------------------------------

    def _schedule_polls(self) -> None:
        n = max(len(self.devices), 1)
        t0 = time.monotonic()
        for i, st in enumerate(self.devices.values()):
            # spread over the period so a big site is not polled in one burst
            self.worker.call_at(t0 + self.cfg.poll_s * (i + 1) / n, lambda st=st: self._poll(st))

    def _poll(self, st: DeviceState) -> None:
        if st.online is not False and time.monotonic() - st.last_counter_mono >= self.cfg.poll_s:
            self.counts["polls"] += 1
            self._send_all(st.dialect.poll(st.topic))
        self.worker.call_at(time.monotonic() + self.cfg.poll_s, lambda: self._poll(st))

    # --- outbound -----------------------------------------------------------------------

    def _send(self, p: Publish) -> None:
        self.client.publish(p.topic, p.payload, p.qos, p.retain)

    def _send_all(self, ps: list[Publish]) -> None:
        for p in ps:
            self._send(p)

    def _reject(self, kind: str, detail: str) -> None:
        self.rejected[kind] += 1
        self._log.warning(kind, f"bridge rejected {kind} ({self.rejected[kind]} so far): {detail}")
