"""Tasmota: ``POWER`` commands, ``stat`` answers, ``tele`` SENSOR / STATE / LWT.

Topics follow the device's FullTopic (default ``%prefix%/%topic%/``) with the prefixes
``cmnd``/``stat``/``tele``. Energy comes from ``ENERGY.Total`` in kWh (1 Wh resolution),
never from ``Period``. The device's off-timer is ``PulseTime``: sent before ``POWER ON`` it
makes the relay switch itself off that much later, and sent while the relay is on it restarts
the running countdown (the firmware's ``CmndPulsetime`` calls ``SetPulseTimer``), so the
bridge can keep it at the predicted time to quota even if the bridge then dies.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from firmware_bridge.dialects.base import (
    Capability,
    Counter,
    Dialect,
    DialectError,
    Event,
    Online,
    Switched,
    number,
)
from lastwatt.messages import json_object
from lastwatt.transport.publish import Publish

if TYPE_CHECKING:
    from lastwatt.config.bridge import BridgeConfig

DEFAULT_FULL_TOPIC = "%prefix%/%topic%/"
TELE_PERIOD_MIN_S = 10  # the firmware's shortest TelePeriod
PULSETIME_MAX_S = 64_800  # PulseTime 112..64900 means (value - 100) seconds


def pulsetime_value(seconds: float) -> int:
    """The PulseTime that ends no later than ``seconds``: 1..111 count 0.1 s, 112..64900 are
    seconds + 100 (so 11.1 s < t < 12 s is not encodable: 11.1 s). 0 (no timer) below 0.1 s."""
    if seconds >= 12:
        return min(math.floor(seconds), PULSETIME_MAX_S) + 100
    return max(0, min(math.floor(seconds * 10 + 1e-6), 111))  # 1e-6: 0.3 * 10 is 2.999...


def pulsetime_seconds(value: int) -> float:
    """What a PulseTime value means, in seconds (0: no timer)."""
    return value / 10.0 if value <= 111 else float(value - 100)


def parse_power(text: str) -> bool:
    value = text.strip().upper()
    if value in ("ON", "1", "TRUE"):
        return True
    if value in ("OFF", "0", "FALSE"):
        return False
    raise DialectError("schema", f"POWER state {text[:20]!r} is not ON or OFF")


class TasmotaDialect(Dialect):
    name = "tasmota"
    timer_step_s = 0.1  # PulseTime 1

    def __init__(
        self,
        device_topics: list[str],
        full_topic: str = DEFAULT_FULL_TOPIC,
        prefixes: tuple[str, str, str] = ("cmnd", "stat", "tele"),
        tele_period_s: int | None = None,
        energy_res: int | None = None,
    ) -> None:
        self.full_topic = full_topic
        self.cmnd, self.stat, self.tele = prefixes
        self.tele_period_s = tele_period_s
        self.energy_res = energy_res
        # devices asked "PulseTime" whose answer has not come: RESULT carries no command name,
        # so the next PulseTime1 or {"Command":"Unknown"} answers the probe
        self.probing: set[str] = set()
        super().__init__(device_topics)

    @classmethod
    def from_config(cls, device_topics: list[str], cfg: BridgeConfig) -> TasmotaDialect:
        t = cfg.tasmota
        return cls(device_topics, t.full_topic, t.prefixes, t.tele_period_s, t.energy_res)

    def topic(self, prefix: str, device_topic: str, leaf: str) -> str:
        base = self.full_topic.replace("%prefix%", prefix).replace("%topic%", device_topic)
        return base + leaf

    def device_routes(self, device_topic: str) -> dict[str, str]:
        return {
            "power": self.topic(self.stat, device_topic, "POWER"),
            "result": self.topic(self.stat, device_topic, "RESULT"),
            "status8": self.topic(self.stat, device_topic, "STATUS8"),
            "status10": self.topic(self.stat, device_topic, "STATUS10"),
            "sensor": self.topic(self.tele, device_topic, "SENSOR"),
            "state": self.topic(self.tele, device_topic, "STATE"),
            "lwt": self.topic(self.tele, device_topic, "LWT"),
        }

    def cmd(self, device_topic: str, command: str, value: str) -> Publish:
        return Publish(self.topic(self.cmnd, device_topic, command), value.encode(), 1, False)

    def switch(self, device_topic: str, on: bool, off_after_s: float | None = None
               ) -> list[Publish]:
        out = []
        if on and off_after_s is not None:
            out += self.rearm(device_topic, off_after_s)  # POWER ON arms what PulseTime holds
        out.append(self.cmd(device_topic, "POWER", "ON" if on else "OFF"))
        return out

    def rearm(self, device_topic: str, off_after_s: float) -> list[Publish]:
        return [self.cmd(device_topic, "PulseTime", str(pulsetime_value(off_after_s)))]

    def off_timer_s(self, seconds: float) -> float:
        return pulsetime_seconds(pulsetime_value(seconds))

    def poll(self, device_topic: str) -> list[Publish]:
        # an empty POWER payload is a query; Status 10 answers with the ENERGY block
        return [self.cmd(device_topic, "POWER", ""), self.cmd(device_topic, "Status", "10")]

    def read(self, device_topic: str) -> list[Publish]:
        # Status 8 (power usage) answers on STATUS8 with the ENERGY block, after any POWER
        # command sent before it: the register after a switch-off
        return [self.cmd(device_topic, "Status", "8")]

    def setup(self, device_topic: str) -> list[Publish]:
        out = []
        if self.tele_period_s is not None:
            out.append(self.cmd(device_topic, "TelePeriod", str(self.tele_period_s)))
        if self.energy_res is not None:  # decimals of the kWh values: 5 -> 0.01 Wh
            out.append(self.cmd(device_topic, "EnergyRes", str(self.energy_res)))
        return out

    def probe(self, device_topic: str) -> list[Publish]:
        self.probing.add(device_topic)
        return [self.cmd(device_topic, "PulseTime", "")]  # empty: a query, changes nothing

    def report_fast(self, device_topic: str) -> list[Publish]:
        return [self.cmd(device_topic, "TelePeriod", str(TELE_PERIOD_MIN_S))]

    def decode_kind(self, device_topic: str, kind: str, payload: bytes) -> list[Event]:
        if kind == "lwt":
            text = payload.decode(errors="replace").strip()
            if text not in ("Online", "Offline"):
                raise DialectError("schema", f"LWT {text[:20]!r} is not Online or Offline")
            return [Online(text == "Online")]
        if kind == "power":
            return [Switched(parse_power(payload.decode(errors="replace")))]
        data = json_object(payload, DialectError)
        if kind == "result" and device_topic in self.probing:
            if data.get("Command") == "Unknown":  # a build without PulseTime
                self.probing.discard(device_topic)
                return [Capability(False)]
            if any(key.startswith("PulseTime") for key in data):
                self.probing.discard(device_topic)
                return [Capability(True)]
        if kind in ("result", "state"):
            # RESULT carries the answer of every command; only POWER concerns the bridge
            power = data.get("POWER")
            if power is None:
                return []
            if not isinstance(power, str):
                raise DialectError("schema", f"POWER is {power!r}, expected ON or OFF")
            return [Switched(parse_power(power))]
        if kind in ("status8", "status10"):
            sns = data.get("StatusSNS")
            data = sns if isinstance(sns, dict) else {}
        energy = data.get("ENERGY")
        if energy is None:
            return []  # a SENSOR message of another sensor
        if not isinstance(energy, dict):
            raise DialectError("schema", f"ENERGY is {type(energy).__name__}, expected an object")
        return [energy_counter(energy)]


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value  # multi-channel meters


def energy_counter(energy: dict[str, Any]) -> Counter:
    if "Total" not in energy:
        raise DialectError("schema", "ENERGY has no Total")
    total_kwh = number(_first(energy["Total"]), "ENERGY.Total")
    power = energy.get("Power")
    power_w = None if power is None else number(_first(power), "ENERGY.Power")
    return Counter(total_wh=total_kwh * 1000.0, power_w=power_w)
