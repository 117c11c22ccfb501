"""Shelly Gen2 (Plus / Pro): JSON-RPC over MQTT, ``switch:0`` status, ``online`` flag.

Requests go to ``<prefix>/rpc`` with our ``src``; answers come back on ``<src>/rpc`` and are
matched on ``id``. State arrives as ``NotifyStatus`` / ``NotifyFullStatus`` on
``<prefix>/events/rpc`` (on by default on real devices) and, when the user enabled generic
status updates, on ``<prefix>/status/switch:0``. ``aenergy.total`` is in Wh. The failsafe is
``toggle_after`` (seconds) in ``Switch.Set``: the relay flips back off by itself; another
``Switch.Set`` with ``toggle_after`` restarts the timer.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from firmware_bridge.dialects.base import (
    Capability,
    Counter,
    Dialect,
    DialectError,
    Event,
    Online,
    Switched,
    dumps,
    number,
)
from lastwatt.messages import json_object
from lastwatt.transport.publish import Publish

if TYPE_CHECKING:
    from lastwatt.config.bridge import BridgeConfig

SWITCH = "switch:0"
MAX_PENDING = 100_000  # requests awaiting an answer; the oldest are forgotten beyond this
TIMER_STEP_S = 0.01  # toggle_after is sent with 2 decimals


def switch_events(status: Any) -> list[Event]:
    """Events from a (possibly partial) ``switch:0`` status object."""
    if not isinstance(status, dict):
        raise DialectError("schema", f"{SWITCH} status is {type(status).__name__}, not an object")
    events: list[Event] = []
    output = status.get("output")
    if output is not None:
        if not isinstance(output, bool):
            raise DialectError("schema", f"output is {output!r}, expected true or false")
        events.append(Switched(output))
    aenergy = status.get("aenergy")
    if aenergy is not None:
        if not isinstance(aenergy, dict) or "total" not in aenergy:
            raise DialectError("schema", "aenergy has no total")
        apower = status.get("apower")
        events.append(
            Counter(
                total_wh=number(aenergy["total"], "aenergy.total"),
                power_w=None if apower is None else number(apower, "apower"),
            )
        )
    return events


class ShellyDialect(Dialect):
    name = "shelly"
    timer_step_s = TIMER_STEP_S

    def __init__(self, device_topics: list[str], src: str = "lastwatt-bridge") -> None:
        self.src = src
        self.next_id = 1
        # id -> (device topic, method, on, toggle_after sent)
        self.pending: OrderedDict[int, tuple[str, str, bool, bool]] = OrderedDict()
        # device topic -> the id it answers with (its frames' src): the topic prefix until
        # a notification names it (users may set a prefix other than the device id)
        self.device_ids: dict[str, str] = {}
        super().__init__(device_topics)
        self.routes[f"{src}/rpc"] = ("", "reply")

    @classmethod
    def from_config(cls, device_topics: list[str], cfg: BridgeConfig) -> ShellyDialect:
        return cls(device_topics, cfg.resolved_src())

    def device_routes(self, device_topic: str) -> dict[str, str]:
        return {
            "events": f"{device_topic}/events/rpc",
            "status": f"{device_topic}/status/{SWITCH}",
            "online": f"{device_topic}/online",
        }

    def request(self, device_topic: str, method: str, params: dict[str, Any], on: bool) -> Publish:
        rid, self.next_id = self.next_id, self.next_id + 1
        self.pending[rid] = (device_topic, method, on, "toggle_after" in params)
        if len(self.pending) > MAX_PENDING:
            self.pending.popitem(last=False)
        frame = {"id": rid, "src": self.src, "method": method, "params": params}
        return Publish(f"{device_topic}/rpc", dumps(frame), 1, False)

    def switch(self, device_topic: str, on: bool, off_after_s: float | None = None
               ) -> list[Publish]:
        params: dict[str, Any] = {"id": 0, "on": on}
        if on and off_after_s is not None:
            params["toggle_after"] = self.off_timer_s(off_after_s)
        return [self.request(device_topic, "Switch.Set", params, on)]

    def rearm(self, device_topic: str, off_after_s: float) -> list[Publish]:
        return self.switch(device_topic, True, off_after_s)

    def off_timer_s(self, seconds: float) -> float:
        return round(max(0, math.floor(seconds / TIMER_STEP_S + 1e-6)) * TIMER_STEP_S, 2)

    def poll(self, device_topic: str) -> list[Publish]:
        return [self.request(device_topic, "Switch.GetStatus", {"id": 0}, False)]

    def decode(self, mqtt_topic: str, payload: bytes) -> tuple[str, list[Event]]:
        device_topic, kind = self.routes[mqtt_topic]
        if kind != "reply":
            return device_topic, self.decode_kind(device_topic, kind, payload)
        frame = json_object(payload, DialectError)
        rid = frame.get("id")
        if not isinstance(rid, int) or rid not in self.pending:
            raise DialectError("unmatched_reply", f"no request with id {rid!r} is pending")
        device_topic, method, on, timed = self.pending[rid]
        self._check_sender(device_topic, frame)
        del self.pending[rid]
        if "error" in frame:
            if timed:  # no toggle_after on this device: the bridge switches again without
                return device_topic, [Capability(False)]
            raise DialectError("rpc_error", f"{device_topic} {method}: {str(frame['error'])[:120]}")
        result = frame.get("result")
        if method == "Switch.Set":
            return device_topic, [Switched(on), *([Capability(True)] if timed else [])]
        return device_topic, switch_events(result)

    def _check_sender(self, device_topic: str, frame: dict[str, Any]) -> None:
        """A reply counts only from the device asked (``src``) and to us (``dst``): anyone
        may publish on our reply topic, and ids are easy to guess. A spoofed reply leaves
        the request pending for the real one."""
        src, dst = frame.get("src"), frame.get("dst", self.src)
        expected = self.device_ids.get(device_topic, device_topic)
        if src != expected or dst != self.src:
            raise DialectError("spoofed_reply", f"reply from {str(src)[:64]!r} to "
                               f"{str(dst)[:64]!r} for a request to {expected!r}")

    def decode_kind(self, device_topic: str, kind: str, payload: bytes) -> list[Event]:
        if kind == "online":
            text = payload.decode(errors="replace").strip()
            if text not in ("true", "false"):
                raise DialectError("schema", f"online {text[:20]!r} is not true or false")
            return [Online(text == "true")]
        frame = json_object(payload, DialectError)
        if kind == "status":
            return switch_events(frame)
        if isinstance(frame.get("src"), str) and 0 < len(frame["src"]) <= 64:
            self.device_ids[device_topic] = frame["src"]  # the device's own id
        if frame.get("method") not in ("NotifyStatus", "NotifyFullStatus"):
            return []  # NotifyEvent and the like
        params = frame.get("params")
        if not isinstance(params, dict):
            raise DialectError("schema", "notification without params object")
        return switch_events(params[SWITCH]) if SWITCH in params else []
