"""The one small interface every vendor dialect implements (bridge side).

A dialect knows, for the devices it serves, which vendor topics to subscribe to, how to
switch a device and ask it for its state, and how to read what the device publishes. It
turns vendor payloads into three events: a :class:`Counter` (the vendor's energy register
and power), a :class:`Switched` (relay state) and an :class:`Online` (availability).
Everything else (monotonic counters, quotas, native topics) is the bridge's job, so a new
vendor is one file: subclass :class:`Dialect` (``from_config`` reads its options from the
bridge config) and register it in ``DIALECTS`` (``dialects/__init__.py``); the bridge builds
one instance per dialect its devices use, from the registry.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self

from lastwatt.transport.publish import Publish

if TYPE_CHECKING:
    from lastwatt.config.bridge import BridgeConfig


@dataclass(frozen=True, slots=True)
class Counter:
    """The vendor's energy register, already in Wh, and the present power when known."""

    total_wh: float
    power_w: float | None = None


@dataclass(frozen=True, slots=True)
class Switched:
    on: bool


@dataclass(frozen=True, slots=True)
class Online:
    online: bool


@dataclass(frozen=True, slots=True)
class Capability:
    """What the device's answer says about its own off-timer (PulseTime / toggle_after)."""

    off_timer: bool


Event = Counter | Switched | Online | Capability


class DialectError(ValueError):
    """A vendor payload that cannot be read; ``kind`` names the counter it goes to."""

    def __init__(self, kind: str, detail: str) -> None:
        self.kind = kind
        super().__init__(f"{kind}: {detail}")


class Dialect(ABC):
    """Vendor topics and payloads for a set of devices, each known by its vendor topic."""

    name: ClassVar[str]
    timer_step_s: ClassVar[float]  # the device's shortest off-timer (its encoding's resolution)

    def __init__(self, device_topics: list[str]) -> None:
        # exact MQTT topic -> (device topic, what the message is); exact lookups, no wildcards
        self.routes: dict[str, tuple[str, str]] = {}
        for t in device_topics:
            for kind, mqtt_topic in self.device_routes(t).items():
                self.routes[mqtt_topic] = (t, kind)

    @classmethod
    def from_config(cls, device_topics: list[str], cfg: BridgeConfig) -> Self:
        """The dialect for these devices, with its options from the bridge config."""
        return cls(device_topics)

    @abstractmethod
    def device_routes(self, device_topic: str) -> dict[str, str]:
        """kind -> MQTT topic this bridge subscribes to for one device."""

    def subscriptions(self) -> list[str]:
        return list(self.routes)

    @abstractmethod
    def switch(self, device_topic: str, on: bool, off_after_s: float | None = None
               ) -> list[Publish]:
        """Commands that switch the relay; with ``off_after_s`` (a value of :meth:`off_timer_s`)
        an ON also arms the device's own off-timer: it switches itself off that much later."""

    @abstractmethod
    def rearm(self, device_topic: str, off_after_s: float) -> list[Publish]:
        """Commands that restart the off-timer of a relay that is on, without switching it."""

    @abstractmethod
    def off_timer_s(self, seconds: float) -> float:
        """The longest off-timer the device can run that ends no later than ``seconds`` from
        now (its encoding's resolution, rounded down); 0 when even its shortest is too long."""

    @abstractmethod
    def poll(self, device_topic: str) -> list[Publish]:
        """Commands that make the device report its relay state and energy register now."""

    def start(self, sink: Callable[[str, list[Event]], None],
              reject: Callable[[str, str], None]) -> None:
        """Dialects that talk to devices themselves (Modbus) start here; they hand what they
        read to ``sink(device_topic, events)`` and what failed to ``reject(kind, detail)``."""
        return None

    def stop(self) -> None:
        """Stop what :meth:`start` started."""
        return None

    def read(self, device_topic: str) -> list[Publish]:
        """Commands that make the device report its energy register now (a final read)."""
        return self.poll(device_topic)

    def setup(self, device_topic: str) -> list[Publish]:
        """Commands sent once when the device comes online (e.g. the telemetry period)."""
        return []

    def probe(self, device_topic: str) -> list[Publish]:
        """Commands whose answer tells whether the device has its off-timer (a
        :class:`Capability` event); none: the first ON that arms it tells."""
        return []

    def report_fast(self, device_topic: str) -> list[Publish]:
        """Commands for the shortest telemetry period (a plug without an off-timer)."""
        return []

    def decode(self, mqtt_topic: str, payload: bytes) -> tuple[str, list[Event]]:
        """Read one inbound message: ``(device topic, events)``; raises :class:`DialectError`."""
        device_topic, kind = self.routes[mqtt_topic]
        return device_topic, self.decode_kind(device_topic, kind, payload)

    @abstractmethod
    def decode_kind(self, device_topic: str, kind: str, payload: bytes) -> list[Event]: ...


def number(value: Any, field: str) -> float:
    """A finite, non-negative number from a vendor payload (bool is not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DialectError("schema", f"{field} is {value!r}, expected a number")
    if not 0 <= value < 1e15:
        raise DialectError("range", f"{field}={value!r} outside 0..1e15")
    return float(value)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
