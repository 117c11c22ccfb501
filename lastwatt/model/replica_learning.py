"""The payoff-driven policies ``ewa`` and ``q_learning`` on the replica axis (docs/replicas.md):
:class:`lastwatt.model.learning.Learner` with a leading replica axis, its state (R, c, S_block).

Each step is the 1-D code's expression on the same operands, elementwise per replica, so every
replica's bits are its single run's: the logit choice's running sums go down the candidates in
order (``agents.sample``), the maxima and argmaxima are exact whatever their order. The uniforms
and the explorers' integers are drawn beforehand, in the single run's order
(:mod:`lastwatt.model.replica_policies`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lastwatt.config import Config
from lastwatt.model import replica_candidates
from lastwatt.model.learning import TIE_BREAK
from lastwatt.model.replica_sampling import draw_rows, running_sums

LEARNERS = frozenset({"ewa", "q_learning"})
CHUNK = 16  # replicas per pass: their (16, c, S_block) float64 temporaries stay in cache


class ReplicaLearner:
    """One learning block's state in every replica: values A or Q (R, c, S_block), ewa's
    experience N (R, S_block) and the candidate each staker wished last (R, S_block)."""

    def __init__(self, kind: str, params: Any, n_replicas: int, width: int, n: int) -> None:
        self.kind, self.params = kind, params
        self.value = np.zeros((n_replicas, width, n))
        self.experience = np.zeros((n_replicas, n))
        self.last_row = np.full((n_replicas, n), -1, dtype=np.int64)

    def choose(self, at: Any, belief: np.ndarray, temperature: float, uniform: np.ndarray,
               picks: np.ndarray) -> np.ndarray:
        """``Learner.choose`` in the replicas ``at``: candidate rows (rows, S_block).
        ``belief`` (rows, c, S_block) float32, ``uniform`` (rows, S_block) the block's
        uniforms, ``picks`` the q explorers' drawn candidates (-1: not exploring)."""
        rows = np.empty(uniform.shape, dtype=np.intp)
        for replicas, part in _pieces(at, len(self.value)):
            value = self.value[replicas]
            if self.kind == "ewa":  # learning.ewa_choice: agents.sample of the logit weights
                logit = np.multiply(value, self.params.sensitivity)
                logit += belief[part] / temperature  # a + b == b + a: belief / T + lambda A
                logit -= logit.max(axis=1, keepdims=True)
                weights = np.exp(logit, out=logit)
                rows[part] = draw_rows(running_sums(weights, np.empty_like(weights)),
                                       uniform[part])
            else:  # learning.q_choice: argmax, exact ties to the best rating, the explorers
                best = np.argmax(value + TIE_BREAK * belief[part], axis=1)
                rows[part] = np.where(picks[part] >= 0, picks[part], best)
        self.last_row[at] = rows
        return rows

    def negative(self, at: Any) -> np.ndarray:
        """``learning.all_negative`` of the replicas ``at`` (rows, S_block)."""
        return self.value[at].max(axis=1) < 0

    def learn(self, rows: Any, payoff: np.ndarray, bonded: np.ndarray) -> None:
        """``Learner.learn`` in the replicas ``rows``: ``payoff`` (rows, c, S_block) per token
        of each candidate, ``bonded`` (rows, S_block)."""
        for replicas, part in _pieces(rows, len(self.value)):
            value = self.value[replicas]  # a view when ``replicas`` is a slice: in place
            if self.kind == "ewa":
                self.experience[replicas] = self._ewa(value, self.experience[replicas],
                                                      self.last_row[replicas], payoff[part],
                                                      bonded[part])
            else:
                self._q(value, self.last_row[replicas], payoff[part], bonded[part])
            if not isinstance(replicas, slice):
                self.value[replicas] = value

    def _ewa(self, value: np.ndarray, experience: np.ndarray, last_row: np.ndarray,
             payoff: np.ndarray, bonded: np.ndarray) -> np.ndarray:
        """``learning.ewa_update`` of ``value`` in place; the new experience."""
        p = self.params
        who, staker = np.nonzero(bonded)
        new_experience = p.experience_decay * experience + 1.0
        weight = np.full(value.shape, p.foregone_weight)
        weight[who, last_row[who, staker], staker] = 1.0
        value *= (p.decay * experience)[:, None, :]
        value += np.multiply(weight, payoff, out=weight)
        value /= new_experience[:, None, :]
        return new_experience

    def _q(self, value: np.ndarray, last_row: np.ndarray, payoff: np.ndarray,
           bonded: np.ndarray) -> None:
        """``learning.q_update`` of ``value`` in place."""
        lr = self.params.learning_rate
        who, staker = np.nonzero(bonded)
        cell = (who, last_row[who, staker], staker)
        value[cell] = value[cell] + lr * (payoff[cell] - value[cell])
        np.multiply(value, 1.0 - lr, out=value, where=~bonded[:, None, :])


def _pieces(at: Any, n_replicas: int) -> list[tuple[Any, slice]]:
    """The replicas ``at`` (a slice of all, or indices) in pieces of ``CHUNK``: each piece's
    replicas (a slice when ``at`` is one: views, no copies) and its positions among ``at``."""
    rows = np.arange(n_replicas)[at]
    pieces: list[tuple[Any, slice]] = []
    for start in range(0, len(rows), CHUNK):
        part = slice(start, min(start + CHUNK, len(rows)))
        if isinstance(at, slice) and at == slice(None):
            pieces.append((part, part))
        else:
            pieces.append((rows[part], part))
    return pieces


class ReplicaLearners:
    """Every learning block of the batch, and who abstains strategically (R, S) or None."""

    def __init__(self, cfg: Config, blocks: list[tuple[str, slice]], n_replicas: int,
                 width: int, business: Any) -> None:
        pop, self.business = cfg.population, business
        self.blocks = {name: block for name, block in blocks if name in LEARNERS}
        self.learners = {
            name: ReplicaLearner(name, getattr(pop, name), n_replicas, width,
                                 block.stop - block.start)
            for name, block in self.blocks.items()
        }
        strategic = any(lr.params.abstain_when_negative for lr in self.learners.values())
        n_stakers = blocks[-1][1].stop
        self.strategic = np.zeros((n_replicas, n_stakers), bool) if strategic else None

    def choose(self, at: Any, name: str, belief: np.ndarray, temperature: float,
               uniform: np.ndarray, picks: np.ndarray) -> np.ndarray:
        """The block's rows; its strategic abstentions noted (``Decisions._learner_choice``)."""
        learner, block = self.learners[name], self.blocks[name]
        rows = learner.choose(at, belief, temperature, uniform, picks)
        if learner.params.abstain_when_negative and self.strategic is not None:
            self.strategic[at, block] = learner.negative(at)
        return rows

    def learn(self, payoff: np.ndarray, bonded: np.ndarray, settled: np.ndarray) -> None:
        """``Decisions.learn`` in the settled replicas: payoff (R, N), bonded (R, S)."""
        if not settled.any():
            return
        rows = slice(None) if settled.all() else np.flatnonzero(settled)
        for name, learner in self.learners.items():
            block = self.blocks[name]
            learner.learn(rows, replica_candidates.payoff(self.business, rows, payoff[rows], block),
                          bonded[rows][:, block])
