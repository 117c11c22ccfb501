"""Round metrics: stake Gini, selected-set turnover, per-policy aggregates."""

from __future__ import annotations

import numpy as np


def gini(holdings_tokens: np.ndarray) -> float:
    """Gini coefficient of non-negative holdings (0 = equal, -> 1 = one holder has all)."""
    x = np.sort(np.asarray(holdings_tokens, dtype=float))
    n = x.size
    total = x.sum()
    if n == 0 or total <= 0:
        return 0.0
    # Lorenz form of sum_i (2i - n - 1) x_(i) / (n sum x): one cumulative pass, no rank array
    return float((n + 1 - 2 * np.cumsum(x).sum() / total) / n)


def turnover(selected_idx: np.ndarray, previous_idx: np.ndarray | None) -> float:
    """1 - Jaccard(selected, previous); NaN on the first round, 0 when both sets are empty."""
    if previous_idx is None:
        return float("nan")
    a, b = set(np.asarray(selected_idx).tolist()), set(np.asarray(previous_idx).tolist())
    union = a | b
    if not union:
        return 0.0
    return 1.0 - len(a & b) / len(union)


def block_sums(values: np.ndarray, blocks: list[slice]) -> np.ndarray:
    """Sums of ``values`` over contiguous staker blocks (policies are assigned in blocks)."""
    return np.array([float(values[b].sum()) for b in blocks])
