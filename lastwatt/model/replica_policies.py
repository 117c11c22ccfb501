"""Staker policies that draw at random, on the replica axis (docs/replicas.md): ``random``,
``epsilon_greedy`` (:mod:`lastwatt.model.agents`), ``ewa`` and ``q_learning``
(:mod:`lastwatt.model.replica_learning`) for every replica at once.

Draws: each deciding replica makes its single run's calls on its market stream in the order of
``Market._decide_and_bond`` and ``Decisions.decide`` (the abstention uniforms, then each
policy block in config order, chunk by chunk as there), with the same bounds and counts;
consecutive float32 uniform calls are merged (float32 draws are consumed 32 bits at a time, so
one call of a + b equals a call of a then one of b). An exploration's integers depend only on
the uniforms drawn before them, never on beliefs, so every draw of a round is made first and
the choices are vectorised over replicas after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lastwatt.config import Config
from lastwatt.model import fastpath
from lastwatt.model.replica_learning import LEARNERS, ReplicaLearners

if TYPE_CHECKING:
    from lastwatt.rng import Streams

POLICIES = frozenset({"random", "epsilon_greedy"}) | LEARNERS


@dataclass(frozen=True, slots=True)
class _Op:
    """One call on a replica's market stream.

    ``uniform``: float32 uniforms into columns ``start:stop`` of the uniform buffer.
    ``integers``: ints in [0, high) for the stakers ``start:stop`` (their picks); with
    ``explore`` (the uniform columns of those stakers) only where that uniform < ``epsilon``.
    """

    kind: str
    start: int
    stop: int
    high: int = 0
    explore: int = -1  # first uniform column of the stakers, -1: every staker draws
    epsilon: float = 0.0


def chunks(block: slice) -> list[slice]:
    """``decisions._chunks``: the pieces a block draws in."""
    size = fastpath.CHUNK_STAKERS
    return [slice(s, min(s + size, block.stop)) for s in range(block.start, block.stop, size)]


class ReplicaPolicies:
    """The round's draws of every replica, and the choices of the drawing policies."""

    def __init__(self, cfg: Config, blocks: list[tuple[str, slice]], n_replicas: int,
                 n_stakers: int, width: int, draws_abstain: bool, business: Any) -> None:
        self._width = width
        self._temperature = cfg.population.temperature
        self.learners = ReplicaLearners(cfg, blocks, n_replicas, width, business)
        self._ops: list[_Op] = []
        self._columns = 0
        self._abstain = self._uniform(n_stakers) if draws_abstain else slice(0, 0)
        self.block_uniform: dict[str, slice] = {}
        for name, block in blocks:
            self._plan_block(cfg, name, block)
        self.uniform = np.empty((n_replicas, self._columns), dtype=np.float32)
        self.picks = np.full((n_replicas, n_stakers), -1, dtype=np.int64)

    @classmethod
    def of(cls, cfg: Config, blocks: list[tuple[str, slice]], n_replicas: int,
           threshold: Any, business: Any, width: int) -> ReplicaPolicies | None:
        """The batch's drawing policies over ``width`` candidates (``business`` (R, c, S)
        or None: every business); None when it has none (softmax alone draws)."""
        if (not any(name in POLICIES for name, _ in blocks)
                or cfg.population.max_businesses_per_staker > 1):  # replica_slots draws then
            return None
        return cls(cfg, blocks, n_replicas, blocks[-1][1].stop, width,
                   bool(np.max(threshold) > 0), business)

    def _uniform(self, n: int) -> slice:
        """The next ``n`` uniform columns, drawn by one call (merged with a call just before)."""
        start, self._columns = self._columns, self._columns + n
        last = self._ops[-1] if self._ops else None
        if last is not None and last.kind == "uniform" and last.stop == start:
            self._ops[-1] = _Op("uniform", last.start, self._columns)
        else:
            self._ops.append(_Op("uniform", start, self._columns))
        return slice(start, self._columns)

    def _plan_block(self, cfg: Config, name: str, block: slice) -> None:
        """The calls ``Decisions.decide`` makes for the block (none: it draws nothing)."""
        n = block.stop - block.start
        if name == "softmax":  # Decisions._softmax_one: one uniform each, for the block
            self.block_uniform[name] = self._uniform(n)
        elif name == "random":  # agents.random_rows, k = 1, per chunk
            for part in chunks(block):
                self._ops.append(_Op("integers", part.start, part.stop, self._width))
        elif name == "epsilon_greedy":  # agents.epsilon_greedy, per chunk
            first = self._columns
            for part in chunks(block):
                columns = self._uniform(part.stop - part.start)
                self._ops.append(_Op("integers", part.start, part.stop, self._width,
                                     columns.start, cfg.population.epsilon))
            self.block_uniform[name] = slice(first, self._columns)
        elif name == "ewa":  # learning.ewa_choice: agents.sample, one uniform each
            self.block_uniform[name] = self._uniform(n)
        elif name == "q_learning":  # learning.q_choice: the whole block at once
            columns = self.block_uniform[name] = self._uniform(n)
            self._ops.append(_Op("integers", block.start, block.stop, self._width,
                                 columns.start, cfg.population.q_learning.epsilon))

    # ---- draws ---------------------------------------------------------------------------
    def draw(self, streams: list[Streams], deciding: np.ndarray) -> np.ndarray:
        """Every draw of the round for the ``deciding`` replicas (R,) bool; returns the
        batch's uniform layout (R, abstain | softmax) for ``ReplicaState.decide_and_bond``."""
        rows = np.flatnonzero(deciding)
        self.picks[rows] = -1
        for r in rows.tolist():
            rng, uniform, picks = streams[r].market, self.uniform[r], self.picks[r]
            for op in self._ops:
                if op.kind == "uniform":
                    rng.random(dtype=np.float32, out=uniform[op.start:op.stop])
                elif op.explore < 0:
                    picks[op.start:op.stop] = rng.integers(0, op.high, size=op.stop - op.start)
                else:
                    u = uniform[op.explore:op.explore + op.stop - op.start]
                    who = np.flatnonzero(u < op.epsilon)
                    picks[op.start + who] = rng.integers(0, op.high, size=who.size)
        soft = self.block_uniform.get("softmax", slice(0, 0))
        return np.concatenate([self.uniform[:, self._abstain], self.uniform[:, soft]], axis=1)

    # ---- choices -------------------------------------------------------------------------
    def wish(self, at: Any, name: str, block: slice, values: np.ndarray) -> np.ndarray:
        """The block's candidate rows (rows, S_block) in the replicas ``at`` (not yet
        businesses); ``values`` are theirs, (rows, c, S)."""
        picks = self.picks[at][:, block]
        if name == "random":
            return picks
        if name in LEARNERS:
            uniform = self.uniform[at][:, self.block_uniform[name]]
            return self.learners.choose(at, name, values[:, :, block], self._temperature,
                                        uniform, picks)
        greedy = values[:, :, block].argmax(axis=1)  # agents.greedy, k = 1
        return np.where(picks >= 0, picks, greedy)

    def abstain(self, at: Any, abstain: np.ndarray) -> None:
        """Add the learners' strategic abstentions of the replicas ``at`` to ``abstain``."""
        if self.learners.strategic is not None:
            abstain |= self.learners.strategic[at]

    def learn(self, payoff: np.ndarray, bonded: np.ndarray, settled: np.ndarray) -> None:
        """After settlement: the learners see the per-token payoffs (R, N)."""
        self.learners.learn(payoff, bonded, settled)
