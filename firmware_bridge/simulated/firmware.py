"""Simulated firmware: the device side of a dialect on top of the shared ``DeviceModel``.

The physics (draw, integration, quota, ``valid_until``) is ``lastwatt.devices.DeviceModel``,
the same object the engine's in-process mock devices use; a firmware class only speaks its
vendor's topics and payloads around it. The fleet calls :meth:`handle` for each command,
:meth:`telemetry` every period, :meth:`expire` when the firmware's own off-timer
(``off_at``: PulseTime, toggle_after, valid_until) is due, and publishes what they return.
All timestamps are the caller's clock (epoch seconds): the fleet runs the off-timers on the
same clock, so an expiry is never early by the firmware's own reckoning. A firmware is built
by :meth:`from_options` (the fleet's ``FIRMWARE`` registry names the class per dialect).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Self

from lastwatt.devices import DeviceModel
from lastwatt.transport.publish import Publish

if TYPE_CHECKING:
    from firmware_bridge.simulated.options import FleetOptions


class Firmware(ABC):
    dialect: ClassVar[str]
    enforce_quota: ClassVar[bool] = False  # only LastWatt's own firmware knows its quota

    def __init__(self, device_id: str, topic: str, model: DeviceModel, telemetry_s: float) -> None:
        self.device_id = device_id
        self.topic = topic
        self.model = model
        self.telemetry_s = telemetry_s
        self.off_at = math.inf  # the firmware's own off-timer, epoch seconds
        self.lost_wh = 0.0  # energy drawn before counter resets (the register forgot it)
        self.boot_ts = 0.0

    @classmethod
    def from_options(cls, device_id: str, topic: str, model: DeviceModel,
                     options: FleetOptions) -> Self:
        """This firmware for one device, with its vendor's settings from the fleet options."""
        return cls(device_id, topic, model, options.telemetry_s)

    @property
    def true_energy_wh(self) -> float:
        """Energy really drawn since the device was created (across counter resets)."""
        return self.lost_wh + self.model.energy_wh

    @property
    @abstractmethod
    def command_base(self) -> str:
        """The topic commands arrive under: ``<command_base>/<leaf>``."""

    @abstractmethod
    def will(self) -> Publish:
        """The Last Will: what the broker says when the device vanishes."""

    @abstractmethod
    def birth(self, now: float) -> list[Publish]:
        """What the firmware publishes on every (re)connect."""

    @abstractmethod
    def handle(self, leaf: str, payload: bytes, now: float) -> list[Publish]:
        """One command; raises ``DialectError`` / ``MessageError`` on a bad payload."""

    @abstractmethod
    def telemetry(self, now: float) -> list[Publish]: ...

    @abstractmethod
    def state_report(self, now: float) -> list[Publish]:
        """What the firmware publishes when its relay changed state by itself."""

    def subscriptions(self) -> list[str]:
        return [f"{self.command_base}/#"]

    def set_relay(self, on: bool, now: float) -> bool:
        """Switch (integrating up to now first); return the previous state."""
        self.model.advance(now)
        was_on = self.model.on
        self.model.switch(on)
        return was_on

    def expire(self, now: float) -> list[Publish]:
        if now < self.off_at:  # re-armed since this expiry was scheduled
            return []
        self.off_at = math.inf
        self.set_relay(False, now)
        return self.state_report(now)

    def reboot(self, now: float, reset_counter: bool) -> list[Publish]:
        """Power cycle: relay off, timers gone, optionally the energy register back to 0.

        Returns what the firmware publishes once it is back (its birth)."""
        self.set_relay(False, now)
        self.off_at = math.inf
        self.boot_ts = now
        if reset_counter:
            self.lost_wh += self.model.energy_wh
            self.model.reset_counter()
        return self.birth(now)
