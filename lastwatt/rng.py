"""Seeded random streams: one independent ``numpy.random.Generator`` per purpose.

Each purpose gets its own child of ``SeedSequence(seed)`` so that changing how many draws one
part makes (say, a new staker policy) does not shift the draws of another (the weather, the
performance draws that the oracle and baselines share): common random numbers across runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# appended only: a child seed depends on its position, so earlier streams never shift
PURPOSES = (
    "weather", "demand", "market", "performance", "baselines", "devices", "businesses", "world"
)


@dataclass(frozen=True, slots=True)
class Streams:
    """One independent random generator per purpose, all spawned from the run's seed."""
    weather: np.random.Generator
    demand: np.random.Generator
    market: np.random.Generator  # staker decisions, tie-breaks
    performance: np.random.Generator  # p_i draws, shared by model, oracle and baselines
    baselines: np.random.Generator  # the random-I baseline's own choices
    devices: np.random.Generator  # metering noise of mock devices
    businesses: np.random.Generator  # q_i and max power draws
    world: np.random.Generator  # endowments, shared rating errors, quality drift


def streams(seed: int) -> Streams:
    """The run's generators, spawned from ``seed`` (same seed, same draws)."""
    children = np.random.SeedSequence(seed).spawn(len(PURPOSES))
    return Streams(*(np.random.default_rng(c) for c in children))
