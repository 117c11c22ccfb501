"""Step 3 for the whole population: every staker's wish for this round, (k, S) businesses.

Stakers follow their policy in contiguous blocks (:func:`lastwatt.model.agents.assign_policies`).
Policies that read beliefs work through a block in cache-sized chunks
(:data:`lastwatt.model.fastpath.CHUNK_STAKERS`); the wishes go into a buffer the bonds keep
(``Bonds.spare``).
``herding`` and ``loyal`` need the market's memory: the last active set and the bonds.
The ``sybil`` block (adversaries) has no policy: the market writes its wishes.
"""

from __future__ import annotations

import numpy as np

from lastwatt.config import PopulationConfig
from lastwatt.model import agents, fastpath
from lastwatt.model.learning import Learner
from lastwatt.model.stakes import Bonds


def _chunks(block: slice) -> list[slice]:
    size = fastpath.CHUNK_STAKERS
    return [slice(s, min(s + size, block.stop)) for s in range(block.start, block.stop, size)]


class Decisions:
    """The population's policies, with what they remember between rounds."""

    def __init__(
        self,
        pop: PopulationConfig,
        blocks: list[tuple[str, slice]],
        consideration: agents.Consideration,
        k: int,
        threads: bool = False,
    ) -> None:
        self._pop, self._blocks, self._consider, self._k = pop, blocks, consideration, k
        self._parts = {name: _chunks(block) for name, block in blocks}
        self._width = consideration.value.shape[0]
        softmax = dict(blocks).get("softmax")
        n_softmax = softmax.stop - softmax.start if softmax is not None and k == 1 else 0
        # Running logit weights of the softmax stakers change only when beliefs do: kept between
        # rounds while they fit in cache; a large population recomputes them chunk by chunk (its
        # beliefs change nearly every round, and the work buffer then stays in cache).
        self._keep_weights = self._width * n_softmax <= fastpath.KEEP_WEIGHTS_CELLS
        chunk = fastpath.CHUNK_STAKERS
        columns = n_softmax if self._keep_weights else min(n_softmax, chunk)
        # a large population's softmax chunks go to the pool's threads, each with its own buffer
        self._threads = threads and not self._keep_weights and n_softmax > chunk
        workers = fastpath.THREADS if self._threads else 1
        self._cumulative = [
            np.empty((self._width, columns), dtype=np.float32) for _ in range(workers)
        ]
        self._cumulative_version = -1
        self._exp_weights = self._kept_exp_weights(n_softmax, pop.temperature)
        self._exp_version = -1
        self.herd_target: np.ndarray | None = None  # k businesses with most stake last round
        self._loyal_pending = True  # some loyal staker has never bonded yet
        # payoff-driven policies keep (c, S_block) state (lastwatt.model.learning)
        self._learners = {
            name: (block, Learner(name, getattr(pop, name), self._width, block.stop - block.start))
            for name, block in blocks if name in ("ewa", "q_learning")
        }
        n_stakers = blocks[-1][1].stop if blocks else 0
        strategic = any(lr.params.abstain_when_negative for _, lr in self._learners.values())
        # (S,) who abstains because every bond looks like a loss; None: no such policy
        self.strategic: np.ndarray | None = np.zeros(n_stakers, bool) if strategic else None
        self.absent: np.ndarray | None = None  # (N,) closed businesses (entry/exit); None: none

    def release(self) -> None:
        """Some stakers lost their bonds (their business closed): loyal ones choose again."""
        self._loyal_pending = True

    def _kept_exp_weights(self, n_softmax: int, temperature: float) -> np.ndarray | None:
        """Logit weights of every softmax staker, kept between rounds when everyone considers
        every business: a refresh then changes whole rows only (the observed businesses), and
        only those are exponentiated again. Needs weights without the per-staker shift
        (``value_bound``), so that a row does not depend on the others."""
        consider = self._consider
        keep = (
            consider.all_businesses
            and not self._keep_weights
            and consider.value_bound / temperature <= 60
            and self._width * n_softmax <= agents.MAX_RATING_CELLS
        )
        return np.empty((self._width, n_softmax), dtype=np.float32) if keep else None

    def _update_exp_weights(self, block: slice) -> np.ndarray:
        """The kept logit weights of the softmax block, rows of changed businesses redone."""
        weights, consider, temperature = self._exp_weights, self._consider, self._pop.temperature
        assert weights is not None
        if self._exp_version == consider.version - 1:
            rows = consider.changed
            changed = consider.values(block)[rows]  # a copy: becomes the rows' new weights
            weights[rows] = agents.logit_weights(
                changed, temperature, changed, consider.value_bound
            )
        elif self._exp_version != consider.version:
            agents.logit_weights(consider.values(block), temperature, weights, consider.value_bound)
        self._exp_version = consider.version
        return weights

    def follow(self, selected_idx: np.ndarray) -> None:
        """Remember the active set for the herders (only once it has k businesses)."""
        if selected_idx.size >= self._k:
            self.herd_target = selected_idx[: self._k].astype(np.intp)

    def decide(self, bonds: Bonds, rng: np.random.Generator) -> np.ndarray:
        """Every staker's wish for this round, written into ``bonds.spare``."""
        pop, k, consider, wish = self._pop, self._k, self._consider, bonds.spare
        for name, block in self._blocks:
            if name == "sybil":
                continue
            if name == "loyal":
                wish[:, block] = bonds.choice[:, block]
                if self._loyal_pending:  # first decision: greedy on own beliefs, then never again
                    first = ~bonds.has_choice[block]
                    self._loyal_pending = bool(first.any())
                    if self._loyal_pending:
                        rows = agents.greedy(consider.values(block), k)
                        np.copyto(wish[:, block], consider.to_business(block, rows), where=first)
                continue
            if name == "herding" and self.herd_target is not None:
                wish[:, block] = self.herd_target[:, None]
                continue
            if name in self._learners:
                self._learner_choice(name, block, rng, wish)
                continue
            if name == "softmax" and k == 1:
                self._softmax_one(block, rng, wish)
                continue
            for part in self._parts[name]:
                if name == "random":
                    rows = agents.random_rows(self._width, part.stop - part.start, k, rng)
                elif name == "softmax":
                    rows = agents.softmax(consider.values(part), k, pop.temperature, rng)
                elif name == "epsilon_greedy":
                    rows = agents.epsilon_greedy(consider.values(part), k, pop.epsilon, rng)
                else:  # greedy, and herding before any stake exists
                    rows = agents.greedy(consider.values(part), k)
                wish[:, part] = consider.to_business(part, rows)
        return wish

    def _learner_choice(self, name: str, block: slice, rng: np.random.Generator,
                        wish: np.ndarray) -> None:
        """A payoff-driven block's wishes (and strategic abstentions); closed businesses are
        never chosen."""
        consider, learner = self._consider, self._learners[name][1]
        closed = None if self.absent is None else self.absent[consider.business[:, block]]
        rows, abstain = learner.choose(consider.values(block), self._pop.temperature, rng, closed)
        wish[:, block] = consider.to_business(block, rows[None, :])
        if abstain is not None and self.strategic is not None:
            self.strategic[block] = abstain

    def learn(self, payoff_per_token: np.ndarray, bonded: np.ndarray) -> None:
        """After a settled round: the learners see each candidate's per-token payoff (N,)."""
        for block, learner in self._learners.values():
            payoff = payoff_per_token[self._consider.business[:, block]]
            learner.learn(payoff, bonded[block])

    def _softmax_one(self, block: slice, rng: np.random.Generator, wish: np.ndarray) -> None:
        """Logit choice of one business per staker: one uniform each, drawn for the block."""
        uniform = rng.random(block.stop - block.start, dtype=np.float32)
        stale = not self._keep_weights or self._cumulative_version != self._consider.version
        consider, temperature = self._consider, self._pop.temperature
        exp_weights = None if self._exp_weights is None else self._update_exp_weights(block)

        def chunk(part: slice, worker: int) -> None:  # the uniforms are drawn: choices are fixed
            own = slice(part.start - block.start, part.stop - block.start)
            kept = own if self._keep_weights else slice(0, own.stop - own.start)
            cumulative = self._cumulative[worker][:, kept]
            if exp_weights is not None:
                agents.cumulative_rows(exp_weights[:, own], out=cumulative)
            elif stale:
                agents.logit_weights(
                    consider.values(part), temperature, cumulative, consider.value_bound
                )
                agents.cumulative_rows(cumulative)
            rows = agents.draw_rows(cumulative, uniform[own])
            wish[0, part] = consider.to_business(part, rows[None, :])[0]

        fastpath.share(chunk, self._parts["softmax"], self._threads)
        self._cumulative_version = consider.version
