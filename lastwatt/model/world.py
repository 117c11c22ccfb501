"""A world that moves: pure functions over (N,) and (S,) arrays, drawn from ``streams.world``.

- ``endowment_tokens``: household tokens, equal, uniform U(0, 2 mean) or Pareto with the same
  mean (a few whales hold much of the supply);
- ``drift_quality``: a random walk of every q_i, clipped to [-10, 10];
- ``apply_jumps``: scheduled q_i changes at the start of a round;
- ``shared_rating_error``: one error per business that every staker's rating shares
  (correlated errors that 320 stakers cannot average away), the rating clipped to [-10, 10];
- ``open_rounds`` / ``present_at``: business entry and exit, the (N,) mask of open businesses;
- ``sybil_tokens``: one actor's tokens, a share of the supply, split over its accounts.
"""

from __future__ import annotations

import numpy as np

QUALITY_MIN, QUALITY_MAX = -10.0, 10.0


def endowment_tokens(kind: str, n_stakers: int, mean_tokens: float, pareto_shape: float,
                     rng: np.random.Generator) -> np.ndarray:
    if kind == "equal":  # draws nothing: the default run's streams are untouched
        return np.full(n_stakers, mean_tokens)
    if kind == "uniform":
        return rng.uniform(0.0, 2.0 * mean_tokens, n_stakers)
    # classical Pareto with scale x_m and mean a x_m / (a - 1) = mean_tokens
    scale = mean_tokens * (pareto_shape - 1.0) / pareto_shape
    return scale * (1.0 + rng.pareto(pareto_shape, n_stakers))


def drift_quality(quality: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    """A new array: q + N(0, sd) per business, clipped."""
    return np.clip(quality + sd * rng.standard_normal(quality.size), QUALITY_MIN, QUALITY_MAX)


def apply_jumps(quality: np.ndarray, round_index: int,
                jumps: list[tuple[int, int, float]]) -> np.ndarray:
    """``jumps``: (round, business, new quality); a new array when one applies this round."""
    due = [(b, q) for r, b, q in jumps if r == round_index]
    if not due:
        return quality
    quality = quality.copy()
    for business, new_quality in due:
        quality[business] = new_quality
    return quality


def shared_rating_error(quality: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    """The rating every staker starts from: q_i + e_i, e_i ~ N(0, sd), clipped."""
    if sd == 0:
        return quality
    return np.clip(quality + sd * rng.standard_normal(quality.size), QUALITY_MIN, QUALITY_MAX)


def capture(selected_idx: list[int], targets: np.ndarray) -> float:
    """Share of the selected slots taken by adversaries' businesses (NaN: nothing selected)."""
    if not selected_idx:
        return float("nan")
    return float(np.isin(selected_idx, targets).mean())


NEVER = np.iinfo(np.int64).max  # the exit round of a business that never exits


def open_rounds(n_businesses: int, presence: list[tuple[int, int, int | None]]
                ) -> tuple[np.ndarray, np.ndarray]:
    """(enters, exits) per business (N,) from ``(business, enters, exits)`` triples; unlisted
    businesses are open from round 0 and never exit."""
    enters = np.zeros(n_businesses, dtype=np.int64)
    exits = np.full(n_businesses, NEVER, dtype=np.int64)
    for business, enter, leave in presence:
        enters[business] = enter
        exits[business] = NEVER if leave is None else leave
    return enters, exits


def present_at(round_index: int, enters: np.ndarray, exits: np.ndarray) -> np.ndarray:
    """(N,) bool: the businesses open in ``round_index`` (entered, not yet exited)."""
    return (enters <= round_index) & (round_index < exits)


def sybil_tokens(household_tokens: np.ndarray, supply_share: float, accounts: int) -> np.ndarray:
    """(accounts,) equal holdings whose sum is ``supply_share`` of the supply they join:
    T = share / (1 - share) * household supply, so that T / (households + T) = share."""
    total = supply_share / (1.0 - supply_share) * float(household_tokens.sum())
    return np.full(accounts, total / accounts)
