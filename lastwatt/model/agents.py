"""Step 3: staker policies, vectorised over a block of stakers.

Each staker looks at a fixed *consideration set* of businesses (``population.consideration_set``
drawn once per staker, 0 = all N) and has a persistent personal rating noise for each of them
(:mod:`lastwatt.model.rating_noise`: held in memory, or regenerated when needed).
Its value of a candidate is its belief (:mod:`lastwatt.model.beliefs`). Arrays are laid out
candidates-first, ``(c, S)``, so that every per-candidate step is a contiguous pass over
stakers. The choice functions return *rows* ``(k, S)``: the candidates each staker picks, ``k``
distinct ones; :meth:`Consideration.to_business` maps them to businesses. ``herding`` and
``loyal`` need the market's memory and live in :mod:`lastwatt.model.decisions`.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from lastwatt.errors import ConfigError
from lastwatt.model import fastpath
from lastwatt.model.beliefs import PublicBeliefs
from lastwatt.model.rating_noise import RatingNoise, noise_weight

MAX_RATING_CELLS = 200_000_000  # stakers x candidates of cached values (4 to 12 bytes each)
# above this, personal noise is regenerated, not held: the cells of a 64 MiB float32 array
STORED_NOISE_CELLS = 1 << 24
SMALL_BLOCK = 4_096  # stakers: below it one numpy call per step beats per-row passes


def assign_policies(shares: dict[str, float], n_stakers: int) -> list[tuple[str, slice]]:
    """Contiguous staker blocks per policy, sized by largest remainder (deterministic)."""
    names = [n for n, share in shares.items() if share > 0]
    exact = np.array([shares[n] for n in names]) * n_stakers
    counts = np.floor(exact).astype(int)
    short = n_stakers - counts.sum()
    counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    ends = np.cumsum(counts)
    return [(n, slice(int(e - c), int(e))) for n, c, e in zip(names, counts, ends, strict=True)]


def greedy(values: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best candidates of each staker, (k, S)."""
    if k > 1:
        return np.argpartition(-values, k - 1, axis=0)[:k]
    if values.shape[1] <= SMALL_BLOCK:
        return values.argmax(axis=0)[None, :]
    best = values[0].copy()
    row = np.zeros(values.shape[1], dtype=np.int64)
    for j in range(1, values.shape[0]):  # a pass per candidate beats argmax(axis=0) here
        better = values[j] > best
        np.copyto(best, values[j], where=better)
        row[better] = j
    return row[None, :]


def cumulative_rows(weights: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Running sums down the candidate axis of ``weights`` (c, S), into ``out`` (default: in
    place)."""
    out = weights if out is None else out
    if weights.shape[1] <= SMALL_BLOCK:
        return np.cumsum(weights, axis=0, out=out)
    np.copyto(out[0], weights[0])
    for j in range(1, weights.shape[0]):  # per-row passes: cumsum(axis=0) is slow when S is large
        np.add(out[j - 1], weights[j], out=out[j])
    return out


def draw_rows(cumulative: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """Inverse CDF: each staker's first candidate whose running weight exceeds ``u * total``."""
    target = uniform * cumulative[-1]
    if cumulative.shape[0] <= 128:  # count in int8: the bool rows then add as bytes, no casting
        below = cumulative[:-1] <= target  # the last candidate takes the rest
        return below.view(np.int8).sum(axis=0, dtype=np.int8)
    # Running sums of weights >= 0 never decrease, so the rows at or below the target are a
    # prefix: binary search finds its length (the same count) in log2(c) gathers.
    columns = np.arange(cumulative.shape[1])
    low = np.zeros(cumulative.shape[1], dtype=np.intp)
    high = np.full(cumulative.shape[1], cumulative.shape[0] - 1, dtype=np.intp)
    for _ in range(int(cumulative.shape[0] - 1).bit_length()):
        middle = (low + high) // 2  # < high <= c - 1 while low < high
        below = cumulative[middle, columns] <= target
        open_ = low < high
        low = np.where(open_ & below, middle + 1, low)
        high = np.where(open_ & ~below, middle, high)
    return low


def sample(weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` distinct candidates per staker, each drawn with probability proportional to
    ``weights`` (c, S) among those not drawn yet (inverse CDF, one uniform per staker and draw).
    ``weights`` is consumed."""
    n_stakers = weights.shape[1]
    rows = np.empty((k, n_stakers), dtype=np.int64)
    cum = np.empty_like(weights)
    for draw in range(k):
        np.copyto(cum, weights)
        rows[draw] = draw_rows(cumulative_rows(cum), rng.random(n_stakers, dtype=np.float32))
        if draw < k - 1:
            weights[rows[draw], np.arange(n_stakers)] = 0.0
    return rows


def logit_weights(
    values: np.ndarray, temperature: float, out: np.ndarray, value_bound: float = math.inf
) -> np.ndarray:
    """Logit weights exp(value / temperature) of each staker's candidates into ``out`` (c, S).

    The usual guard, subtracting each staker's best value first, cancels in the choice
    probabilities; it is skipped when ``|value| <= value_bound`` already keeps exp in float32
    range (a bound of values / temperature <= 60 leaves room for 10^10 candidates).
    """
    if value_bound / temperature <= 60:
        if temperature == 1:  # copy first: exp in place on contiguous memory is much faster
            np.copyto(out, values)
        else:
            np.multiply(values, np.float32(1.0 / temperature), out=out)
    else:
        np.subtract(values, values.max(axis=0), out=out)
        if temperature != 1:
            out *= np.float32(1.0 / temperature)
    return np.exp(out, out=out)


def softmax(values: np.ndarray, k: int, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """Logit choice: P(candidate) proportional to exp(value / temperature)."""
    return sample(logit_weights(values, temperature, np.empty_like(values)), k, rng)


def random_rows(n_candidates: int, n_stakers: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` distinct uniformly random candidates per staker, (k, S)."""
    if k == 1:
        return rng.integers(0, n_candidates, size=(1, n_stakers))
    return sample(np.ones((n_candidates, n_stakers), dtype=np.float32), k, rng)


def epsilon_greedy(
    values: np.ndarray, k: int, epsilon: float, rng: np.random.Generator
) -> np.ndarray:
    """Greedy, but each staker explores (k random candidates) with probability ``epsilon``."""
    rows = greedy(values, k)
    explore = rng.random(values.shape[1], dtype=np.float32) < epsilon
    rows[:, explore] = random_rows(values.shape[0], int(explore.sum()), k, rng)
    return rows


class Consideration:
    """Per-staker candidate businesses, persistent personal rating noise, cached values.

    The noise is held in memory (``noise``, (c, S)) when ``stored_noise`` (default: up to
    ``STORED_NOISE_CELLS`` cells), else regenerated from its key when a cell's value changes
    (``noise`` is None); both give the same values.

    The values ``(c, S)`` of the ``cached`` staker blocks (default: everyone) are kept up to
    date incrementally: only businesses whose public beliefs changed (those just observed) are
    recomputed. The cache is recomputed from the formula, never accumulated, so it cannot drift.
    When every staker considers every business, candidate j is business j and the refresh is one
    broadcast; otherwise an index from business to its cells, with the noise stored in the same
    business-major order, makes a refresh read contiguous runs and write only the cells that
    change. Other stakers' values (policies that rarely read them) are computed when asked for.
    """

    def __init__(
        self,
        n_stakers: int,
        n_businesses: int,
        size: int,
        rating_noise_sd: float,
        rng: np.random.Generator,
        beliefs: PublicBeliefs,
        cached: list[slice] | None = None,
        threads: bool = False,
        stored_noise: bool | None = None,
    ) -> None:
        self._threads = threads  # refresh on the pool's threads (lastwatt.model.fastpath)
        self.all_businesses = size == 0 or size >= n_businesses
        width = n_businesses if self.all_businesses else size
        if n_stakers * width > MAX_RATING_CELLS:
            raise ConfigError(
                "population.consideration_set",
                f"{n_stakers} stakers x {width} businesses is too many personal ratings to hold",
                f"set consideration_set so that households x it <= {MAX_RATING_CELLS:,}",
            )
        self.n_stakers = n_stakers
        self._staker_ids = np.arange(n_stakers)  # sliced, not rebuilt, by every to_business
        self.business = self._candidates(n_stakers, n_businesses, width, rng)
        self._init_noise(rating_noise_sd, rng, stored_noise)
        # beliefs mix q_i and published p_i, both in [-10, 10], so |value| stays below this
        self.value_bound = 10.0 + self._noise.bound + 1e-3
        self._beliefs = beliefs
        self._cached = [slice(0, n_stakers)] if cached is None else cached
        self._cached_stakers = np.concatenate(
            [np.arange(b.start, b.stop) for b in self._cached] or [np.zeros(0, dtype=np.intp)]
        )
        if not self.all_businesses:
            self._index_cells_by_business(n_businesses)
        self.value = np.empty((width, n_stakers), dtype=np.float32)
        self.version = 0  # counts refreshes, for caches derived from the values
        self.changed = np.arange(n_businesses)
        self.refresh(beliefs, np.arange(n_businesses))

    def _candidates(
        self, n_stakers: int, n_businesses: int, width: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Business of each candidate (c, S): all of them, or c drawn per staker.

        Drawn with replacement: at c << N a duplicate is rare and only narrows that set. Kept in
        the narrowest type that holds N (decisions read it from memory every round); all of
        them is a read-only broadcast view, no memory.
        """
        dtype = np.int16 if n_businesses <= 1 << 15 else np.int32
        if self.all_businesses:
            column = np.arange(n_businesses, dtype=dtype)[:, None]
            return np.broadcast_to(column, (n_businesses, n_stakers))
        business = rng.integers(0, n_businesses, size=(width, n_stakers), dtype=np.int32)
        return business.astype(dtype)

    def _init_noise(self, sd: float, rng: np.random.Generator, stored: bool | None) -> None:
        """The noise's key (one draw), and the noise itself if held in memory."""
        key = rng.integers(0, 1 << 64, dtype=np.uint64, endpoint=False)
        self._noise = RatingNoise(key, sd, self.n_stakers, STORED_NOISE_CELLS)
        if stored is None:
            stored = self.business.size <= STORED_NOISE_CELLS
        self.noise = (
            self._noise.cells(np.arange(self.n_stakers), self._business_rows()) if stored else None
        )

    def _business_rows(self, block: slice = slice(None)) -> np.ndarray:
        """Business of each candidate of the block's stakers: (c, 1) when it is the same for
        everyone, else (c, S_block)."""
        return self.business[:, :1] if self.all_businesses else self.business[:, block]

    def _index_cells_by_business(self, n_businesses: int) -> None:
        """The cached cells in business-major order, with their noise (if held) in that order."""
        width, n_stakers = self.business.shape
        cells = (np.arange(width)[:, None] * n_stakers + self._cached_stakers).ravel()
        business = self.business.ravel()[cells]
        order = np.argsort(business, kind="stable")
        self._cells_by_business = cells[order].astype(np.int32)  # < MAX_RATING_CELLS
        self._cell_start = np.searchsorted(business[order], np.arange(n_businesses + 1))
        if self.noise is not None:
            self._noise_by_business = self.noise.ravel()[self._cells_by_business]

    def refresh(self, beliefs: PublicBeliefs, businesses: np.ndarray) -> None:
        """Recompute the cached values of every cell that holds one of ``businesses``."""
        if len(businesses) == 0:
            return
        self.version += 1
        self.changed = np.asarray(businesses)  # of this refresh, for caches of whole rows
        base, decay = self._weights(beliefs)
        if self.noise is None:
            for business in np.asarray(businesses).tolist():
                self._refresh_business(business, base, decay, beliefs.decay[business] < 1)
        elif self.all_businesses:
            self._refresh_every_business(base, decay, self.noise)
        else:
            self._refresh_cells(np.asarray(businesses), base, decay, self.noise)

    def _weights(self, beliefs: PublicBeliefs) -> tuple[np.ndarray, np.ndarray]:
        """float32 belief of a noiseless staker and weight of the noise, per business."""
        base = beliefs.base()
        return base.astype(np.float32), noise_weight(beliefs.decay, base, self._noise.bound)

    def _refresh_business(
        self, business: int, base: np.ndarray, decay: np.ndarray, moving: bool
    ) -> None:
        """Recompute ``business``'s cached cells, from regenerated noise (kept while its
        weight is still shrinking; forgotten once it is 0, as it is never read again)."""
        if self.all_businesses:
            stakers = self._cached_stakers
            cells = np.add(stakers, business * self.n_stakers)
        else:
            cells = self._cells_by_business[
                self._cell_start[business] : self._cell_start[business + 1]
            ]
            stakers = cells % self.n_stakers
        if decay[business] == 0:
            self._noise.forget(business)
            self.value.ravel()[cells] = base[business]  # what 0 x noise + base gives
            return
        value = np.multiply(decay[business], self._noise.row(business, stakers, keep=moving))
        value += base[business]
        self.value.ravel()[cells] = value

    def _refresh_every_business(
        self, base: np.ndarray, decay: np.ndarray, noise: np.ndarray
    ) -> None:
        """Everyone considers every business: one broadcast per cached block (values of
        unchanged businesses come out the same)."""

        def formula(value: np.ndarray, noise: np.ndarray) -> None:
            np.multiply(decay[:, None], noise, out=value)
            value += base[:, None]

        for block in self._cached:
            fastpath.split(formula, [self.value[:, block], noise[:, block]], self._threads)

    def _refresh_cells(
        self, businesses: np.ndarray, base: np.ndarray, decay: np.ndarray, noise: np.ndarray
    ) -> None:
        """The cells of ``businesses`` only, or every cell in memory order when most change."""
        starts, stops = self._cell_start[businesses], self._cell_start[businesses + 1]
        lengths = stops - starts
        n_cells = int(lengths.sum())
        if 4 * n_cells > self.value.size:

            def every_cell(value: np.ndarray, business: np.ndarray, noise: np.ndarray) -> None:
                np.take(decay, business, out=value, mode="clip")  # indices are valid: no check
                value *= noise
                value += np.take(base, business)

            fastpath.split(every_cell, [self.value, self.business, noise], self._threads)
            return
        if not self._threads:
            self._write(businesses, starts, lengths, base, decay)
            return
        # pieces of about equal cells: equal work, and each business's cells are its own
        cuts = np.searchsorted(
            np.cumsum(lengths), np.arange(1, fastpath.PIECES) * n_cells // fastpath.PIECES
        )
        pieces = list(itertools.pairwise([0, *cuts.tolist(), len(businesses)]))

        def write(piece: tuple[int, int], _: int) -> None:
            part = slice(*piece)
            self._write(businesses[part], starts[part], lengths[part], base, decay)

        fastpath.share(write, pieces, self._threads)

    def _write(
        self,
        businesses: np.ndarray,
        starts: np.ndarray,
        lengths: np.ndarray,
        base: np.ndarray,
        decay: np.ndarray,
    ) -> None:
        """Recompute the cells of ``businesses`` (their runs in the business-major index)."""
        ends = np.cumsum(lengths)
        n_cells = int(ends[-1]) if ends.size else 0
        runs = np.arange(n_cells) + np.repeat(starts - (ends - lengths), lengths)
        value = np.repeat(decay[businesses], lengths)
        value *= self._noise_by_business[runs]
        value += np.repeat(base[businesses], lengths)
        self.value.ravel()[self._cells_by_business[runs]] = value

    def values(self, block: slice) -> np.ndarray:
        """Values ``(c, S_block)`` of the block's stakers (do not modify: may be the cache)."""
        if any(c.start <= block.start and block.stop <= c.stop for c in self._cached):
            return self.value[:, block]
        base, decay = self._weights(self._beliefs)
        business = self._business_rows(block)
        noise = (
            self._noise.cells(np.arange(self.n_stakers)[block], business)
            if self.noise is None
            else self.noise[:, block]
        )
        return np.take(decay, business) * noise + np.take(base, business)

    def to_business(self, block: slice, rows: np.ndarray) -> np.ndarray:
        """Business indices ``(k, S_block)`` for candidate ``rows`` of the block's stakers."""
        if self.all_businesses:
            return rows
        cells = np.multiply(rows, self.n_stakers, dtype=np.intp)
        cells += self._staker_ids[block]
        return np.take(self.business, cells)  # flat cells: cheaper than take_along_axis
