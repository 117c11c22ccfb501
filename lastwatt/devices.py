"""One implementation of a switched, metered load (a relay or smart plug and the business
behind it), shared by the engine's in-process mock devices and by the simulated firmware in
``firmware_bridge/simulated`` — two transports, one device.

Physics: while switched on, the business draws ``max_power_w x load_factor x profile(t)``
with relative metering noise. The device integrates that into a monotonic energy counter,
switches itself off when the round's quota is used (the native LastWatt firmware knows its
quota; vendor plugs are switched off by the bridge instead) and when its setpoint's
``valid_until`` has passed (the failsafe against a silent controller). All times are UTC
epoch seconds from the caller's clock, so the same code runs in virtual and in wall time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from lastwatt.messages import MeterReading, Setpoint

CYCLE_PERIOD_S = 600.0  # on/off cycling load: 10 min period, half of it at 20 % draw

Profile = Callable[[float], float]  # seconds since the round started -> share of max draw


def _constant(t: float) -> float:
    return 1.0


def _ramp(round_s: float, t: float) -> float:
    return 0.5 + 0.5 * min(t / round_s, 1.0)


def _cycle(t: float) -> float:
    return 1.0 if (t % CYCLE_PERIOD_S) < CYCLE_PERIOD_S / 2 else 0.2


def profile_fn(name: str, round_s: float) -> Profile:
    """Within-round load shape: ``constant``, ``ramp`` (50 % -> 100 %) or ``cycle``.

    Module functions, not lambdas: a device model pickles into a run's checkpoint."""
    if name == "constant":
        return _constant
    if name == "ramp":
        return partial(_ramp, round_s)
    if name == "cycle":
        return _cycle
    raise ValueError(f"unknown load profile {name!r}: use constant, ramp or cycle")


def profile_integral_s(name: str, round_s: float, t: np.ndarray) -> np.ndarray:
    """Exact integral of the load shape :func:`profile_fn` from the round's start to each ``t``
    (seconds; ``t`` <= ``round_s``), in seconds at full draw: what the analytic headless
    devices (:mod:`lastwatt.transport.analytic`) integrate instead of sampling every interval."""
    t = np.asarray(t, dtype=np.float64)
    if name == "constant":
        return t
    if name == "ramp":  # 0.5 + 0.5 t / round_s up to round_s
        ramp: np.ndarray = 0.5 * t + 0.25 * t * t / round_s
        return ramp
    if name == "cycle":  # whole periods, then the part of the last one: full, then 20 %
        half = CYCLE_PERIOD_S / 2
        periods, rest = np.divmod(t, CYCLE_PERIOD_S)
        full: np.ndarray = periods * half * 1.2
        return full + np.minimum(rest, half) + 0.2 * np.maximum(rest - half, 0)
    raise ValueError(f"unknown load profile {name!r}: use constant, ramp or cycle")


@dataclass(slots=True)
class DeviceModel:
    """A relay/plug with its load. Call :meth:`advance` to integrate, :meth:`apply` to command."""

    device_id: str
    max_power_w: float
    profile: Profile
    rng: np.random.Generator
    noise_sd: float = 0.0
    enforce_quota: bool = True  # native firmware: yes; a vendor plug: no (the bridge does)
    load_factor: float = 1.0  # this round's share of max draw (standard load profile)
    on: bool = False
    energy_wh: float = 0.0  # monotonic counter, as a plug's Total register
    power_w: float = 0.0
    round: int = -1
    epoch: int = 0  # the run the round belongs to (Setpoint.epoch)
    quota_wh: float = math.inf
    round_energy_wh: float = 0.0
    round_start_ts: float = 0.0
    valid_until: float = math.inf
    last_ts: float | None = None
    counter_resets: int = 0
    _noise: list[float] = field(default_factory=list, repr=False)

    def apply(self, sp: Setpoint, now_ts: float, load_factor: float | None = None) -> None:
        """Take a setpoint at ``now_ts`` (integrate up to now first, under the old state)."""
        self.advance(now_ts)
        if sp.order() != (self.epoch, self.round):  # a new round, or a new run's
            self.epoch, self.round = sp.order()
            self.round_energy_wh = 0.0
            self.round_start_ts = now_ts
        if load_factor is not None:
            self.load_factor = load_factor
        self.quota_wh = sp.quota_wh if self.enforce_quota else math.inf
        self.valid_until = sp.valid_until
        self.switch(sp.on and self.round_energy_wh < self.quota_wh and now_ts < sp.valid_until)

    def switch(self, on: bool) -> None:
        """Switch the relay; off means no power drawn."""
        self.on = on
        if not on:
            self.power_w = 0.0

    def draw_w(self, now_ts: float) -> float:
        """The load's power at ``now_ts``: max draw x load factor x profile, with noise."""
        p = self.max_power_w * self.load_factor * self.profile(now_ts - self.round_start_ts)
        if self.noise_sd > 0:
            if not self._noise:  # draw in blocks: one Generator call per 1024 readings
                self._noise = (1.0 + self.noise_sd * self.rng.standard_normal(1024)).tolist()
            p *= max(0.0, self._noise.pop())
        return p

    def advance(self, now_ts: float) -> MeterReading:
        """Integrate the draw since the last call, enforce quota and failsafe, read the meter."""
        last, self.last_ts = self.last_ts, now_ts
        if self.on and last is not None and now_ts > last:
            valid_until = self.valid_until
            p = self.draw_w(last)
            e = p * (min(now_ts, valid_until) - last) / 3600.0 if last < valid_until else 0.0
            left = self.quota_wh - self.round_energy_wh
            if e >= left - 1e-9:  # float dust must not cost a whole interval
                e = left if left > 0 else 0.0
                self.switch(False)
            else:
                self.power_w = p
            self.energy_wh += e
            self.round_energy_wh += e
            if now_ts >= valid_until:
                self.switch(False)
        return MeterReading(self.device_id, now_ts, self.energy_wh, self.power_w, self.on,
                            self.counter_resets)  # the counter's epoch: it restarted this often

    def reset_counter(self) -> None:
        """A reboot or an EnergyTotal 0: the vendor counter restarts from zero."""
        self.energy_wh = 0.0
        self.counter_resets += 1
