"""Planned business energy -> one quota and one setpoint per device, in the devices' own time.

A business's devices that are online share its planned energy in proportion to their maximum
draw. Devices meter physical time: when real time is compressed by ``speed``, a device runs
``speed`` times shorter than the simulated round, so its quota is the planned energy divided by
``speed`` (at the same power), and what it meters is multiplied back by ``speed``. This module
is the one place where that conversion happens.
"""

from __future__ import annotations

import numpy as np

from lastwatt.messages import Setpoint


def device_shares(device_business: np.ndarray, device_max_w: np.ndarray, online: np.ndarray,
                  n_businesses: int) -> np.ndarray:
    """Each device's share (D,) of its business's energy: by max draw among its online
    devices (0 offline, or when none of the business's devices is online)."""
    weight = np.where(online, device_max_w, 0.0)
    business_weight = np.bincount(device_business, weights=weight, minlength=n_businesses)
    return np.divide(
        weight, business_weight[device_business],
        out=np.zeros_like(weight), where=business_weight[device_business] > 0,
    )


def device_quotas_wh(
    planned_wh: np.ndarray, device_business: np.ndarray, device_max_w: np.ndarray,
    online: np.ndarray, speed: float = 1.0,
) -> np.ndarray:
    """Each device's quota (D,) in physical Wh: its business's planned energy (simulated Wh)
    split over the business's online devices by max draw, divided by ``speed``."""
    share = device_shares(device_business, device_max_w, online, len(planned_wh))
    return planned_wh[device_business] * share / speed


class QuotaSplit:
    """:func:`device_quotas_wh` for one fleet, round after round: the shares are kept while
    the same devices stay online (they change only when one comes or goes)."""

    def __init__(self, device_business: np.ndarray, device_max_w: np.ndarray,
                 speed: float = 1.0) -> None:
        self.business, self.max_w, self.speed = device_business, device_max_w, speed
        self._online = b""  # the online mask the shares are for (bytes: cheap to compare)
        self._share = np.zeros(len(device_business))

    def __call__(self, planned_wh: np.ndarray, online: np.ndarray) -> np.ndarray:
        key = online.tobytes()
        if key != self._online:
            self._share = device_shares(self.business, self.max_w, online, len(planned_wh))
            self._online = key
        return planned_wh[self.business] * self._share / self.speed


def make_setpoints(
    round_index: int, device_ids: list[str], quota_wh: np.ndarray, round_s: float,
    valid_until: float, speed: float = 1.0,
) -> list[Setpoint]:
    """Setpoints for ``device_ids`` from their quotas (physical Wh, :func:`device_quotas_wh`):
    on when the quota is positive, at the power that draws it in the round's physical length
    (``round_s / speed``)."""
    physical_round_h = round_s / 3600.0 / speed
    return [
        Setpoint(
            device=d, round=round_index, on=bool(q > 0), power_w=float(q / physical_round_h),
            quota_wh=float(q), valid_until=valid_until,
        )
        for d, q in zip(device_ids, quota_wh.tolist(), strict=True)
    ]


def simulated_wh(physical_wh: np.ndarray, speed: float) -> np.ndarray:
    """Energy a device metered (physical Wh) as simulated Wh."""
    return physical_wh * speed
