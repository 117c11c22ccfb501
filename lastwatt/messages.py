"""The versioned messages shared by the engine, the transports, the bridge and the devices.

One definition each, imported everywhere. They are slotted stdlib dataclasses so the
headless hot path (a reading per device per metering interval) costs a plain object;
validation happens only at the wire edge, in :func:`decode`, through a pydantic TypeAdapter
that checks types strictly (no string-to-number or string-to-bool coercion) and ranges.
Times are UTC seconds since the Unix epoch (simulated time is
mapped onto ``time.start``). The wire format is documented in ``docs/topics.md``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Annotated, Any, Literal, TypeVar, cast

from pydantic import Field, Strict, TypeAdapter, ValidationError

VERSION: Literal[1] = 1
MAX_PAYLOAD_BYTES = 4096  # no LastWatt message comes near this; larger ones are rejected unread

# Strict: no "100" -> 100.0, "yes" -> True or 1 -> True coercion of what came over the wire
# (a JSON integer is still a valid float)
Watts = Annotated[float, Strict(), Field(ge=0, le=10_000_000, allow_inf_nan=False)]
WattHours = Annotated[float, Strict(), Field(ge=0, le=1e15, allow_inf_nan=False)]
Seconds = Annotated[float, Strict(), Field(ge=0, le=1e11, allow_inf_nan=False)]
DeviceId = Annotated[str, Strict(), Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Flag = Annotated[bool, Strict()]
Count = Annotated[int, Strict(), Field(ge=0, le=2**53)]
# A run's id on the wire: the controller's start time in ms. A new run's round 0 outranks the
# previous run's last round; 0 is a controller that does not say (older ones).
Epoch = Annotated[int, Strict(), Field(ge=0, le=2**53)]


@dataclass(slots=True, frozen=True)
class Setpoint:
    """Controller -> device: the plan for one round."""

    device: DeviceId
    round: Count
    on: Flag
    power_w: Watts
    quota_wh: WattHours
    valid_until: Seconds  # the device switches itself off after this (failsafe)
    v: Literal[1] = VERSION
    epoch: Epoch = 0

    def order(self) -> tuple[int, int]:
        """Setpoints compare by (run epoch, round): a lower one is stale, never applied."""
        return (self.epoch, self.round)


@dataclass(slots=True, frozen=True)
class MeterReading:
    """Device -> controller: a monotonic energy counter and the present power."""

    device: DeviceId
    ts: Seconds
    energy_wh: WattHours  # monotonic total within one counter epoch
    power_w: Watts
    on: Flag
    # raised by the device each time its counter restarts at zero (reboot, counter reset):
    # the only way a lower counter is accepted (see lastwatt.meters)
    epoch: Count = 0
    v: Literal[1] = VERSION


@dataclass(slots=True, frozen=True)
class DeviceStatus:
    """Device availability (also its MQTT Last Will)."""

    device: DeviceId
    online: Flag
    ts: Seconds = 0.0
    v: Literal[1] = VERSION
    via: DeviceId | None = None  # the bridge that speaks for it: offline when the bridge is
    off_timer: Flag | None = None  # False: a plug without its own off-timer (flagged)


@dataclass(slots=True, frozen=True)
class RoundInfo:
    """Controller -> everyone: what this round is."""

    round: Count
    start: Seconds
    end: Seconds
    production_wh: WattHours
    business_pool_wh: WattHours
    selected: list[Count] = field(default_factory=list)
    v: Literal[1] = VERSION
    epoch: Epoch = 0


@dataclass(slots=True, frozen=True)
class ReadRequest:
    """Controller -> all devices and bridges: report your meter now (the round's final read)."""

    round: Count
    ts: Seconds
    v: Literal[1] = VERSION
    epoch: Epoch = 0


Message = Setpoint | MeterReading | DeviceStatus | RoundInfo | ReadRequest
M = TypeVar("M", Setpoint, MeterReading, DeviceStatus, RoundInfo, ReadRequest)

# built on first use (~0.1 s for all five at import): a headless run never decodes a message
_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _adapter(cls: type) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


class MessageError(ValueError):
    """A payload that is not a valid message; ``kind`` names the counter it goes to."""

    KINDS = ("oversize", "json", "schema", "range", "version")

    def __init__(self, kind: str, detail: str) -> None:
        assert kind in self.KINDS
        self.kind = kind
        super().__init__(f"{kind}: {detail}")


_FIELDS = {cls: tuple(f.name for f in fields(cls))
           for cls in (Setpoint, MeterReading, DeviceStatus, RoundInfo, ReadRequest)}
_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def encode(msg: Message) -> bytes:
    """Compact JSON; the device id travels in the topic, but is kept in the body too.

    Built from the slots directly: ``dataclasses.asdict`` deep-copies and costs ~10x more,
    and a 10k-device fleet encodes ten thousand readings a second.
    """
    return _dumps({f: getattr(msg, f) for f in _FIELDS[type(msg)]}).encode()


def json_object(raw: bytes, error: Callable[[str, str], Exception] = MessageError
                ) -> dict[str, Any]:
    """``raw`` parsed as a JSON object, else ``error(kind, detail)`` raised with kind ``json``
    or ``schema`` (the bridge's dialects pass their own error class)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise error("json", str(err)[:120]) from None
    if not isinstance(data, dict):
        raise error("schema", f"expected a JSON object, got {type(data).__name__}")
    return data


def decode(cls: type[M], payload: bytes | str) -> M:
    """Parse and validate ``payload`` as ``cls``; raise :class:`MessageError` with its kind."""
    raw = payload.encode() if isinstance(payload, str) else payload
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise MessageError("oversize", f"{len(raw)} bytes > {MAX_PAYLOAD_BYTES}")
    data = json_object(raw)
    if data.get("v", VERSION) != VERSION:
        raise MessageError("version", f"v={data.get('v')!r}, this controller speaks v={VERSION}")
    try:
        return cast(M, _adapter(cls).validate_python(data))
    except ValidationError as err:
        first = err.errors()[0]
        kind = "range" if first["type"] in _RANGE_ERRORS else "schema"
        loc = ".".join(str(p) for p in first["loc"])
        raise MessageError(kind, f"{loc}: {first['msg']}") from None


_RANGE_ERRORS = {
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
    "finite_number",
    "string_pattern_mismatch",
}

