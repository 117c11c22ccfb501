"""Step 5: share the business pool pro rata to weights, capped, with water-filling.

Each business gets ``level * weight_i`` capped at ``cap_i``; the level is raised until the pool
is used or every weighted business is capped. What cannot be placed goes back to the reserve.
The same routine serves the mechanism (weights = stake) and the baselines (weights = 1 or
last output).
"""

from __future__ import annotations

import numpy as np


def water_fill(pool_wh: float, weight: np.ndarray, cap_wh: np.ndarray) -> tuple[np.ndarray, float]:
    """Return ``(energy_wh (N,), unplaced_wh)``.

    Closed form instead of iterating: sort by ``cap_i / weight_i`` (the level at which i caps);
    the first business in that order whose cap is not reached by an even share of what the
    cheaper-capping ones leave fixes the level. Zero weights get nothing.
    """
    weight = np.asarray(weight, dtype=float)
    cap_wh = np.asarray(cap_wh, dtype=float)
    energy_wh = np.zeros_like(weight)
    idx = np.flatnonzero(weight > 0)
    if pool_wh <= 0 or idx.size == 0:
        return energy_wh, max(float(pool_wh), 0.0)
    w = weight[idx]
    c = cap_wh[idx]
    order = np.argsort(c / w, kind="stable")
    w, c, idx = w[order], c[order], idx[order]
    capped_before = np.concatenate(([0.0], np.cumsum(c)[:-1]))  # caps of all ahead of j
    weight_from = np.cumsum(w[::-1])[::-1]  # weight of j and all after it
    level = (pool_wh - capped_before) / weight_from
    fits = level <= c / w  # j is not capped at the level its remainder implies
    if not fits.any():
        energy_wh[idx] = c
        return energy_wh, float(pool_wh - c.sum())
    j = int(np.argmax(fits))
    energy_wh[idx[:j]] = c[:j]
    energy_wh[idx[j:]] = np.minimum(level[j] * w[j:], c[j:])  # min: float rounding only
    return energy_wh, 0.0
