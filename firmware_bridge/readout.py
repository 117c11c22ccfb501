"""The bridge's side of hardware-loop truth (issue 15), mixed into :class:`Bridge`.

- **Final reads**: every switch-off and every controller read request
  (``lastwatt/<site>/read``) is followed by a meter read (Tasmota ``Status 8``, Shelly
  ``Switch.GetStatus``) whose answer is published even when nothing changed, so a round books
  the plug's register, not its last telemetry.
- **Quota polls**: a plug is read soon after it is switched on while its power is unknown
  (the off-timer's prediction needs it) and, when it has no off-timer, at the predicted time
  to quota: the answer's backstop switches it off, late by one read's round trip.
- **Capability**: a device whose answer shows no off-timer (Tasmota ``{"Command":"Unknown"}``
  to ``PulseTime``, a Shelly error to ``toggle_after``) is flagged in its status
  (``off_timer: false``) and asked for its shortest telemetry period.
- **Bridge status**: birth and Last Will on ``lastwatt/<site>/bridge/<id>/status``; device
  statuses name the bridge (``via``), so the controller takes them offline with it.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Callable
from typing import TYPE_CHECKING

from firmware_bridge.connection import Connection
from firmware_bridge.dialects.base import Capability
from firmware_bridge.worker import Worker
from lastwatt.config.bridge import BridgeConfig
from lastwatt.messages import DeviceStatus, MessageError, ReadRequest, decode, encode
from lastwatt.transport import topics
from lastwatt.transport.mqtt_client import Inbound
from lastwatt.transport.publish import Publish

if TYPE_CHECKING:
    from firmware_bridge.state import DeviceState

log = logging.getLogger(__name__)

MIN_POLL_GAP_S = 0.02  # a plug without an off-timer is read no more often than this
STOP_FLUSH_S = 2.0  # stop(): wait this long for the offline status to go out


class ReadoutMixin:
    """Needs the bridge's worker, clock, counters and senders (declared for the checker)."""

    cfg: BridgeConfig
    site: str
    bridge_id: str
    clock: Callable[[], float]
    worker: Worker
    client: Connection
    counts: Tally[str]
    devices: dict[str, DeviceState]
    _send: Callable[[Publish], None]
    _send_all: Callable[[list[Publish]], None]
    _reject: Callable[[str, str], None]
    _switch: Callable[[DeviceState, bool], None]
    _time_left_s: Callable[[DeviceState, float], tuple[float, str]]

    def _bridge_status(self, online: bool) -> Publish:
        """The bridge's birth (``online``) or Last Will, retained."""
        status = DeviceStatus(self.bridge_id, online, self.clock() if online else 0.0)
        return Publish(topics.bridge_status_topic(self.site, self.bridge_id), encode(status),
                       1, True)

    def _on_connect(self, reconnected: bool) -> None:
        self.worker.post(self._birth)  # paho's thread: the worker publishes the birth

    def _birth(self) -> None:
        self._send(self._bridge_status(True))

    def _say_offline(self) -> None:
        if self.client.is_connected():
            p = self._bridge_status(False)
            self.client.publish(p.topic, p.payload, p.qos, p.retain).wait_for_publish(
                STOP_FLUSH_S)

    def _on_read_request(self, msg: Inbound) -> None:
        try:
            decode(ReadRequest, msg.payload)
        except MessageError as err:
            self._reject(err.kind, f"{msg.topic}: {err}")
            return
        for st in self.devices.values():
            if st.online is not False:
                self._final_read(st)

    def _publish_status(self, st: DeviceState) -> None:
        status = DeviceStatus(st.entry.id, bool(st.online), self.clock(), via=self.bridge_id,
                              off_timer=st.off_timer)
        self._send(Publish(topics.status_topic(self.site, st.entry.id), encode(status), 1, True))

    def _on_capability(self, st: DeviceState, ev: Capability) -> None:
        """The device answered whether it has its off-timer. Without one it is flagged in its
        status, reports as often as it can, and is read at the predicted time to quota."""
        off_timer = ev.off_timer
        if st.off_timer == off_timer:
            return
        st.off_timer = off_timer
        if st.online:
            self._publish_status(st)
        if not off_timer:
            self.counts["no_off_timer"] += 1
            log.warning("%s has no off-timer: quota enforced by reads, no failsafe if the "
                        "bridge dies", st.entry.id)
            self._send_all(st.dialect.report_fast(st.topic))
            if st.want_on:
                self._switch(st, True)  # again, without the timer the device refused

    def _final_read(self, st: DeviceState) -> None:
        st.read_pending = True
        self.counts["final_reads"] += 1
        self._send_all(st.dialect.read(st.topic))

    def _plan_poll(self, st: DeviceState) -> None:
        """While a plug is on, read it soon after ON as long as its power is unknown (the
        off-timer needs it) and, without an off-timer, at the predicted time to quota: the
        answer's backstop then switches it off, late by one read's round trip."""
        if not st.want_on:
            return
        if st.on_power_w <= 0:
            delay_s = self.cfg.on_poll_s
        elif st.off_timer is False:
            delay_s = max(self._time_left_s(st, self.clock())[0], MIN_POLL_GAP_S)
        else:
            return
        st.poll_gen += 1
        gen = st.poll_gen
        self.worker.call_at(self.clock() + delay_s, lambda: self._quota_poll(st, gen))

    def _quota_poll(self, st: DeviceState, gen: int) -> None:
        if gen == st.poll_gen and st.want_on:
            self.counts["quota_polls"] += 1
            self._send_all(st.dialect.read(st.topic))
