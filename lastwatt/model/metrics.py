"""Round metrics: stake Gini, selected-set turnover, per-policy aggregates."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=4)
def _centred_ranks(n: int) -> np.ndarray:
    ranks = np.arange(1 - n, n, 2, dtype=float)  # 2i - n - 1 for i = 1..n
    ranks.flags.writeable = False
    return ranks


def gini(
    holdings_tokens: np.ndarray, work: np.ndarray | None = None, total: float | None = None
) -> float:
    """Gini coefficient of non-negative holdings (0 = equal, -> 1 = one holder has all).

    ``sum_i (2i - n - 1) x_(i) / (n sum x)`` over the sorted holdings: one sort (into ``work``
    when given, to spare a large allocation) and one pass, exact up to float rounding.
    ``total``: the holdings' sum when the caller has it already.
    """
    if work is None:
        x = np.sort(np.asarray(holdings_tokens, dtype=float))
    else:
        x = work
        np.copyto(x, holdings_tokens)
        x.sort()
    n = x.size
    total = x.sum() if total is None else total
    if n == 0 or total <= 0:
        return 0.0
    # einsum, not a BLAS dot: its sum order does not depend on the machine's thread count
    return float(np.einsum("i,i->", x, _centred_ranks(n)) / (n * total))


def turnover(selected_idx: Sequence[int], previous_idx: Sequence[int] | None) -> float:
    """1 - Jaccard(selected, previous); NaN on the first round, 0 when both sets are empty."""
    if previous_idx is None:
        return float("nan")
    a, b = set(selected_idx), set(previous_idx)
    union = a | b
    if not union:
        return 0.0
    return 1.0 - len(a & b) / len(union)


class BlockSums:
    """Sums of per-staker values over the contiguous policy blocks, one call per array."""

    def __init__(self, blocks: list[slice]) -> None:
        self._blocks = blocks
        self._starts = np.array([b.start for b in blocks], dtype=np.intp)
        # reduceat gives an empty block the value at its start, not 0: those take the slow path
        self._reduceat = all(b.stop > b.start for b in blocks)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        if values.dtype == bool:  # counting is much cheaper than summing
            return np.array([float(np.count_nonzero(values[b])) for b in self._blocks])
        if self._reduceat:
            return np.add.reduceat(values, self._starts, dtype=float)
        return np.array([float(values[b].sum()) for b in self._blocks])
