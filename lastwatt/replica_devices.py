"""The analytic headless devices of R replicas at once: (R, D) arrays, one round per call.

The physics and draws are :class:`lastwatt.transport.analytic.AnalyticTransport`'s, row by
row: the same interval weights, the same ``standard_normal((2, D))`` per replica and round
from that replica's ``devices`` stream (only when one of its devices is on and there is
noise), the same quota clip. Only the Gaussian-sum noise path is batched (``noise_sd <=
GAUSSIAN_SUM_SD``); :func:`batched` says so and the caller runs other configs per seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lastwatt.config import Config
from lastwatt.transport.analytic import GAUSSIAN_SUM_SD, QUOTA_DUST_WH, interval_weights_h


def batched(cfg: Config) -> bool:
    """Whether these devices reproduce the single run's: analytic (not per-minute, not real
    time) and noise on the Gaussian-sum path."""
    return (not cfg.output.meter_readings and not cfg.time.realtime
            and cfg.devices.noise_sd <= GAUSSIAN_SUM_SD)


def device_shares_rows(business: np.ndarray, max_power_w: np.ndarray, n: int) -> np.ndarray:
    """:func:`lastwatt.setpoints.device_shares` per replica (every device online): each
    device's share (R, D) of its business's energy; the weights add in device order as there.
    Fixed for a batch (its devices never go offline), so computed once."""
    r = max_power_w.shape[0]
    offsets = (np.arange(r) * n)[:, None]
    biz_w = np.bincount((business[None, :] + offsets).ravel(), weights=max_power_w.ravel(),
                        minlength=r * n).reshape(r, n)[:, business]
    return np.divide(max_power_w, biz_w, out=np.zeros_like(max_power_w), where=biz_w > 0)


def per_business_rows(device_wh: np.ndarray, business: np.ndarray, n: int) -> np.ndarray:
    """(R, D) -> (R, N): the engine's ``bincount`` of each replica's devices, in device order."""
    r = device_wh.shape[0]
    idx = (business[None, :] + (np.arange(r) * n)[:, None]).ravel()
    return np.bincount(idx, weights=device_wh.ravel(), minlength=r * n).reshape(r, n)


class ReplicaDevices:
    """Every replica's devices; :meth:`meter` integrates one round for all of them."""

    def __init__(self, cfg: Config, business: np.ndarray, max_power_w: np.ndarray,
                 load: np.ndarray, rngs: Sequence[np.random.Generator]) -> None:
        t = cfg.time
        self.business, self.max_power_w, self.load = business, max_power_w, load  # (D,), (R, D)
        self.rngs, self.sd = list(rngs), cfg.devices.noise_sd
        # AnalyticTransport.__init__'s constants, computed the same way
        w = interval_weights_h(cfg.devices.profile, t.round_s, t.metering_interval_s)
        last_h = (t.round_s - (len(w) - 1) * t.metering_interval_s) / 3600.0
        self.last_share = float(w[-1] / last_h)
        rest = w[:-1]
        self.w_last, self.total_h, self.rest_h = float(w[-1]), float(w.sum()), float(rest.sum())
        self.rest_sd_h = self.sd * math.sqrt(float(rest @ rest))
        self._z = np.zeros((len(self.rngs), 2, len(business)))

    def meter(self, k: int, quota_wh: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Round ``k`` with these quotas (R, D): energy metered, the relays after the round
        and the power the last reading shows (all (R, D))."""
        on = quota_wh > 0
        full_w = self.max_power_w * self.load[k][self.business] * on
        drawn, last_w = self._draw(full_w, np.asarray(on.any(axis=1)))
        hit = on & (drawn >= quota_wh - QUOTA_DUST_WH)
        round_wh = 0.0 + np.where(hit, quota_wh, drawn)  # as the meter book adds it: no -0.0
        on &= ~hit
        return round_wh, on, np.where(on, last_w, 0.0)

    def _draw(self, full_w: np.ndarray, busy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        plain = full_w * self.total_h, full_w * self.last_share
        if self.sd == 0 or not busy.any():
            return plain
        z = self._z
        for r in np.flatnonzero(busy).tolist():
            self.rngs[r].standard_normal(out=z[r])
        rest = self.rest_h + self.rest_sd_h * z[:, 0]
        last = 1.0 + self.sd * z[:, 1]
        noisy = full_w * (rest + self.w_last * last), full_w * last * self.last_share
        keep = busy[:, None]
        return np.where(keep, noisy[0], plain[0]), np.where(keep, noisy[1], plain[1])
