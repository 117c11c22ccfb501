"""Headless mock devices without per-minute events: each round integrated at once, vectorised.

The physics is :mod:`lastwatt.devices`' (docs/architecture.md, "Analytic headless devices"):
a device switched on draws ``max_power_w x load_factor x profile(t)``, and every metering
interval ``j`` of the round gets its own noise multiplier ``max(0, 1 + noise_sd x z_j)``; the
device stops at its quota. Where the per-minute :class:`~lastwatt.devices.DeviceModel` samples
the profile at each interval's start and advances reading by reading, this integrates the
profile exactly over each interval (:func:`~lastwatt.devices.profile_integral_s`) and sums
the intervals for every device at once. The quota switch-off needs no event: the device
reaches its quota within the round exactly when its drawn energy would exceed it, and then
meters exactly its quota (the per-minute device clips its last interval the same way).

One SimPy event per round: at the round's end every device's meter is handed to the engine
as one :class:`~lastwatt.meters.MeterBatch`. Setpoints arrive at the round's start (the
engine's only time for them in virtual time) and, after the last round, to switch off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import simpy

from lastwatt.devices import profile_integral_s
from lastwatt.messages import DeviceStatus, RoundInfo, Setpoint
from lastwatt.meters import MeterBatch
from lastwatt.transport.base import OnReading, OnStatus

QUOTA_DUST_WH = 1e-9  # as DeviceModel.advance: float dust must not leave a quota unmet
# up to this noise a multiplier 1 + sd z < 0 needs z < -8 (p < 1e-15): the clip never acts
GAUSSIAN_SUM_SD = 0.125


def interval_weights_h(profile: str, round_s: float, interval_s: float) -> np.ndarray:
    """(n,) hours at full draw in each metering interval of a round (the last one may be
    shorter when the interval does not divide the round)."""
    n = math.ceil(round_s / interval_s - 1e-9)
    edges = np.minimum(np.arange(n + 1) * interval_s, round_s)
    return np.diff(profile_integral_s(profile, round_s, edges)) / 3600.0


@dataclass(slots=True)
class AnalyticState:
    """What changes from round to round (checkpointed whole, :mod:`lastwatt.checkpoint`)."""

    energy_wh: np.ndarray  # (D,) monotonic counters
    on: np.ndarray  # (D,) relay state
    quota_wh: np.ndarray  # (D,) this round's quota
    rng: np.random.Generator  # metering noise


class AnalyticTransport:
    """In-process devices integrated per round (virtual time only: the round is
    ``round_s`` of simulated time, as the devices' time)."""

    enforces_quotas = True  # the integration stops each device at its quota
    delivers_reliably = True  # a method call: at once, exactly once

    def __init__(
        self, env: simpy.Environment, device_ids: list[str], business: np.ndarray,
        max_power_w: np.ndarray, load: np.ndarray, profile: str, round_s: float,
        interval_s: float, noise_sd: float, rng: np.random.Generator,
    ) -> None:
        n = len(device_ids)
        self.env, self.ids, self.round_s = env, device_ids, round_s
        self.index = {d: i for i, d in enumerate(device_ids)}
        self.business, self.max_power_w, self.load = business, max_power_w, load
        self.noise_sd = noise_sd
        self.weights_h = interval_weights_h(profile, round_s, interval_s)
        last_h = (round_s - (len(self.weights_h) - 1) * interval_s) / 3600.0
        # the last interval's mean share of full draw: the power its reading shows
        self.last_share = float(self.weights_h[-1] / last_h)
        rest = self.weights_h[:-1]
        self._total_h, self._rest_h = float(self.weights_h.sum()), float(rest.sum())
        self._rest_sd_h = noise_sd * math.sqrt(float(rest @ rest))  # sd of the rest's noise
        self.state = AnalyticState(np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n), rng)
        self.rejected: dict[str, int] = {}
        self._report: OnReading = lambda r: None
        self._round = 0
        self._end_ts = 0.0

    def start(self, on_reading: OnReading, on_status: OnStatus) -> None:
        self._report = on_reading
        for d in self.ids:
            on_status(DeviceStatus(d, True))

    def publish_round(self, info: RoundInfo) -> None:
        """The round starts: meter it at its end (one event)."""
        self._round, self._end_ts = info.round, info.end
        self.env.timeout(self.round_s).callbacks.append(self._meter)

    def send_setpoint(self, sp: Setpoint) -> None:
        i = self.index[sp.device]
        self.state.on[i] = sp.on and sp.quota_wh > 0
        self.state.quota_wh[i] = sp.quota_wh

    def request_readings(self, round_index: int, ts: float) -> None:
        pass  # every device reports at every round's end

    def drain(self) -> None:
        pass

    def close(self) -> None:
        pass

    def _meter(self, _event: simpy.Event) -> None:
        st = self.state
        if not st.on.any():  # every device off (a night): nothing drawn, no noise drawn
            self._report(MeterBatch(self._end_ts, np.zeros(len(st.on)), st.energy_wh.copy(),
                                    np.zeros(len(st.on)), st.on.copy()))
            return
        full_w = self.max_power_w * self.load[self._round][self.business] * st.on
        drawn, last_w = self._draw(full_w)
        hit = st.on & (drawn >= st.quota_wh - QUOTA_DUST_WH)
        round_wh = np.where(hit, st.quota_wh, drawn)
        st.on &= ~hit
        st.energy_wh += round_wh
        power_w = np.where(st.on, last_w, 0.0)
        self._report(MeterBatch(self._end_ts, round_wh, st.energy_wh.copy(), power_w,
                                st.on.copy()))

    def _draw(self, full_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Energy (Wh) each device would draw over the whole round at ``full_w``, with every
        interval's noise, and the mean power of its last interval."""
        w, sd = self.weights_h, self.noise_sd
        if sd == 0 or not full_w.any():  # no noise, or nothing on (a night): no draws
            return full_w * self._total_h, full_w * self.last_share
        if sd <= GAUSSIAN_SUM_SD:
            # no multiplier can fall below 0: the intervals' noise sums to one Gaussian draw
            # (exact in distribution), the last interval's drawn apart for its power reading
            z = self.state.rng.standard_normal((2, len(full_w)))
            rest = self._rest_h + self._rest_sd_h * z[0]
            last = 1.0 + sd * z[1]
            return full_w * (rest + w[-1] * last), full_w * last * self.last_share
        mult = np.maximum(0.0, 1.0 + sd * self.state.rng.standard_normal((len(full_w), len(w))))
        return full_w * (mult @ w), full_w * mult[:, -1] * self.last_share
