"""Stakers' beliefs about business quality, updated from published results only.

Every staker starts from its own rating ``q_i + noise_si`` and, whenever a business's output
per Wh (its performance p_i) is published, moves its belief toward it with weight
``learning_rate`` (an exponential moving average). Because the news is public, the update is the
same for everyone and the belief factorises into per-business arrays:

    belief_si = decay_i * (q_i + noise_si) + news_i,   decay_i = (1 - learning_rate) ** n_i

so no (stakers x businesses) matrix is ever stored; ``noise_si`` lives in the consideration sets.

A business that is not open (business entry and exit) is valued at ``ABSENT_VALUE``, far below
any belief, so that no belief-reading policy picks it while an open one is at hand; when it
enters, its belief restarts from a fresh rating with no published news (:meth:`enter`).
"""

from __future__ import annotations

import numpy as np

ABSENT_VALUE = -1.0e6  # exp(ABSENT_VALUE / temperature) is 0: never chosen by a logit draw
# A weight below this is 0: decay x q (< 1e-59) is far below what a float32 belief resolves,
# and shrinking it further would reach subnormals (slow on x86, an underflow under np.seterr).
DECAY_FLOOR = 2.0**-200


class PublicBeliefs:
    def __init__(self, quality: np.ndarray, learning_rate: float) -> None:
        self.quality = np.array(quality, dtype=float)  # own copy: enter() writes it
        self.learning_rate = learning_rate
        self.decay = np.ones_like(self.quality)  # weight left on the personal rating
        self.news = np.zeros_like(self.quality)  # EMA of published performance, times its weight
        self.observations = np.zeros(self.quality.size, dtype=np.int64)
        self.present = np.ones(self.quality.size, dtype=bool)  # open businesses

    def enter(self, business_idx: np.ndarray, rating: np.ndarray) -> None:
        """Businesses open: their belief restarts from ``rating`` with no news (a neutral
        prior, as every business has at round 0)."""
        self.quality[business_idx] = rating
        self.decay[business_idx] = 1.0
        self.news[business_idx] = 0.0
        self.observations[business_idx] = 0
        self.present[business_idx] = True

    def leave(self, business_idx: np.ndarray) -> None:
        """Businesses close: valued at ``ABSENT_VALUE`` until they enter again."""
        self.present[business_idx] = False

    def observe(self, business_idx: np.ndarray, performance: np.ndarray) -> None:
        """Fold in the published performance of ``business_idx`` (one value each)."""
        keep = 1.0 - self.learning_rate
        self.news[business_idx] = keep * self.news[business_idx] + self.learning_rate * performance
        decay = self.decay[business_idx] * keep
        self.decay[business_idx] = np.where(decay < DECAY_FLOOR, 0.0, decay)
        self.observations[business_idx] += 1

    def published_mean(self) -> np.ndarray:
        """EMA of each business's published performance (N,); NaN where never published."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.observations > 0, self.news / (1.0 - self.decay), np.nan)

    def base(self) -> np.ndarray:
        """Belief of a staker with zero personal noise, (N,); ``ABSENT_VALUE`` where closed."""
        base = self.decay * self.quality + self.news
        return base if self.present.all() else np.where(self.present, base, ABSENT_VALUE)
