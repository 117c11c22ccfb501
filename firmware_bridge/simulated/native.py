"""LastWatt's own firmware: native topics, quota and ``valid_until`` enforced on the device."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from firmware_bridge.simulated.firmware import Firmware
from lastwatt.messages import DeviceStatus, MessageError, Setpoint, decode, encode
from lastwatt.transport import topics
from lastwatt.transport.publish import Publish

if TYPE_CHECKING:
    from firmware_bridge.simulated.options import FleetOptions
    from lastwatt.devices import DeviceModel


class NativeFirmware(Firmware):
    dialect = "native"
    enforce_quota = True

    @classmethod
    def from_options(cls, device_id: str, topic: str, model: DeviceModel,
                     options: FleetOptions) -> NativeFirmware:
        return cls(device_id, topic, model, options.telemetry_s, site=options.site)

    def __init__(self, *args, site: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.site = site
        self.last_set: bytes | None = None  # the retained setpoint, seen again after a reboot

    @property
    def command_base(self) -> str:
        return topics.set_topic(self.site, self.device_id).rsplit("/", 1)[0]

    def subscriptions(self) -> list[str]:
        return [topics.set_topic(self.site, self.device_id)]

    def _status(self, online: bool, now: float) -> Publish:
        body = encode(DeviceStatus(self.device_id, online, now))
        return Publish(topics.status_topic(self.site, self.device_id), body, 1, True)

    def will(self) -> Publish:
        return self._status(False, 0.0)

    def birth(self, now: float) -> list[Publish]:
        return [self._status(True, now)]

    def handle(self, leaf: str, payload: bytes, now: float) -> list[Publish]:
        if leaf != topics.SET:
            return []
        sp = decode(Setpoint, payload)
        self.last_set = payload
        if sp.device != self.device_id:
            raise MessageError("schema", f"setpoint for {sp.device!r} on {self.device_id}'s topic")
        if sp.order() < (self.model.epoch, self.model.round):
            return []  # an older round's setpoint (or an older run's), redelivered
        self.model.apply(sp, now)
        self.off_at = sp.valid_until if self.model.on else math.inf
        return self.telemetry(now)  # the reading doubles as the acknowledgement

    def reboot(self, now: float, reset_counter: bool) -> list[Publish]:
        out = super().reboot(now, reset_counter)
        # on reconnect the broker hands the retained setpoint to the fresh subscription
        return out + (self.handle(topics.SET, self.last_set, now) if self.last_set else [])

    def telemetry(self, now: float) -> list[Publish]:
        reading = self.model.advance(now)
        return [Publish(topics.meter_topic(self.site, self.device_id), encode(reading), 1, False)]

    def state_report(self, now: float) -> list[Publish]:
        return self.telemetry(now)
