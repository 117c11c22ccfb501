"""Step 4: the active set (Livepeer's transcoder pool): the I businesses with the most stake.

Only available businesses with positive stake can be selected. Ties are broken by a per-round
random permutation drawn from the market stream, then a stable sort by stake: deterministic
given the seed, and fair (no business wins ties because of its index).
"""

from __future__ import annotations

import numpy as np


def select_active_set(
    stake_tokens: np.ndarray,
    active_set: int,
    rng: np.random.Generator,
    available: np.ndarray | None = None,
) -> np.ndarray:
    """Indices of the selected businesses, largest stake first (at most ``active_set``)."""
    perm = rng.permutation(len(stake_tokens))  # drawn every round: the stream never drifts
    eligible = stake_tokens[perm] > 0
    if available is not None:
        eligible &= np.asarray(available, dtype=bool)[perm]
    perm = perm[eligible]
    order = np.argsort(-stake_tokens[perm], kind="stable")
    return perm[order[:active_set]]

