"""The same-round oracle: the best total result with perfect knowledge of p_i.

A fractional knapsack: fill businesses by p_i descending (only p_i > 0: a business with
p_i <= 0 can only lower the total) up to their caps until the pool is used. By default the
active-set limit I does not apply, so the oracle is an upper bound on every allocation that
respects the pool and the caps (``mechanism.oracle_respects_active_set`` turns the limit on).
"""

from __future__ import annotations

import numpy as np


def oracle_allocation(
    pool_wh: float,
    cap_wh: np.ndarray,
    performance: np.ndarray,
    available: np.ndarray | None = None,
    active_set: int | None = None,
) -> np.ndarray:
    """Energy (N,) of the optimal allocation; ``active_set`` limits it to the best I businesses."""
    energy_wh = np.zeros(len(cap_wh))
    if pool_wh <= 0:
        return energy_wh
    eligible = performance > 0
    if available is not None:
        eligible &= available
    idx = eligible.nonzero()[0]
    if idx.size == 0:
        return energy_wh
    idx = idx[np.argsort(-performance[idx], kind="stable")]
    if active_set is not None:
        idx = idx[:active_set]
    caps = cap_wh[idx]
    before = np.cumsum(caps)  # then shifted: what the better businesses took before each one
    before[1:] = before[:-1]
    before[0] = 0.0
    left = np.subtract(pool_wh, before, out=before)
    energy_wh[idx] = np.minimum(np.maximum(left, 0.0, out=left), caps, out=left)  # = np.clip
    return energy_wh
