"""Step 5: share the business pool pro rata to weights, capped, with water-filling.

Each business gets its pro-rata share of what is left; those whose share reaches their cap get
the cap and drop out, and the rest is re-shared among the others until no cap binds. What cannot
be placed goes back to the reserve. The same routine serves the mechanism (weights = stake) and
the baselines (weights = 1 or last output).
"""

from __future__ import annotations

import numpy as np

FEW = 8  # open businesses: up to this many, plain Python floats beat numpy's per-call cost


def _water_fill_few(
    left_wh: float, open_idx: np.ndarray, weight: np.ndarray, cap_wh: np.ndarray
) -> tuple[np.ndarray, float]:
    """:func:`water_fill` when only a handful of businesses have weight (the active set)."""
    weights, caps = weight.tolist(), cap_wh.tolist()
    energy = [0.0] * len(weights)
    idx = open_idx.tolist()
    while left_wh > 0 and idx:
        total = sum([weights[i] for i in idx])
        capped_wh, still = 0.0, []
        for i in idx:  # each takes its share, or its cap and drops out
            energy[i] = min(left_wh * (weights[i] / total), caps[i])
            if energy[i] == caps[i]:
                capped_wh += caps[i]
            else:
                still.append(i)
        if len(still) == len(idx):  # nobody capped: the shares stand
            return np.array(energy), 0.0
        for i in still:  # to be re-shared with what the capped left
            energy[i] = 0.0
        left_wh = max(left_wh - capped_wh, 0.0)
        idx = still
    return np.array(energy), left_wh


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
    open_idx = (weight > 0).nonzero()[0]
    if open_idx.size <= FEW:
        return _water_fill_few(left_wh, open_idx, weight, cap_wh)
    while left_wh > 0 and open_idx.size:
        w, cap = weight[open_idx], cap_wh[open_idx]
        share = left_wh * (w / w.sum())
        capped = share >= cap
        if not np.count_nonzero(capped):  # (cheaper than .any() on these short arrays)
            energy_wh[open_idx] = share
            return energy_wh, 0.0
        energy_wh[open_idx[capped]] = cap[capped]
        left_wh = max(left_wh - float(cap[capped].sum()), 0.0)
        open_idx = open_idx[~capped]
    return energy_wh, left_wh


def pour_surplus(
    pool_wh: float, weight: np.ndarray, cap_wh: np.ndarray, eligible: np.ndarray | None
) -> tuple[np.ndarray, float]:
    """Pro-rata shares capped once; what the caps leave is water-filled only over the
    ``eligible`` businesses (their room left, same weights); ``None``: nobody, all of it
    goes back (``mechanism.surplus = "reserve"``). Returns ``(energy_wh, unplaced_wh)``."""
    weight = np.asarray(weight, dtype=float)
    total = weight.sum()
    if pool_wh <= 0 or total <= 0:
        return np.zeros(weight.shape), max(float(pool_wh), 0.0)
    energy_wh = np.minimum(pool_wh * (weight / total), cap_wh)
    surplus_wh = max(float(pool_wh - energy_wh.sum()), 0.0)
    if eligible is None or surplus_wh == 0:
        return energy_wh, surplus_wh
    extra_wh, unplaced_wh = water_fill(surplus_wh, weight * eligible, cap_wh - energy_wh)
    return energy_wh + extra_wh, unplaced_wh


def allocate_to_selected(
    pool_wh: float, stake_tokens: np.ndarray, selected_idx: np.ndarray, cap_wh: np.ndarray,
    surplus: str = "selected", published_mean: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """The mechanism's allocation: the pool pro rata to stake among the selected businesses,
    capped. What the caps leave (``mechanism.surplus``) is water-filled over every selected
    business (``selected``), only over those with a positive ``published_mean``
    (``positive_expected``), or goes back (``reserve``). Returns ``(planned_wh (N,),
    unplaced_wh)``.

    Only the selected are filled, in index order: the same numbers as filling all N with zero
    weight outside the active set, for the cost of I businesses.
    """
    planned_wh = np.zeros(len(stake_tokens))
    if pool_wh <= 0 or not selected_idx.size:
        return planned_wh, pool_wh
    idx = np.sort(selected_idx)
    if surplus == "selected":  # the spec: re-share over every selected business
        planned_wh[idx], unplaced_wh = water_fill(pool_wh, stake_tokens[idx], cap_wh[idx])
        return planned_wh, unplaced_wh
    eligible = None if surplus == "reserve" or published_mean is None else published_mean[idx] > 0
    planned_wh[idx], unplaced_wh = pour_surplus(pool_wh, stake_tokens[idx], cap_wh[idx], eligible)
    return planned_wh, unplaced_wh
