"""A community-free allocator: Gaussian UCB over businesses as arms (a baseline).

What it knows: the noise level sigma of performance (``businesses.performance_sd``, the largest
sigma_i when they differ) and the per-Wh output p_i of the businesses *it* fed energy to; no
ratings, no stake, no published results of the mechanism. Each settled round it picks the I
available businesses with the largest index

    mean_i + sigma * sqrt(2 ln t / n_i)     (never observed: +inf, lowest index first)

gives them equal shares of the pool (capped, water-filled) and folds the p_i of those that
received energy into ``mean_i``. ``t`` counts its observations rounds (settled rounds), from 1.
Deterministic: it draws no random numbers, so it cannot shift any stream.
"""

from __future__ import annotations

import numpy as np

from lastwatt.model.allocation import water_fill


def ucb_index(mean: np.ndarray, count: np.ndarray, t: int, sigma: float) -> np.ndarray:
    """Upper confidence bounds (N,); +inf for arms never observed (their count is taken
    as 1 for the bonus, which they do not use: no division by zero to silence)."""
    bonus = sigma * np.sqrt(2.0 * np.log(max(t, 1)) / np.maximum(count, 1))
    return np.where(count > 0, mean + bonus, np.inf)


def ucb_choice(index: np.ndarray, count: int, available: np.ndarray | None = None) -> np.ndarray:
    """The ``count`` available arms with the largest index (ties: lowest index first)."""
    index = np.where(available, index, -np.inf) if available is not None else index
    order = np.argsort(-index, kind="stable")
    order = order[np.isfinite(index[order]) | (index[order] > 0)]  # drop unavailable (-inf)
    return order[:count]


class UcbAllocator:
    """Its state: how often it observed each business and the mean p_i it saw, (N,) each."""

    def __init__(self, n_businesses: int, active_set: int, sigma: float) -> None:
        self.count = np.zeros(n_businesses, dtype=np.int64)
        self.mean = np.zeros(n_businesses)
        self.active_set, self.sigma = active_set, sigma
        self.t = 0

    def allocate(
        self, pool_wh: float, cap_wh: np.ndarray, available: np.ndarray | None = None
    ) -> np.ndarray:
        """Energy (N,) for this round (zeros for an empty pool)."""
        n = len(cap_wh)
        if pool_wh <= 0:
            return np.zeros(n)
        chosen = ucb_choice(ucb_index(self.mean, self.count, self.t, self.sigma),
                            self.active_set, available)
        weight = np.zeros(n)
        weight[chosen] = 1.0
        return water_fill(pool_wh, weight, cap_wh)[0]

    def observe(self, energy_wh: np.ndarray, performance: np.ndarray) -> None:
        """Fold in the p_i of the businesses it fed (a settled round)."""
        self.t += 1
        fed = energy_wh > 0
        self.count[fed] += 1
        self.mean[fed] += (performance[fed] - self.mean[fed]) / self.count[fed]
