"""Step 2: split the round's production by priority (community > households > reserve).

What remains is the business pool. Works on scalars or on arrays of rounds alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from lastwatt.errors import InputError


@dataclass(frozen=True, slots=True)
class EnergySplit:
    """Served energy per category; community + household + reserve + business_pool == production."""

    community_wh: np.ndarray | float
    household_wh: np.ndarray | float
    reserve_wh: np.ndarray | float
    business_pool_wh: np.ndarray | float
    unserved_community_wh: np.ndarray | float
    unserved_household_wh: np.ndarray | float


def _non_negative(name: str, value: ArrayLike) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise InputError(name, "must be finite and >= 0", "check the production and demand inputs")
    return arr


def split_energy(
    production_wh: ArrayLike,
    community_wh: ArrayLike,
    household_wh: ArrayLike,
    reserve_fraction: ArrayLike,
    reserve_wh: ArrayLike,
) -> EnergySplit:
    """Serve community demand, then household demand, then hold back the reserve.

    The reserve target is ``reserve_fraction * production_wh + reserve_wh`` and is only filled
    from what the loads leave. Demands that cannot be met are reported as unserved.
    """
    production = _non_negative("production_wh", production_wh)
    community = _non_negative("community_wh", community_wh)
    household = _non_negative("household_wh", household_wh)
    fraction = _non_negative("reserve_fraction", reserve_fraction)
    if np.any(fraction > 1):
        raise InputError("reserve_fraction", "must lie in [0, 1]", "it is a share of production")
    fixed_reserve = _non_negative("reserve_wh", reserve_wh)

    community_served = np.minimum(production, community)
    left = production - community_served
    household_served = np.minimum(left, household)
    left = left - household_served
    reserve_served = np.minimum(left, fraction * production + fixed_reserve)
    pool = np.maximum(left - reserve_served, 0.0)
    return EnergySplit(
        community_wh=community_served,
        household_wh=household_served,
        reserve_wh=reserve_served,
        business_pool_wh=pool,
        unserved_community_wh=community - community_served,
        unserved_household_wh=household - household_served,
    )
