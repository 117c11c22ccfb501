"""Stakers' personal rating noise ``sd * z(key, staker, business)`` without a (stakers x
businesses) matrix.

``z`` comes from :mod:`lastwatt.model.counter_noise`, so the noise of any cell can be
regenerated on demand and always equals the noise a population holding it in memory would have
(tested). A belief weighs the noise by ``decay_i`` (:mod:`lastwatt.model.beliefs`); once that
weight cannot change a float32 value any more it is set to exactly 0 (:func:`noise_weight`), so
the noise of such a business is never needed again. Only businesses whose weight is still
shrinking (observed, not settled) are read every time they are observed: their noise is kept
(up to ``keep_cells``) and regenerated if dropped. So the memory is O(stakers) plus the kept
rows, and never changes a result.
"""

from __future__ import annotations

import numpy as np

from lastwatt.model import counter_noise

CHUNK_CELLS = 1 << 18  # cells generated per pass: uint64 temporaries of 2 MiB stay in cache
# below this a weight is dropped whatever the belief: weight x noise would approach subnormals
WEIGHT_FLOOR = 2.0**-64


def noise_weight(decay: np.ndarray, base: np.ndarray, bound: float) -> np.ndarray:
    """float32 weight of each business's personal noise in a belief ``decay * noise + base``.

    It is 0 where ``|decay * noise| <= decay * bound`` is below an eighth of the float32 spacing
    at ``base`` (so ``decay * noise + base`` rounds to ``base`` either way: a factor 2 covers
    the rounding of decay and of the product) or below ``WEIGHT_FLOOR``: the weight then never
    produces subnormal products (slow on x86, and an underflow under ``np.seterr``).
    """
    spacing = np.spacing(np.abs(base.astype(np.float32))).astype(float)
    settled = (decay * bound < spacing / 8.0) | (decay < WEIGHT_FLOOR)
    return np.where(settled, 0.0, decay).astype(np.float32)


class RatingNoise:
    """The noise of one population: ``n_stakers`` stakers, seeded by ``key``."""

    def __init__(self, key: np.uint64, sd: float, n_stakers: int, keep_cells: int) -> None:
        self.key, self.sd = np.uint64(key), np.float32(sd)
        self.bound = float(counter_noise.BOUND * self.sd)  # >= |noise| of every cell
        self._staker_keys = counter_noise.staker_keys(self.key, np.arange(n_stakers))
        self._kept: dict[int, np.ndarray] = {}
        self._kept_cells, self._keep_cells = 0, keep_cells

    def cells(self, stakers: np.ndarray, business: np.ndarray) -> np.ndarray:
        """Noise of the cells (``business``, ``stakers``), ``business`` (c, 1) or (c, s), for
        ``stakers`` (s,), worked through in cache-sized pieces of stakers."""
        rows = business.shape[0]
        out = np.empty((rows, stakers.size), dtype=np.float32)
        step = max(1, CHUNK_CELLS // max(rows, 1))
        per_staker = business.shape[1] > 1
        keys = None if per_staker else counter_noise.business_keys(self.key, business)
        for start in range(0, stakers.size, step):
            part = slice(start, start + step)
            z = counter_noise.normal_from_keys(
                self._staker_keys[stakers[part]],
                counter_noise.business_keys(self.key, business[:, part]) if keys is None else keys,
            )
            np.multiply(z, self.sd, out=out[:, part])
        return out

    def row(self, business: int, stakers: np.ndarray, keep: bool) -> np.ndarray:
        """Noise of ``business`` for ``stakers``; kept for next time if ``keep`` and room
        allows (callers ask for one business with the same ``stakers`` every time)."""
        row = self._kept.get(business)
        if row is None:
            row = self.cells(stakers, np.array([[business]]))[0]
            if keep and self._kept_cells + row.size <= self._keep_cells:
                self._kept[business] = row
                self._kept_cells += row.size
        return row

    def forget(self, business: int) -> None:
        """``business``'s noise will not be read again (its weight is 0)."""
        row = self._kept.pop(business, None)
        if row is not None:
            self._kept_cells -= row.size
