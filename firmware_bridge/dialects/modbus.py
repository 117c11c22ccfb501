"""Modbus TCP relay modules and DIN-rail meters, as a bridge dialect.

Nothing travels over MQTT: :class:`ModbusPoller` reads and writes the devices and hands the
bridge the same events as every other dialect, so quotas, ``valid_until``, the monotonic
counter and the native topics are the bridge's as for Tasmota and Shelly. The off-timer is
the poller's (on the bridge's clock, 10 ms steps): relays have none of their own.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Self

from firmware_bridge.dialects.base import Dialect, DialectError, Event
from firmware_bridge.modbus.poller import ModbusPoller, Reject, Sink
from lastwatt.config.modbus import ModbusDevice, ModbusOptions
from lastwatt.transport.publish import Publish

if TYPE_CHECKING:
    from lastwatt.config.bridge import BridgeConfig

TIMER_STEP_S = 0.01


class ModbusDialect(Dialect):
    name = "modbus"
    timer_step_s = TIMER_STEP_S

    def __init__(self, devices: dict[str, ModbusDevice], options: ModbusOptions,
                 names: dict[str, str] | None = None) -> None:
        super().__init__(list(devices))
        self.poller = ModbusPoller(devices, options, names)

    @classmethod
    def from_config(cls, device_topics: list[str], cfg: BridgeConfig) -> Self:
        """Each device's ``[modbus.devices.<id>]``, keyed by its topic (the id by default)."""
        entries = [d for d in cfg.devices if d.dialect == "modbus"]
        return cls({d.topic or d.id: cfg.modbus.devices[d.id] for d in entries}, cfg.modbus,
                   {d.topic or d.id: d.id for d in entries})

    def device_routes(self, device_topic: str) -> dict[str, str]:
        return {}  # no MQTT topics: the poller talks to the device

    def start(self, sink: Sink, reject: Reject) -> None:
        self.poller.start(sink, reject)

    def stop(self) -> None:
        self.poller.stop()

    def switch(self, device_topic: str, on: bool, off_after_s: float | None = None
               ) -> list[Publish]:
        self.poller.command(device_topic, on, off_after_s if on else None)
        return []

    def rearm(self, device_topic: str, off_after_s: float) -> list[Publish]:
        self.poller.rearm(device_topic, off_after_s)
        return []

    def off_timer_s(self, seconds: float) -> float:
        return max(0, math.floor(seconds / TIMER_STEP_S + 1e-6)) * TIMER_STEP_S

    def poll(self, device_topic: str) -> list[Publish]:
        self.poller.poll_now(device_topic)
        return []

    def decode_kind(self, device_topic: str, kind: str, payload: bytes) -> list[Event]:
        raise DialectError("unknown_device", "Modbus devices send nothing over MQTT")
