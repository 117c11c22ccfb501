"""Baselines on the same pool, caps and p_i draws as the mechanism (common random numbers).

- equal: every available business gets an equal share (capped, water-filled);
- random: I businesses drawn uniformly from the available ones, equal shares (capped, water-filled);
- last output (:func:`last_output_allocation`): shares proportional to each business's positive
  result of the last settled round; an equal split over all available businesses when there is
  none. Fed the mechanism's *published* results it is ``reweighted_selection`` (it re-weights
  the stakers' own selected set, so it borrows their selection); fed its *own* last results,
  starting from an equal split, it is ``self_proportional``, a genuinely stake-free rule.
"""

from __future__ import annotations

import numpy as np

from lastwatt.model.allocation import water_fill


def _available(n: int, available: np.ndarray | None) -> np.ndarray:
    return np.ones(n, dtype=bool) if available is None else np.asarray(available, dtype=bool)


def equal_allocation(
    pool_wh: float, cap_wh: np.ndarray, available: np.ndarray | None = None
) -> np.ndarray:
    if pool_wh <= 0:
        return np.zeros(len(cap_wh))
    weight = _available(len(cap_wh), available).astype(float)
    return water_fill(pool_wh, weight, cap_wh)[0]


def random_allocation(
    pool_wh: float,
    cap_wh: np.ndarray,
    count: int,
    rng: np.random.Generator,
    available: np.ndarray | None = None,
) -> np.ndarray:
    """Draws from ``rng`` every call (also when the pool is empty) to keep the stream aligned."""
    n = len(cap_wh)
    mask = _available(n, available)
    candidates = n if mask.all() else np.flatnonzero(mask)
    chosen = rng.permutation(candidates)[:count]  # an int n draws exactly like arange(n)
    if pool_wh <= 0:
        return np.zeros(n)
    weight = np.zeros(n)
    weight[chosen] = 1.0
    return water_fill(pool_wh, weight, cap_wh)[0]


def last_output_allocation(
    pool_wh: float,
    cap_wh: np.ndarray,
    last_result: np.ndarray,
    available: np.ndarray | None = None,
) -> np.ndarray:
    if pool_wh <= 0:
        return np.zeros(len(cap_wh))
    mask = _available(len(cap_wh), available)
    weight = np.where(mask, np.maximum(last_result, 0.0), 0.0)
    if not np.count_nonzero(weight):
        weight = mask.astype(float)
    return water_fill(pool_wh, weight, cap_wh)[0]
