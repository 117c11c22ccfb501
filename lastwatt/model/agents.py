"""Step 3: staker policies, vectorised over a block of stakers.

Each staker looks at a fixed *consideration set* of businesses (``population.consideration_set``
drawn once per staker, 0 = all N) and holds a personal rating noise for each of them (drawn once:
a staker's opinion is persistent). The candidate values are the beliefs of
:mod:`lastwatt.model.beliefs`. The choice functions below return *column* indices into the
(stakers, candidates) value matrix, ``k`` distinct columns per staker; :class:`Consideration`
maps them to businesses. ``herding`` and ``loyal`` need the market's memory and live in
:mod:`lastwatt.model.market`.
"""

from __future__ import annotations

import numpy as np

from lastwatt.errors import ConfigError
from lastwatt.model.beliefs import PublicBeliefs

MAX_NOISE_CELLS = 50_000_000  # stakers x candidates held in memory (float32 + int32)
POLICY_ORDER = ("greedy", "epsilon_greedy", "softmax", "herding", "loyal", "random")


def assign_policies(shares: dict[str, float], n_stakers: int) -> list[tuple[str, slice]]:
    """Contiguous staker blocks per policy, sized by largest remainder (deterministic)."""
    names = [n for n, share in shares.items() if share > 0]
    exact = np.array([shares[n] for n in names]) * n_stakers
    counts = np.floor(exact).astype(int)
    short = n_stakers - counts.sum()
    counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    ends = np.cumsum(counts)
    return [(n, slice(int(e - c), int(e))) for n, c, e in zip(names, counts, ends, strict=True)]


def _argmax_rows(values: np.ndarray) -> np.ndarray:
    # np.argmax(axis=1) is slow for short rows; a pass per column is several times faster
    if values.shape[1] > 32:
        return np.argmax(values, axis=1)
    best = values[:, 0].copy()
    col = np.zeros(values.shape[0], dtype=np.int64)
    for j in range(1, values.shape[1]):
        better = values[:, j] > best
        np.copyto(best, values[:, j], where=better)
        col[better] = j
    return col


def top_columns(values: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest columns of each row, (S, k)."""
    if k == 1:
        return _argmax_rows(values)[:, None]
    return np.argpartition(-values, k - 1, axis=1)[:, :k]


def greedy(values: np.ndarray, k: int) -> np.ndarray:
    return top_columns(values, k)


def random_columns(n_stakers: int, n_candidates: int, k: int, rng: np.random.Generator) -> np.ndarray:
    if k == 1:
        return rng.integers(0, n_candidates, size=(n_stakers, 1))
    return top_columns(rng.random((n_stakers, n_candidates), dtype=np.float32), k)


def softmax(values: np.ndarray, k: int, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """Logit choice by the Gumbel-max trick (Gumbel-top-k: k distinct draws, no replacement)."""
    gumbel = -np.log(rng.standard_exponential(values.shape, dtype=np.float32))
    return top_columns(values / np.float32(temperature) + gumbel, k)


def epsilon_greedy(values: np.ndarray, k: int, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    cols = greedy(values, k)
    explore = rng.random(values.shape[0], dtype=np.float32) < epsilon
    cols[explore] = random_columns(int(explore.sum()), values.shape[1], k, rng)
    return cols


class Consideration:
    """Per-staker candidate businesses and persistent personal rating noise."""

    def __init__(
        self,
        n_stakers: int,
        n_businesses: int,
        size: int,
        rating_noise_sd: float,
        rng: np.random.Generator,
    ) -> None:
        self.all_businesses = size == 0 or size >= n_businesses
        width = n_businesses if self.all_businesses else size
        if n_stakers * width > MAX_NOISE_CELLS:
            raise ConfigError(
                "population.consideration_set",
                f"{n_stakers} stakers x {width} businesses is too many personal ratings to hold",
                f"set consideration_set so that households x it <= {MAX_NOISE_CELLS:,}",
            )
        # drawn with replacement: at size << N a duplicate is rare and only narrows that set
        self.business: np.ndarray | None = (
            None
            if self.all_businesses
            else rng.integers(0, n_businesses, size=(n_stakers, width), dtype=np.int32)
        )
        self.noise = rng.standard_normal((n_stakers, width), dtype=np.float32)
        self.noise *= np.float32(rating_noise_sd)
        self.width = width

    def values(self, block: slice, beliefs: PublicBeliefs) -> np.ndarray:
        """Beliefs of the stakers in ``block`` about their candidates, (S_block, width) float32."""
        base = beliefs.base().astype(np.float32)
        decay = beliefs.decay.astype(np.float32)
        if self.business is None:
            return base + decay * self.noise[block]
        cand = self.business[block]
        return base[cand] + decay[cand] * self.noise[block]

    def to_business(self, block: slice, columns: np.ndarray) -> np.ndarray:
        """Business indices (S_block, k) int32 for candidate ``columns`` of the block's stakers."""
        if self.business is None:
            return columns.astype(np.int32)
        return np.take_along_axis(self.business[block], columns, axis=1)
