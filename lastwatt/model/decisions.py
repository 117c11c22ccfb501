"""Step 3 for the whole population: every staker's wish for this round, (k, S) businesses.

Stakers follow their policy in contiguous blocks (:func:`lastwatt.model.agents.assign_policies`).
Policies that read beliefs work through a block in cache-sized chunks, so that the (c, chunk)
temporaries stay in L2; the wish array and the softmax work buffer are allocated once.
``herding`` and ``loyal`` need the market's memory: the last active set and the bonds.
"""

from __future__ import annotations

import numpy as np

from lastwatt.config import PopulationConfig
from lastwatt.model import agents
from lastwatt.model.stakes import Bonds

CHUNK_STAKERS = 32_768


def _chunks(block: slice) -> list[slice]:
    starts = range(block.start, block.stop, CHUNK_STAKERS)
    return [slice(s, min(s + CHUNK_STAKERS, block.stop)) for s in starts]


class Decisions:
    def __init__(
        self,
        pop: PopulationConfig,
        blocks: list[tuple[str, slice]],
        consideration: agents.Consideration,
        k: int,
    ) -> None:
        self._pop, self._blocks, self._consider, self._k = pop, blocks, consideration, k
        self._parts = {name: _chunks(block) for name, block in blocks}
        self.wish = np.empty((k, pop.households), dtype=np.intp)
        width = consideration.value.shape[0]
        self._weights = np.empty((width, min(CHUNK_STAKERS, pop.households)), dtype=np.float32)
        self.herd_target: np.ndarray | None = None  # k businesses with most stake last round
        self._loyal_pending = True  # some loyal staker has never bonded yet

    def follow(self, selected_idx: np.ndarray) -> None:
        """Remember the active set for the herders (only once it has k businesses)."""
        if selected_idx.size >= self._k:
            self.herd_target = selected_idx[: self._k].astype(np.intp)

    def decide(self, bonds: Bonds, rng: np.random.Generator) -> np.ndarray:
        """Every staker's wish for this round (a buffer overwritten by the next call)."""
        pop, k, consider, wish = self._pop, self._k, self._consider, self.wish
        for name, block in self._blocks:
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
            if name == "softmax" and k == 1:
                self._softmax_one(block, rng)
                continue
            for part in self._parts[name]:
                values = consider.values(part)
                if name == "softmax":
                    rows = agents.softmax(values, k, pop.temperature, rng)
                elif name == "epsilon_greedy":
                    rows = agents.epsilon_greedy(values, k, pop.epsilon, rng)
                elif name == "random":
                    rows = agents.random_rows(values.shape[0], values.shape[1], k, rng)
                else:  # greedy, and herding before any stake exists
                    rows = agents.greedy(values, k)
                wish[:, part] = consider.to_business(part, rows)
        return wish

    def _softmax_one(self, block: slice, rng: np.random.Generator) -> None:
        """Logit choice of one business per staker: one uniform each, drawn for the block."""
        uniform = rng.random(block.stop - block.start, dtype=np.float32)
        consider, temperature = self._consider, self._pop.temperature
        for part in self._parts["softmax"]:
            weights = self._weights[:, : part.stop - part.start]
            agents.logit_weights(consider.values(part), temperature, out=weights)
            u = uniform[part.start - block.start : part.stop - block.start]
            rows = agents.draw_rows(agents.cumulative_rows(weights), u)
            self.wish[0, part] = consider.to_business(part, rows[None, :])[0]
