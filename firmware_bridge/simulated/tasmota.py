"""Simulated Tasmota firmware: the subset of commands a LastWatt bridge uses, as Tasmota
answers them (``stat/<t>/RESULT`` then ``stat/<t>/POWER``), telemetry every TelePeriod
(``tele/<t>/STATE`` and ``tele/<t>/SENSOR`` with ``ENERGY.Total`` in kWh, 3 decimals), and
``tele/<t>/LWT`` Online / Offline. Tasmota publishes at QoS 0 (its MQTT library has no
QoS 1 publish) except the Last Will. Unlike the firmware, the simulation accepts a
``telemetry_s`` below 10 s from its config so benchmarks can run at 1 Hz; the ``TelePeriod``
command follows the firmware's rule (0 off, 1..9 -> 10, at most 3600).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from firmware_bridge.dialects.base import DialectError, dumps
from firmware_bridge.dialects.tasmota import DEFAULT_FULL_TOPIC, parse_power, pulsetime_seconds
from firmware_bridge.simulated.firmware import Firmware
from lastwatt.transport.publish import Publish

if TYPE_CHECKING:
    from firmware_bridge.simulated.options import FleetOptions
    from lastwatt.devices import DeviceModel

VOLTAGE_V = 230.0
POWER_FACTOR = 0.95


def tasmota_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S")


class TasmotaFirmware(Firmware):
    dialect = "tasmota"

    @classmethod
    def from_options(cls, device_id: str, topic: str, model: DeviceModel,
                     options: FleetOptions) -> TasmotaFirmware:
        return cls(device_id, topic, model, options.telemetry_s,
                   full_topic=options.tasmota_full_topic)

    def __init__(self, *args, full_topic: str = DEFAULT_FULL_TOPIC, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.full_topic = full_topic
        self.pulsetime = 0
        self.energy_res = 3  # decimals of the kWh values (firmware default: 1 Wh)
        self.period_start_wh = 0.0
        self.total_start_ts = 0.0

    def _topic(self, prefix: str, leaf: str) -> str:
        return self.full_topic.replace("%prefix%", prefix).replace("%topic%", self.topic) + leaf

    @property
    def command_base(self) -> str:
        return self._topic("cmnd", "")[:-1]

    def _stat(self, leaf: str, body: Any) -> Publish:
        payload = body.encode() if isinstance(body, str) else dumps(body)
        return Publish(self._topic("stat", leaf), payload, 0, False)

    def _power_text(self) -> str:
        return "ON" if self.model.on else "OFF"

    def will(self) -> Publish:
        return Publish(self._topic("tele", "LWT"), b"Offline", 1, True)

    def birth(self, now: float) -> list[Publish]:
        return [Publish(self._topic("tele", "LWT"), b"Online", 1, True),
                *self.state_report(now)]

    def state_report(self, now: float) -> list[Publish]:
        return [self._stat("RESULT", {"POWER": self._power_text()}),
                self._stat("POWER", self._power_text())]

    def handle(self, leaf: str, payload: bytes, now: float) -> list[Publish]:
        command, arg = leaf.upper(), payload.decode(errors="replace").strip()
        if command in ("POWER", "POWER1"):
            return self._power(arg, now)
        if command == "PULSETIME" or command == "PULSETIME1":
            if arg:
                self.pulsetime = _int_arg(arg, "PulseTime", 0, 64900)
                # as the firmware's SetPulseTimer: the countdown (re)starts now, relay on or off
                pulse_s = pulsetime_seconds(self.pulsetime)
                self.off_at = now + pulse_s if self.pulsetime > 0 else math.inf
            remaining_s = max(0.0, self.off_at - now) if math.isfinite(self.off_at) else 0.0
            return [self._stat("RESULT", {"PulseTime1": {
                "Set": self.pulsetime, "Remaining": _pulsetime_remaining(remaining_s)}})]
        if command == "STATUS" and arg in ("8", "10"):
            return [self._stat(f"STATUS{arg}", {"StatusSNS": self._sensor(now)})]
        if command == "ENERGYRES":
            if arg:
                self.energy_res = _int_arg(arg, "EnergyRes", 0, 5)
            return [self._stat("RESULT", {"EnergyRes": self.energy_res})]
        if command == "TELEPERIOD":
            if arg:
                value = _int_arg(arg, "TelePeriod", 0, 3600)
                self.telemetry_s = value if value == 0 or value >= 10 else 10
            return [self._stat("RESULT", {"TelePeriod": int(self.telemetry_s)}),
                    *self.telemetry(now)]
        if command == "ENERGYTOTAL" and arg == "0":
            self.model.advance(now)
            self.lost_wh += self.model.energy_wh
            self.model.reset_counter()
            self.total_start_ts = now
            return [self._stat("RESULT", {"EnergyTotal": self._energy(now)})]
        return [self._stat("RESULT", {"Command": "Unknown"})]

    def _power(self, arg: str, now: float) -> list[Publish]:
        if arg:
            value = arg.upper()
            try:
                on = (not self.model.on) if value in ("TOGGLE", "2") else parse_power(value)
            except DialectError:
                return [self._stat("RESULT", {"Command": "Error"})]
            self.set_relay(on, now)
            pulse_s = pulsetime_seconds(self.pulsetime)
            self.off_at = now + pulse_s if on and self.pulsetime > 0 else math.inf
        return self.state_report(now)

    def _energy(self, now: float) -> dict[str, Any]:
        reading = self.model.advance(now)
        total_kwh = round(reading.energy_wh / 1000.0, self.energy_res)
        period_wh = round(reading.energy_wh - self.period_start_wh)
        p = reading.power_w if reading.on else 0.0
        return {
            "TotalStartTime": tasmota_time(self.total_start_ts),
            "Total": total_kwh, "Yesterday": 0.0, "Today": total_kwh, "Period": period_wh,
            "Power": round(p), "ApparentPower": round(p / POWER_FACTOR) if p else 0,
            "ReactivePower": round(p * 0.33) if p else 0, "Factor": POWER_FACTOR if p else 0.0,
            "Voltage": round(VOLTAGE_V) if p else 0, "Current": round(p / VOLTAGE_V, 3),
        }

    def _sensor(self, now: float) -> dict[str, Any]:
        return {"Time": tasmota_time(now), "ENERGY": self._energy(now)}

    def telemetry(self, now: float) -> list[Publish]:
        sensor = self._sensor(now)
        self.period_start_wh = self.model.energy_wh
        uptime_s = int(now - self.boot_ts)
        state = {"Time": tasmota_time(now), "Uptime": f"{uptime_s // 86400}T"
                 f"{tasmota_uptime(uptime_s)}", "UptimeSec": uptime_s,
                 "POWER": self._power_text()}
        return [Publish(self._topic("tele", "STATE"), dumps(state), 0, False),
                Publish(self._topic("tele", "SENSOR"), dumps(sensor), 0, False)]


def tasmota_uptime(seconds: int) -> str:
    h, rest = divmod(seconds % 86400, 3600)
    return f"{h:02d}:{rest // 60:02d}:{rest % 60:02d}"


def _pulsetime_remaining(seconds: float) -> int:
    """GetPulseTimer's encoding of the time left: 0.1 s units up to 11.1 s, else s + 100."""
    ms = int(seconds * 1000)
    return ms // 1000 + 100 if ms > 11_100 else ms // 100


def _int_arg(arg: str, name: str, low: int, high: int) -> int:
    try:
        value = int(arg)
    except ValueError:
        raise DialectError("schema", f"{name} {arg[:20]!r} is not a number") from None
    return min(max(value, low), high)
