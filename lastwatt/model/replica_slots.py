"""Stakers splitting their stake over k > 1 businesses, on the replica axis (docs/replicas.md):
``population.max_businesses_per_staker`` with every policy that allows it (softmax, herding,
loyal, greedy, random, epsilon_greedy; the learners bond one business by config).

The slots are ``(R, k, S)`` (``Bonds.choice`` with a replica axis); ``ReplicaState.choice``
keeps slot 0, what the stakers table reports. Step 3 is ``Market._decide_and_bond`` with
``Decisions.decide``'s k-slot paths: each deciding replica first makes its single run's
market-stream calls in order (abstention, then per block and chunk the ``agents.sample``
uniforms, k calls each, and the epsilon explorers' after their own uniforms), then the choices
are vectorised: ``agents.sample``'s draws without replacement (float32 running sums down the
candidates, as ``cumulative_rows``), ``agents.greedy``'s ``argpartition`` (per lane, the same
selection on the same values). Stake per business and the ledger follow ``stakes.py``'s k > 1
formulas: ``bincount`` of the tiled ``stake / k`` slot by slot, and gains and losses summed
over the slots in slot order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lastwatt.model.replica_candidates import to_business
from lastwatt.model.replica_policies import chunks
from lastwatt.model.replica_sampling import greedy_rows, sample_rows

if TYPE_CHECKING:
    from lastwatt.model.replica_state import ReplicaState

SAMPLED = ("softmax", "random")  # agents.sample over every candidate, k draws per chunk


class ReplicaSlots:
    """The k-slot bonds of every replica and step 3 for them."""

    def __init__(self, st: ReplicaState, k: int) -> None:
        r, s = st.wealth.shape
        self.k = k
        self.choice = np.zeros((r, k, s), dtype=np.intp)
        self.herd_target = np.zeros((r, k), dtype=np.intp)
        self.has_herd = np.zeros(r, dtype=bool)  # Decisions.herd_target is not None
        self.uniform = np.zeros((r, k, s), dtype=np.float32)  # sample's draws (per slot)
        self.explore = np.zeros((r, s), dtype=np.float32)  # the epsilon explorers' uniforms
        self.abstain_uniform = np.zeros((r, s), dtype=np.float32)

    @classmethod
    def of(cls, st: ReplicaState) -> ReplicaSlots | None:
        k = st.cfg.population.max_businesses_per_staker
        return cls(st, k) if k > 1 else None

    # ---- draws ---------------------------------------------------------------------------
    def draw(self, st: ReplicaState, deciding: np.ndarray, draws_abstain: bool) -> None:
        """Each deciding replica's market-stream calls, in the single run's order."""
        k, epsilon = self.k, st.cfg.population.epsilon
        for r in np.flatnonzero(deciding).tolist():
            rng = st.streams[r].market
            if draws_abstain:
                rng.random(dtype=np.float32, out=self.abstain_uniform[r])
            for name, block in st.blocks:
                for part in chunks(block):
                    n = part.stop - part.start
                    if name in SAMPLED:  # k calls of n: one call of k x n, slot-major
                        self.uniform[r, :, part] = rng.random((k, n), dtype=np.float32)
                    elif name == "epsilon_greedy":
                        u = rng.random(n, dtype=np.float32)
                        self.explore[r, part] = u
                        who = part.start + np.flatnonzero(u < epsilon)
                        self.uniform[r, :, who] = rng.random((k, who.size),
                                                             dtype=np.float32).T

    # ---- step 3 --------------------------------------------------------------------------
    def decide_and_bond(self, st: ReplicaState, deciding_rows: np.ndarray) -> None:
        """``Market._decide_and_bond`` with k slots for the replicas of ``deciding_rows``."""
        at = np.flatnonzero(deciding_rows)
        s = st.wealth.shape[1]
        draws_abstain = bool(np.max(st.threshold) > 0)
        self.draw(st, deciding_rows, draws_abstain)
        abstain = (self.abstain_uniform[at] < st.threshold if draws_abstain
                   else np.zeros((at.size, s), dtype=bool))
        wish = self._wishes(st, at)
        if st.target.size:  # colluders: every slot on their business
            wish[:, :, st.colluders] = st.target[0]
            abstain[:, st.colluders] = False
        deciding = ~abstain
        self.choice[at] = np.where(deciding[:, None, :], wish, self.choice[at])
        st.choice[at] = self.choice[at, 0]
        st.book_decisions(at, deciding, abstain, deciding)

    def _wishes(self, st: ReplicaState, at: np.ndarray) -> np.ndarray:
        """``Decisions.decide`` with k slots: every staker's businesses (rows, k, S)."""
        wish = self.choice[at].copy()
        values, herd = st.value[at], self.has_herd[at]
        for name, block in st.blocks:
            if name == "herding" and herd.all():  # the last active set's top k businesses
                wish[:, :, block] = self.herd_target[at][:, :, None]
                continue
            rows = self._rows(st, at, name, block, values[:, :, block])
            if rows is None:
                continue
            businesses = self._businesses(st, at, block, rows)
            if name == "herding":  # greedy until the replica has a target
                businesses = np.where(herd[:, None, None], self.herd_target[at][:, :, None],
                                      businesses)
            elif name == "loyal":  # greedy on their first decision, then never again
                first = ~st.has_choice[at][:, block]
                businesses = np.where(first[:, None, :], businesses, wish[:, :, block])
            wish[:, :, block] = businesses
        return wish

    def _rows(self, st: ReplicaState, at: np.ndarray, name: str, block: slice,
              values: np.ndarray) -> np.ndarray | None:
        """The block's candidate rows (rows, k, S_block); None: it keeps its bonds."""
        uniform = self.uniform[at][:, :, block]
        if name == "softmax":  # agents.softmax: logit_weights with the guard, then sample
            weights = values - values.max(axis=1, keepdims=True)
            temperature = st.cfg.population.temperature
            if temperature != 1:
                weights *= np.float32(1.0 / temperature)
            return sample_rows(np.exp(weights, out=weights), uniform)
        if name == "random":
            return sample_rows(np.ones(values.shape, dtype=np.float32), uniform)
        if name == "loyal" and not (~st.has_choice[at][:, block]).any():
            return None
        rows = greedy_rows(values, self.k)  # greedy, loyal, herding before a target
        if name == "epsilon_greedy":
            explorers = self.explore[at][:, block] < st.cfg.population.epsilon
            drawn = sample_rows(np.ones(values.shape, dtype=np.float32), uniform)
            rows = np.where(explorers[:, None, :], drawn, rows)
        return rows

    def _businesses(self, st: ReplicaState, at: np.ndarray, block: slice,
                    rows: np.ndarray) -> np.ndarray:
        """Candidate rows (rows, k, S_block) -> businesses, slot by slot."""
        out = np.empty(rows.shape, dtype=np.intp)
        for slot in range(self.k):
            out[:, slot] = to_business(st.business, at, block, rows[:, slot])
        return out

    # ---- step 4 and 7 --------------------------------------------------------------------
    def follow(self, at: Any, order: np.ndarray, n_selected: np.ndarray) -> None:
        """``Decisions.follow``: the herders' k businesses, once the active set has k."""
        rows = np.arange(len(self.has_herd))[at]
        full = n_selected >= self.k
        self.herd_target[rows[full]] = order[full, : self.k]
        self.has_herd[rows[full]] = True

    def per_business(self, staker_tokens: np.ndarray, at: Any, n: int) -> np.ndarray:
        """``bonded_stake_per_business`` with k slots per row: the tiled ``stake / k`` in slot
        order, one bincount over replica-offset indices."""
        rows, k = staker_tokens.shape[0], self.k
        index = self.choice[at] + (np.arange(rows) * n)[:, None, None]
        weights = np.broadcast_to((staker_tokens / k)[:, None, :], index.shape)
        sums = np.bincount(index.ravel(), weights=weights.ravel(), minlength=rows * n)
        return sums.reshape(rows, n)

    def pay(self, st: ReplicaState, credit: np.ndarray, slash: np.ndarray,
            settled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``Ledger.pay`` with k slots in the settled replicas; per-policy gains and losses."""
        p = len(st.blocks)
        gain_p, loss_p = np.zeros((len(credit), p)), np.zeros((len(credit), p))
        at = np.flatnonzero(settled)
        if at.size == 0:
            return gain_p, loss_p
        choice, share = self.choice[at], st.stake[at] / self.k
        replica = np.arange(at.size)[:, None, None]
        gain = credit[at][replica, choice].sum(axis=1) * share
        loss = slash[at][replica, choice].sum(axis=1) * share
        gain_p[at], loss_p[at] = st.book_payments(at, gain, loss)
        return gain_p, loss_p
