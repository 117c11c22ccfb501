"""Stakers' beliefs about business quality, updated from published results only.

Every staker starts from its own rating ``q_i + noise_si`` and, whenever a business's output
per Wh (its performance p_i) is published, moves its belief toward it with weight
``learning_rate`` (an exponential moving average). Because the news is public, the update is the
same for everyone and the belief factorises into per-business arrays:

    belief_si = decay_i * (q_i + noise_si) + news_i,   decay_i = (1 - learning_rate) ** n_i

so no (stakers x businesses) matrix is ever stored; ``noise_si`` lives in the consideration sets.
"""

from __future__ import annotations

import numpy as np


class PublicBeliefs:
    def __init__(self, quality: np.ndarray, learning_rate: float) -> None:
        self.quality = np.asarray(quality, dtype=float)
        self.learning_rate = learning_rate
        self.decay = np.ones_like(self.quality)  # weight left on the personal rating
        self.news = np.zeros_like(self.quality)  # EMA of published performance, times its weight
        self.observations = np.zeros(self.quality.size, dtype=np.int64)

    def observe(self, business_idx: np.ndarray, performance: np.ndarray) -> None:
        """Fold in the published performance of ``business_idx`` (one value each)."""
        keep = 1.0 - self.learning_rate
        self.news[business_idx] = keep * self.news[business_idx] + self.learning_rate * performance
        self.decay[business_idx] *= keep
        self.observations[business_idx] += 1

    def published_mean(self) -> np.ndarray:
        """EMA of each business's published performance (N,); NaN where never published."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.observations > 0, self.news / (1.0 - self.decay), np.nan)

    def base(self) -> np.ndarray:
        """Belief of a staker with zero personal noise, (N,)."""
        return self.decay * self.quality + self.news
