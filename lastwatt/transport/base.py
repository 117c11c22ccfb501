"""The transport interface: how setpoints leave the engine and readings come back.

The engine runs in one thread (SimPy's). A transport may receive in another thread (paho's
network loop); it then queues inbound messages and hands them over in :meth:`drain`, which
the engine calls from its own thread at every metering tick and before settling a round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from lastwatt.messages import DeviceStatus, MeterReading, RoundInfo, Setpoint
from lastwatt.meters import MeterBatch

OnReading = Callable[[MeterReading | MeterBatch], None]  # a batch: in-process devices only
OnStatus = Callable[[DeviceStatus], None]


class Transport(Protocol):
    """How the engine reaches the devices: setpoints out, readings and statuses in; the flags
    say what it can rely on."""

    #: inbound messages rejected, by kind (oversize, json, schema, range, version, unknown_device)
    rejected: dict[str, int]
    #: True: the devices stop at their quota by themselves and report at once (in-process
    #: mocks). False: the engine drains the readings every metering interval and switches off
    #: each device that reached its quota.
    enforces_quotas: bool
    #: True: a setpoint reaches its device at once and exactly once, so a device that stays off
    #: need not hear it again. False: every device gets its setpoint every round.
    delivers_reliably: bool

    def start(self, on_reading: OnReading, on_status: OnStatus) -> None:
        """Connect and subscribe; from now on inbound messages go to the two callbacks."""
        ...

    def publish_round(self, info: RoundInfo) -> None:
        """Announce the round that starts now."""

    def send_setpoint(self, sp: Setpoint) -> None:
        """Deliver one device's setpoint for this round."""

    def request_readings(self, round_index: int, ts: float) -> None:
        """Ask every device to report its meter now (the round's final read)."""
        ...

    def drain(self) -> None:
        """Deliver queued inbound messages to the callbacks, in the caller's thread."""
        ...

    def close(self) -> None:
        """Leave: devices keep their last setpoint until its ``valid_until``."""
