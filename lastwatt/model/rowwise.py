"""Per-replica versions of the model's reductions: one row per replica, the same bits as the
1-D code on each row (docs/replicas.md).

Elementwise numpy work gives the same bits per row by itself; sums do not unless they add in
the same order. Each function here names the 1-D code whose order it repeats.
"""

from __future__ import annotations

import numpy as np

from lastwatt.model.allocation import FEW


def masked_sums(values: np.ndarray, mask: np.ndarray, sequential: np.ndarray) -> np.ndarray:
    """Per row, the sum of ``values[mask]``: in index order where ``sequential`` (Python's
    ``sum`` of floats), else numpy's pairwise order over the compressed values (``a[m].sum()``).
    A running sum is sequential (zeros add nothing), and numpy's pairwise sum of fewer than 8
    values is too; rows of one larger count are compressed together (a boolean index keeps
    each row's values in order, one row after another) and summed by one numpy row sum, the
    1-D sum's order."""
    out = running_totals(np.where(mask, values, 0.0))
    counts = np.count_nonzero(mask, axis=1)
    pairwise = ~sequential & (counts >= 8)
    if pairwise.any():
        for n in np.unique(counts[pairwise]).tolist():
            rows = np.flatnonzero(pairwise & (counts == n))
            out[rows] = values[rows][mask[rows]].reshape(len(rows), n).sum(axis=1)
    return out


def running_totals(values: np.ndarray) -> np.ndarray:
    """``np.cumsum(values, axis=1)[:, -1]``, the same adds in the same order: for many short
    rows a column at a time over a transposed copy (numpy's cumsum along short rows costs
    several times more per value; below ~200 rows its single call is cheaper)."""
    if values.shape[1] > 64 or values.shape[0] < 200:
        return np.cumsum(values, axis=1)[:, -1]
    columns = values.T.copy()
    out = columns[0].copy()
    for column in columns[1:]:
        out += column
    return out


def python_max0(x: np.ndarray) -> np.ndarray:
    """``max(x, 0.0)`` of Python floats, signed zero included (``-0.0`` stays)."""
    return np.where(x < 0.0, 0.0, x)


def water_fill_rows(
    pool_wh: np.ndarray, weight: np.ndarray, cap_wh: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`lastwatt.model.allocation.water_fill` per row: ``(energy (R, N), unplaced (R,))``.

    Both of its paths: up to ``FEW`` open businesses it sums in index order, above that in
    numpy's pairwise order; the path is chosen on the first pass, as there. Each pass works
    on the rows still filling only (their arrays shrink as rows finish)."""
    energy = np.zeros(weight.shape)
    left = python_max0(np.asarray(pool_wh, dtype=float)).copy()
    is_open = weight > 0
    rows = np.flatnonzero((left > 0) & is_open.any(axis=1))
    w, cap, now_open = weight[rows], cap_wh[rows], is_open[rows]
    few = np.count_nonzero(now_open, axis=1) <= FEW
    e, room = np.zeros(w.shape), left[rows]
    while rows.size:
        total = masked_sums(w, now_open, few)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = room[:, None] * (w / total[:, None])
        capped = now_open & (share >= cap)
        more = capped.any(axis=1)
        done = ~more
        energy[rows[done]] = np.where(now_open[done], share[done], e[done])
        left[rows[done]] = 0.0
        rows, w, cap, now_open, few, e, room, capped = (
            a[more] for a in (rows, w, cap, now_open, few, e, room, capped))
        np.copyto(e, cap, where=capped)
        room = python_max0(room - masked_sums(cap, capped, few))
        now_open &= ~capped
        going = (room > 0) & now_open.any(axis=1)
        stop = rows[~going]
        energy[stop], left[stop] = e[~going], room[~going]
        rows, w, cap, now_open, few, e, room = (
            a[going] for a in (rows, w, cap, now_open, few, e, room))
    return energy, left


def oracle_rows(
    pool_wh: np.ndarray, cap_wh: np.ndarray, performance: np.ndarray, active_set: int | None
) -> np.ndarray:
    """:func:`lastwatt.model.oracle.oracle_allocation` per row (every business available)."""
    eligible = performance > 0
    order = np.argsort(np.where(eligible, -performance, np.inf), axis=1, kind="stable")
    limit = eligible.sum(axis=1)
    if active_set is not None:
        limit = np.minimum(limit, active_set)
    caps = np.take_along_axis(cap_wh, order, axis=1)
    caps[np.arange(caps.shape[1]) >= limit[:, None]] = 0.0  # after the rest: sums unchanged
    before = np.cumsum(caps, axis=1)
    before[:, 1:] = before[:, :-1]
    before[:, 0] = 0.0
    left = np.subtract(np.asarray(pool_wh, dtype=float)[:, None], before, out=before)
    sorted_wh = np.minimum(np.maximum(left, 0.0, out=left), caps, out=left)
    energy = np.zeros(cap_wh.shape)
    np.put_along_axis(energy, order, sorted_wh, axis=1)
    energy[np.asarray(pool_wh) <= 0] = 0.0
    return energy


def dot_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a[r] @ b[r]`` per row: a stacked matmul, the 1-D dot's kernel (tested)."""
    return (a[:, None, :] @ b[:, :, None])[:, 0, 0]


class BlockSumsRows:
    """:class:`lastwatt.model.metrics.BlockSums` per row: ``(R, S)`` -> ``(R, P)``."""

    def __init__(self, blocks: list[slice]) -> None:
        self._blocks = blocks
        self._starts = np.array([b.start for b in blocks], dtype=np.intp)
        self._reduceat = all(b.stop > b.start for b in blocks)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        if values.dtype == bool:
            return np.stack([np.count_nonzero(values[:, b], axis=1) for b in self._blocks],
                            axis=1).astype(float)
        if self._reduceat:
            return np.add.reduceat(values, self._starts, axis=1, dtype=float)
        return np.stack([values[:, b].sum(axis=1) for b in self._blocks], axis=1)


def gini_rows(wealth: np.ndarray, supply: np.ndarray) -> np.ndarray:
    """:func:`lastwatt.model.metrics.gini` per row, given each row's sum ``supply``."""
    n = wealth.shape[1]
    if n == 0:
        return np.zeros(len(wealth))
    ranks = np.arange(1 - n, n, 2, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.einsum("ri,i->r", np.sort(wealth, axis=1), ranks) / (n * supply)
    return np.where(supply > 0, g, 0.0)
