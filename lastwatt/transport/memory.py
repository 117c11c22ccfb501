"""The default transport: mock devices living in the engine's own SimPy environment.

Each mock device is a SimPy process around the shared :class:`~lastwatt.devices.DeviceModel`:
it sleeps while switched off (no polling), and while on it meters every metering interval and
reports the reading. A setpoint is applied at once and answered with a reading, as a plug
reports its state on every change.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import simpy

from lastwatt.devices import DeviceModel
from lastwatt.messages import DeviceStatus, RoundInfo, Setpoint
from lastwatt.transport.base import OnReading, OnStatus


class MockDevice:
    """One mock device: a SimPy process metering a :class:`DeviceModel` every interval."""

    def __init__(
        self, env: simpy.Environment, model: DeviceModel, now_ts: Callable[[], float],
        interval_s: float, load_factor: np.ndarray, start: bool = True,
    ) -> None:
        self.env = env
        self.model = model
        self.now_ts = now_ts
        self.interval_s = interval_s
        self.load_factor = load_factor  # (rounds,): this business's draw per round
        self.report: OnReading = lambda r: None
        self._wake = env.event()
        if start:  # else resume() starts it from a checkpoint (lastwatt.checkpoint)
            self.process = env.process(self._run())

    def resume(self, model: DeviceModel, next_tick: float | None) -> None:
        """Continue from a checkpoint: this model, its next metering tick (None: asleep)."""
        self.model = model
        self.process = self.env.process(self._run(next_tick))

    def deliver(self, sp: Setpoint) -> None:
        """Apply a setpoint now and report a reading, as a plug does on every change."""
        lf = float(self.load_factor[sp.round]) if sp.round < len(self.load_factor) else None
        self.model.apply(sp, self.now_ts(), lf)
        self.report(self.model.advance(self.now_ts()))
        if self.model.on and not self._wake.triggered:
            self._wake.succeed()

    def _run(self, next_tick: float | None = None):
        # the body first runs when the environment does, after start() wired self.report
        model, timeout, interval = self.model, self.env.timeout, self.interval_s
        now_ts, report, advance = self.now_ts, self.report, model.advance
        if next_tick is not None:
            yield timeout(next_tick - self.env.now)
            report(advance(now_ts()))
        while True:
            if not model.on:
                self._wake = self.env.event()
                yield self._wake
            yield timeout(interval)
            report(advance(now_ts()))


class MemoryTransport:
    """Setpoints go straight to the mock devices; readings straight back. Nothing to drain."""

    enforces_quotas = True  # a DeviceModel stops at its quota
    delivers_reliably = True  # a method call: at once, exactly once

    def __init__(self, devices: list[MockDevice]) -> None:
        self.devices = {d.model.device_id: d for d in devices}
        self.rejected: dict[str, int] = {}

    def start(self, on_reading: OnReading, on_status: OnStatus) -> None:
        for d in self.devices.values():
            d.report = on_reading
            on_status(DeviceStatus(d.model.device_id, True))

    def publish_round(self, info: RoundInfo) -> None:
        pass  # mock devices take everything from their setpoints

    def send_setpoint(self, sp: Setpoint) -> None:
        self.devices[sp.device].deliver(sp)

    def request_readings(self, round_index: int, ts: float) -> None:
        pass  # mock devices report at every interval end in the engine's own time

    def drain(self) -> None:
        pass

    def close(self) -> None:
        pass

