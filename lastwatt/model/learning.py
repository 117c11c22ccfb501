"""Payoff-driven staker policies: they learn from what bonding earned, not only from ratings.

A staker's payoff from business i in a settled round is what one bonded token earned there:
``payoff_i = credit_per_token_i - slash_per_token_i`` (reward share plus inflation, minus the
slashed fraction). It is public after settlement (the rewards and slashes are published), so
it is known for every business, also those a staker did not bond to ("foregone" payoffs).
State is kept per staker and candidate, ``(c, S)`` like the ratings (candidates of the
consideration set, :mod:`lastwatt.model.agents`), so it batches over stakers (and later seeds).

- ``ewa`` (Camerer and Ho's experience-weighted attraction, 1999): attractions A (c, S) and an
  experience weight N (S,). After a settled round
  ``N' = rho N + 1``, ``A' = (phi N A + [delta + (1 - delta) chosen] payoff) / N'``;
  delta = 0 is reinforcement of own payoff only (Roth-Erev-like cumulative reinforcement with
  rho = 0), delta = 1 belief learning from everything published. Choice is logit over the
  rating and the attraction: P ∝ exp(belief / temperature + lambda A), so lambda = 0 is the
  plain softmax staker.
- ``q_learning`` (a bandit staker, arms = businesses): values Q (c, S) start at 0 (no payoff
  expected); the bonded arm moves ``Q += alpha (payoff - Q)``; choice is epsilon-greedy on Q,
  ties (all of the unexplored arms) broken by the staker's own rating. While it abstains it
  learns nothing and its values relax toward the neutral 0 by ``(1 - alpha)`` a round, so it
  comes back to try again.
- strategic abstention (``abstain_when_negative``): a staker abstains when the expected payoff
  (A, or Q) of every candidate is negative.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lastwatt.model import agents

TIE_BREAK = 1e-12  # weight of the rating in q_learning's argmax: decides exact ties only
CLOSED_VALUE = -1.0e9  # A or Q of a closed business (entry/exit): never chosen while one is open


def ewa_update(
    attraction: np.ndarray,
    experience: np.ndarray,
    chosen_row: np.ndarray,
    payoff: np.ndarray,
    decay: float,
    foregone_weight: float,
    experience_decay: float,
) -> None:
    """One EWA step in place. ``chosen_row`` (S,): the bonded candidate, -1 = not bonded;
    ``payoff`` (c, S): per-token payoff of each candidate this round."""
    new_experience = experience_decay * experience + 1.0
    weight = np.full(payoff.shape, foregone_weight)
    bonded = chosen_row >= 0
    stakers = np.flatnonzero(bonded)
    weight[chosen_row[bonded], stakers] = 1.0
    attraction *= decay * experience
    attraction += weight * payoff
    attraction /= new_experience
    experience[:] = new_experience


def q_update(
    value: np.ndarray, chosen_row: np.ndarray, payoff: np.ndarray, learning_rate: float
) -> None:
    """One bandit step in place: the bonded arm toward its payoff; a staker that was not
    bonded (``chosen_row`` -1) relaxes every value toward 0."""
    bonded = chosen_row >= 0
    stakers = np.flatnonzero(bonded)
    rows = chosen_row[bonded]
    value[rows, stakers] += learning_rate * (payoff[rows, stakers] - value[rows, stakers])
    value[:, ~bonded] *= 1.0 - learning_rate


def all_negative(expected: np.ndarray) -> np.ndarray:
    """(S,) True where every candidate's expected payoff is below 0: abstain."""
    return expected.max(axis=0) < 0


def ewa_choice(
    belief: np.ndarray,
    attraction: np.ndarray,
    temperature: float,
    sensitivity: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Candidate rows (S,): logit over belief / temperature + sensitivity * attraction."""
    logit = belief / temperature + sensitivity * attraction
    logit -= logit.max(axis=0)
    return agents.sample(np.exp(logit), 1, rng)[0]


def q_choice(
    value: np.ndarray, belief: np.ndarray, epsilon: float, rng: np.random.Generator
) -> np.ndarray:
    """Candidate rows (S,): epsilon-greedy on the values, exact ties to the best rating."""
    rows = np.argmax(value + TIE_BREAK * belief, axis=0)
    explore = np.less(rng.random(value.shape[1], dtype=np.float32), epsilon)
    rows[explore] = rng.integers(0, value.shape[0], size=np.count_nonzero(explore))
    return rows


class Learner:
    """State of one learning policy's block of stakers, (c, S_block)."""

    def __init__(self, kind: str, params: Any, n_candidates: int, n_stakers: int) -> None:
        self.kind, self.params = kind, params
        self.value = np.zeros((n_candidates, n_stakers))  # A (ewa) or Q (q_learning)
        self.experience = np.zeros(n_stakers)  # N of ewa (unused by q_learning)
        self.last_row = np.full(n_stakers, -1, dtype=np.int64)  # candidate wished last

    def choose(self, belief: np.ndarray, temperature: float, rng: np.random.Generator,
               closed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Candidate rows (S_block,) and, with strategic abstention, who abstains.
        ``closed`` (c, S_block): candidates that are closed businesses (never chosen)."""
        p = self.params
        value = self.value if closed is None else np.where(closed, CLOSED_VALUE, self.value)
        if self.kind == "ewa":
            rows = ewa_choice(belief, value, temperature, p.sensitivity, rng)
        else:
            rows = q_choice(value, belief, p.epsilon, rng)
        self.last_row = rows
        abstain = all_negative(value) if p.abstain_when_negative else None
        return rows, abstain

    def learn(self, payoff: np.ndarray, bonded: np.ndarray) -> None:
        """``payoff`` (c, S_block) of the settled round; ``bonded`` (S_block,) bool."""
        chosen = np.where(bonded, self.last_row, -1)
        p = self.params
        if self.kind == "ewa":
            ewa_update(self.value, self.experience, chosen, payoff, p.decay,
                       p.foregone_weight, p.experience_decay)
        else:
            q_update(self.value, chosen, payoff, p.learning_rate)
