"""Step 5: share the business pool pro rata to weights, capped, with water-filling.

Each business gets its pro-rata share of what is left; those whose share reaches their cap get
the cap and drop out, and the rest is re-shared among the others until no cap binds. What cannot
be placed goes back to the reserve. The same routine serves the mechanism (weights = stake) and
the baselines (weights = 1 or last output).
"""

from __future__ import annotations

import numpy as np


def water_fill(pool_wh: float, weight: np.ndarray, cap_wh: np.ndarray) -> tuple[np.ndarray, float]:
    """Return ``(energy_wh (N,), unplaced_wh)``; zero weights get nothing.

    At most one pass per business that caps (a handful in practice); shares are computed as
    ``weight_i / sum`` so that stakes many orders of magnitude apart cannot overflow.
    """
    weight = np.asarray(weight, dtype=float)
    energy_wh = np.zeros(weight.shape)
    left_wh = max(float(pool_wh), 0.0)
    if left_wh == 0:
        return energy_wh, 0.0
    cap_wh = np.asarray(cap_wh, dtype=float)
    open_idx = np.flatnonzero(weight > 0)
    while left_wh > 0 and open_idx.size:
        w, cap = weight[open_idx], cap_wh[open_idx]
        share = left_wh * (w / w.sum())
        capped = share >= cap
        if not capped.any():
            energy_wh[open_idx] = share
            return energy_wh, 0.0
        energy_wh[open_idx[capped]] = cap[capped]
        left_wh = max(left_wh - float(cap[capped].sum()), 0.0)
        open_idx = open_idx[~capped]
    return energy_wh, left_wh
