"""Planned business energy -> one setpoint per device.

A business's devices that are online share its planned energy in proportion to their
maximum draw. Quotas go out in the devices' own (physical) time: when real time is
compressed by ``speed``, a device runs ``speed`` times shorter than the simulated round,
so its quota is the planned energy divided by ``energy_scale`` (and metered energy is
multiplied back by it).
"""

from __future__ import annotations

import numpy as np

from lastwatt.messages import Setpoint


def device_quotas_wh(
    planned_wh: np.ndarray, device_business: np.ndarray, device_max_w: np.ndarray,
    online: np.ndarray,
) -> np.ndarray:
    """Split each business's planned energy over its online devices by max draw."""
    weight = np.where(online, device_max_w, 0.0)
    business_weight = np.bincount(device_business, weights=weight, minlength=len(planned_wh))
    share = np.divide(
        weight, business_weight[device_business],
        out=np.zeros_like(weight), where=business_weight[device_business] > 0,
    )
    return planned_wh[device_business] * share


def make_setpoints(
    round_index: int, device_ids: list[str], quota_wh: np.ndarray, round_s: float,
    valid_until: float, energy_scale: float = 1.0,
) -> list[Setpoint]:
    round_h = round_s / 3600.0
    return [
        Setpoint(
            device=d, round=round_index, on=bool(q > 0), power_w=float(q / round_h),
            quota_wh=float(q / energy_scale), valid_until=valid_until,
        )
        for d, q in zip(device_ids, quota_wh.tolist(), strict=True)
    ]
