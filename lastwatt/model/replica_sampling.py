"""Choosing rows of candidates on the replica axis: ``agents.cumulative_rows``, ``draw_rows``,
``sample`` and ``greedy`` with a leading replica axis, (n, c, S) (docs/replicas.md). The
running sums go down the candidates in order, as the 1-D code's, so each replica's bits are its
single run's; counts and argpartitions act per lane on the same values.
"""

from __future__ import annotations

import numpy as np


def running_sums(weights: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``agents.cumulative_rows`` per replica: running sums down the candidates (axis 1) of
    ``weights`` (n, c, S), in order (a pass per candidate beats cumsum along a middle axis)."""
    out[:, 0] = weights[:, 0]
    for j in range(1, weights.shape[1]):
        np.add(out[:, j - 1], weights[:, j], out=out[:, j])
    return out


def draw_rows(cumulative: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """``agents.draw_rows`` per replica: the rows below ``uniform * total`` (n, S)."""
    below = cumulative[:, :-1] <= (uniform * cumulative[:, -1])[:, None, :]
    if below.shape[1] < 128:  # count in int8, as the 1-D code (the same count)
        return below.view(np.int8).sum(axis=1, dtype=np.int8)
    return below.sum(axis=1)


def sample_rows(weights: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """``agents.sample`` per replica: ``weights`` (n, c, S) float32 (consumed), ``uniform``
    (n, k, S) float32 -> k distinct candidate rows (n, k, S)."""
    n, k, s = uniform.shape
    rows = np.empty((n, k, s), dtype=np.intp)
    replica, staker = np.arange(n)[:, None], np.arange(s)[None, :]
    cumulative = np.empty_like(weights)
    for draw in range(k):
        rows[:, draw] = draw_rows(running_sums(weights, cumulative), uniform[:, draw])
        if draw < k - 1:
            weights[replica, rows[:, draw], staker] = 0.0
    return rows


def greedy_rows(values: np.ndarray, k: int) -> np.ndarray:
    """``agents.greedy`` with k > 1 per replica: (n, c, S) -> (n, k, S)."""
    return np.argpartition(-values, k - 1, axis=1)[:, :k]
