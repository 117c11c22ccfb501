"""The engine contract of the market (docs/model.md): what a round's plan and outcome carry,
and the checks of what the engine hands in (one ``InputError`` naming the argument)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lastwatt.errors import InputError


@dataclass(slots=True)
class Plan:
    """What ``Market.plan`` decided for one round (steps 3-5)."""

    round_index: int
    stake_tokens: np.ndarray  # (N,) bonded this round
    selected: np.ndarray  # (N,) bool
    selected_idx: list[int]  # largest stake first
    planned_wh: np.ndarray  # (N,)
    unplaced_wh: float  # pool the caps could not place: back to the reserve
    participation: float  # share of stakers with bonded stake
    business_pool_wh: float
    cap_wh: np.ndarray  # (N,) max_power_w * round_s / 3600, times the draw factor (read-only)
    available: np.ndarray  # (N,) bool


@dataclass(slots=True)
class Outcome:
    """What ``Market.settle`` made of a plan and the metered energy (steps 6-7, metrics)."""

    performance: np.ndarray  # (N,) p_i
    result: np.ndarray  # (N,) R_i = metered E_i * p_i
    revenue_tokens: np.ndarray
    reward_tokens: np.ndarray  # revenue share paid to each business's stakers
    slashed_tokens: np.ndarray
    scalars: dict[str, float]  # keys: the ROUND_FIELDS the model owns
    policy: dict[str, np.ndarray]  # keys lastwatt.result.POLICY_FIELDS, each (P,)


def check_pool(business_pool_wh: float) -> float:
    """The pool as a float; anything not finite and >= 0 is an ``InputError``."""
    try:
        pool_wh = float(business_pool_wh)
    except (TypeError, ValueError):
        pool_wh = math.nan
    if not math.isfinite(pool_wh) or pool_wh < 0:
        raise InputError("business_pool_wh", f"must be finite and >= 0, got {business_pool_wh}")
    return pool_wh


def check_available(available: np.ndarray | None, n: int) -> np.ndarray:
    """(N,) bool, all True when not given; a wrong shape is an ``InputError``."""
    avail = np.ones(n, dtype=bool) if available is None else np.asarray(available, dtype=bool)
    if avail.shape != (n,):
        raise InputError("available", f"needs shape ({n},), got {avail.shape}")
    return avail


def check_metered(metered_wh: np.ndarray, n: int) -> np.ndarray:
    """(N,) finite, non-negative metered energy; anything else is an ``InputError``."""
    metered = np.asarray(metered_wh, dtype=float)
    if metered.shape != (n,) or not metered.max() < np.inf:  # NaN fails the test too
        raise InputError("metered_wh", f"needs {n} finite values")
    if not metered.min() >= 0:
        if not np.isfinite(metered).all():
            raise InputError("metered_wh", f"needs {n} finite values")
        raise InputError("metered_wh", "metered energy cannot be negative")
    return metered
