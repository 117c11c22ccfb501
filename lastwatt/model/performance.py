"""Step 6: performance p_i ~ Normal(q_i, sigma_i) clipped to [-10, 10]; result R_i = E_i p_i."""

from __future__ import annotations

import numpy as np

PERFORMANCE_MIN = -10.0
PERFORMANCE_MAX = 10.0


def draw_performance(
    quality: np.ndarray, performance_sd: float | np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One draw per business every round (night too): the stream never depends on decisions."""
    p = rng.standard_normal(len(quality))  # = rng.normal(quality, sd), whose array path is slow
    p *= performance_sd
    p += quality
    np.maximum(p, PERFORMANCE_MIN, out=p)  # np.clip, without its per-call overhead
    return np.minimum(p, PERFORMANCE_MAX, out=p)


def community_result(energy_wh: np.ndarray, performance: np.ndarray) -> np.ndarray:
    """R_i = E_i * p_i (Wh x performance points)."""
    return energy_wh * performance
