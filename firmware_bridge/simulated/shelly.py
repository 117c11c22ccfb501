"""Simulated Shelly Gen2 (Plus 1PM-like) firmware: JSON-RPC on ``<id>/rpc`` answered on
``<src>/rpc``, ``NotifyStatus`` on ``<id>/events/rpc``, the generic ``<id>/status/switch:0``
(when enabled, as a user may), and ``<id>/online`` true / false retained. All at QoS 1.
``aenergy.total`` is in Wh, ``by_minute`` in mWh (newest first). Real devices refresh
aenergy about once a minute; the simulation reports every ``telemetry_s``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from firmware_bridge.dialects.base import DialectError, dumps
from firmware_bridge.simulated.firmware import Firmware
from lastwatt.messages import json_object
from lastwatt.transport.publish import Publish

if TYPE_CHECKING:
    from firmware_bridge.simulated.options import FleetOptions
    from lastwatt.devices import DeviceModel

SWITCH = "switch:0"
VOLTAGE_V = 230.0


class ShellyFirmware(Firmware):
    dialect = "shelly"

    @classmethod
    def from_options(cls, device_id: str, topic: str, model: DeviceModel,
                     options: FleetOptions) -> ShellyFirmware:
        return cls(device_id, topic, model, options.telemetry_s,
                   generic_status=options.shelly_generic_status)

    def __init__(self, *args, generic_status: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.generic_status = generic_status
        self.minute_ts = 0
        self.minute_start_wh = 0.0
        self.by_minute_mwh = [0.0, 0.0, 0.0]

    @property
    def command_base(self) -> str:
        return self.topic

    def subscriptions(self) -> list[str]:
        return [f"{self.topic}/rpc"]

    def will(self) -> Publish:
        return Publish(f"{self.topic}/online", b"false", 1, True)

    def birth(self, now: float) -> list[Publish]:
        return [Publish(f"{self.topic}/online", b"true", 1, True), *self.telemetry(now)]

    def status(self, now: float) -> dict[str, Any]:
        reading = self.model.advance(now)
        minute = int(now // 60) * 60
        if minute != self.minute_ts:  # a minute closed: shift the per-minute energies
            done_mwh = (reading.energy_wh - self.minute_start_wh) * 1000.0
            self.by_minute_mwh = [round(done_mwh, 3), *self.by_minute_mwh[:2]]
            self.minute_ts, self.minute_start_wh = minute, reading.energy_wh
        p = reading.power_w if reading.on else 0.0
        return {
            "id": 0, "source": "MQTT", "output": reading.on, "apower": round(p, 1),
            "voltage": VOLTAGE_V, "current": round(p / VOLTAGE_V, 3),
            "aenergy": {"total": round(reading.energy_wh, 3), "by_minute": self.by_minute_mwh,
                        "minute_ts": self.minute_ts},
            "temperature": {"tC": 41.2, "tF": 106.2},
        }

    def _notify(self, now: float, switch: dict[str, Any], method: str = "NotifyStatus") -> Publish:
        frame = {"src": self.topic, "dst": f"{self.topic}/events", "method": method,
                 "params": {"ts": round(now, 2), SWITCH: switch}}
        return Publish(f"{self.topic}/events/rpc", dumps(frame), 1, False)

    def telemetry(self, now: float) -> list[Publish]:
        full = self.status(now)
        changed = {k: full[k] for k in ("id", "apower", "current", "aenergy")}
        out = [self._notify(now, changed)]
        if self.generic_status:
            out.append(Publish(f"{self.topic}/status/{SWITCH}", dumps(full), 1, False))
        return out

    def state_report(self, now: float) -> list[Publish]:
        full = self.status(now)
        out = [self._notify(now, {"id": 0, "output": full["output"], "source": "MQTT"})]
        if self.generic_status:
            out.append(Publish(f"{self.topic}/status/{SWITCH}", dumps(full), 1, False))
        return out

    def handle(self, leaf: str, payload: bytes, now: float) -> list[Publish]:
        if leaf != "rpc":
            return []
        frame = json_object(payload, DialectError)
        if not isinstance(frame.get("src"), str):
            raise DialectError("schema", "RPC frame without src: nowhere to answer")
        rid, src, method = frame.get("id"), frame["src"], frame.get("method")
        params = frame.get("params") or {}
        try:
            result, after = self._call(method, params, now)
        except RpcError as err:
            reply = {"id": rid, "src": self.topic, "dst": src,
                     "error": {"code": err.code, "message": err.message}}
            return [Publish(f"{src}/rpc", dumps(reply), 1, False)]
        reply = {"id": rid, "src": self.topic, "dst": src, "result": result}
        return [Publish(f"{src}/rpc", dumps(reply), 1, False), *after]

    def _call(self, method: Any, params: Any, now: float) -> tuple[Any, list[Publish]]:
        if method not in ("Switch.Set", "Switch.Toggle", "Switch.GetStatus"):
            raise RpcError(404, f"No handler for {method}")
        if not isinstance(params, dict) or params.get("id", 0) != 0:
            raise RpcError(-105, f"Argument 'id', value {params.get('id')} not found!")
        if method == "Switch.GetStatus":
            return self.status(now), []
        on = params.get("on") if method == "Switch.Set" else not self.model.on
        if not isinstance(on, bool):
            raise RpcError(-103, "Missing required argument 'on'!")
        toggle_after = params.get("toggle_after")
        if toggle_after is not None and (isinstance(toggle_after, bool)
                                         or not isinstance(toggle_after, int | float)
                                         or toggle_after <= 0):
            raise RpcError(-103, "Invalid argument 'toggle_after'!")
        was_on = self.set_relay(on, now)
        # toggle_after flips back; LastWatt only arms it with on=true, so back means off
        self.off_at = now + toggle_after if (toggle_after and on) else math.inf
        after = self.state_report(now) if was_on != on else []
        return {"was_on": was_on}, after


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code, self.message = code, message
        super().__init__(f"{code}: {message}")
