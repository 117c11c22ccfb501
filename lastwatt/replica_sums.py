"""Column sums of a run's tables, built round by round for R replicas in O(R) memory, with the
bits the tables' own sums give (docs/replicas.md, "The vectorised batch engine").

A run's summary sums whole columns of its rounds table (``pandas.Series.sum``, i.e. numpy's
pairwise sum) and the sweep's top-quality share averages each business's performance
(``groupby().mean()``, a Kahan sum in table order). :class:`PairwiseSums` repeats numpy's
pairwise order for a column of known length from its values as they come: leaves of at most
128 values (eight running sums, as numpy's ``pairwise_sum``) kept until they close, then the
same binary tree over the leaves. :class:`KahanSums` is pandas' ``group_mean`` loop.
"""

from __future__ import annotations

import numpy as np

BLOCK = 128  # numpy's PW_BLOCKSIZE


def _leaves(start: int, n: int, out: list[tuple[int, int]]) -> None:
    if n <= BLOCK:
        out.append((start, n))
        return
    half = n // 2
    half -= half % 8
    _leaves(start, half, out)
    _leaves(start + half, n - half, out)


def _leaf_sum(block: np.ndarray) -> np.ndarray:
    """numpy's pairwise sum of ``block`` (n <= 128 values along axis 0), per column."""
    n = len(block)
    if n < 8:
        res = np.zeros(block.shape[1:])
        for row in block:
            res = res + row
        return res
    r = [block[j].copy() for j in range(8)]
    tail = n - n % 8
    for i in range(8, tail, 8):
        for j in range(8):
            r[j] += block[i + j]
    res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    for i in range(tail, n):
        res = res + block[i]
    return res


class PairwiseSums:
    """``a.sum()`` of every column of a (n, *shape) stream of rows, as numpy sums a finished
    column, from :meth:`add` calls of one row each; :meth:`total` once all n rows are in."""

    def __init__(self, n: int, shape: tuple[int, ...]) -> None:
        leaves: list[tuple[int, int]] = []
        _leaves(0, n, leaves)
        self.n, self.leaves = n, leaves
        self.buf = np.zeros((BLOCK, *shape))
        self.sums: list[np.ndarray] = []
        self.row = 0  # rows of the open leaf filled

    def add(self, row: np.ndarray) -> None:
        self.buf[self.row] = row
        self.row += 1
        if self.row == self.leaves[len(self.sums)][1]:
            self.sums.append(_leaf_sum(self.buf[: self.row]))
            self.row = 0

    def total(self) -> np.ndarray:
        assert len(self.sums) == len(self.leaves), "not every row was added"
        # numpy starts the reduction from 0.0: an all -0.0 column sums to +0.0
        return 0.0 + self._node(0, self.n, iter(self.sums))

    def _node(self, start: int, n: int, sums) -> np.ndarray:
        if n <= BLOCK:
            return np.asarray(next(sums))
        half = n // 2
        half -= half % 8
        left = self._node(start, half, sums)
        return left + self._node(start + half, n - half, sums)


class KahanSums:
    """pandas' ``group_mean``: a compensated running sum per cell, in row order."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.sum, self.comp, self.count = np.zeros(shape), np.zeros(shape), 0

    def add(self, values: np.ndarray) -> None:
        y = values - self.comp
        t = self.sum + y
        self.comp = (t - self.sum) - y
        self.comp[np.isnan(self.comp)] = 0.0  # an infinite value: pandas resets it too
        self.sum = t
        self.count += 1

    def mean(self) -> np.ndarray:
        return self.sum / self.count
