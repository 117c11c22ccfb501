"""The state of a replica batch and its steps 3-4 (docs/replicas.md): each array is the single
run's with a leading replica axis, each step the single run's code path (named) per row."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lastwatt.config import Config
from lastwatt.model import replica_candidates, replica_economics, replica_world
from lastwatt.model.market import Market
from lastwatt.model.replica_draws import ReplicaDraws
from lastwatt.model.replica_policies import POLICIES, ReplicaPolicies
from lastwatt.model.replica_slots import ReplicaSlots
from lastwatt.model.rowwise import BlockSumsRows
from lastwatt.rng import Streams

SOFTMAX_CELLS = 1 << 18  # float32 running sums per pass (1 MiB): they stay in cache


def _rows(mask: np.ndarray) -> Any:
    """An index for the rows of ``mask``: a plain slice when it is every row (no copies)."""
    return slice(None) if mask.all() else np.flatnonzero(mask)


def _stack(markets: list[Market], get: Any) -> np.ndarray:
    return np.stack([np.asarray(get(m)) for m in markets])


@dataclass(eq=False)
class ReplicaState:
    cfg: Config
    streams: list[Streams]
    blocks: list[tuple[str, slice]]
    block_sums: BlockSumsRows
    cap_fns: list[Any]  # each replica's RoundCaps
    quality: np.ndarray  # (R, N) true q_i
    sigma: Any  # scalar or (N,)
    rating: np.ndarray  # (R, N) beliefs' starting rating
    decay: np.ndarray  # (R, N)
    news: np.ndarray  # (R, N)
    observations: np.ndarray  # (R, N)
    noise: np.ndarray  # (R, N, S) float32
    value_bound: np.ndarray  # (R,)
    wealth: np.ndarray  # (R, S) and the other accounts
    threshold: Any  # abstention: scalar float32 or (S,)
    colluders: slice
    target: np.ndarray
    value: np.ndarray = field(init=False)  # (R, N, S) float32: every staker's values
    plan: Any = None
    business: Any = None  # (R, c, S) candidate businesses of a consideration set, else None

    def __post_init__(self) -> None:
        r, s = self.wealth.shape
        n = self.quality.shape[1]
        self.rewards, self.slashed = np.zeros((r, s)), np.zeros((r, s))
        self.abstained = np.zeros((r, s), dtype=np.int32)
        self.stake, self.gain, self.loss = np.zeros((r, s)), np.zeros((r, s)), np.zeros((r, s))
        self.choice = np.zeros((r, s), dtype=np.intp)
        self.has_choice = np.zeros((r, s), dtype=bool)
        self.abstain = np.zeros((r, s), dtype=bool)
        self.bonded = np.zeros((r, s), dtype=bool)
        self.has_bonded = np.zeros(r, dtype=bool)  # Market._bonded is not None
        self.participation = np.zeros(r)
        p = len(self.blocks)
        self.abstaining_per_policy, self.bonded_per_policy = np.zeros((r, p)), np.zeros((r, p))
        self.herd_target = np.full(r, -1, dtype=np.intp)  # -1: none yet
        self.loyal_pending = np.ones(r, dtype=bool)
        self.kept = np.zeros(r, dtype=bool)  # IdleSelection holds a selection
        self.kept_stake, self.kept_order = np.zeros((r, n)), np.zeros((r, n), dtype=np.intp)
        self.kept_n = np.zeros(r, dtype=np.intp)
        self.last_result, self.self_last_result = np.zeros((r, n)), np.zeros((r, n))
        self.ucb_count, self.ucb_mean = np.zeros((r, n), dtype=np.int64), np.zeros((r, n))
        self.ucb_t = np.zeros(r, dtype=np.int64)
        self.previous: np.ndarray | None = None  # (R, N) bool selected of the last round
        self.econ = replica_economics.Economics.of(self.cfg, r, s)
        self.value = np.empty_like(self.noise)
        self.soft_weights: np.ndarray | None = None  # (c, R, S_softmax) logit weights
        self.soft_stale = np.ones((r, self.noise.shape[1]), dtype=bool)  # candidates, stale
        self.draws = ReplicaDraws(self.streams, n)
        self._caps: tuple[float, np.ndarray] = (float("nan"), np.zeros((r, n)))
        self.refresh(np.ones(r, dtype=bool))
        self.policies = ReplicaPolicies.of(self.cfg, self.blocks, r, self.threshold,
                                           self.business, self.noise.shape[1])
        self.slots = ReplicaSlots.of(self)  # k > 1 businesses per staker, else None
        self.presence = replica_world.Presence.of(self)  # closed at round 0: valued absent
        self.policy_codes = np.repeat(np.arange(p), [b.stop - b.start for _, b in self.blocks])

    @classmethod
    def stack(cls, cfg: Config, markets: list[Market]) -> ReplicaState:
        """The batch's state: each replica's freshly built single-run market, stacked."""
        m0 = markets[0]
        return cls(
            cfg, [m._streams for m in markets], m0._blocks,
            BlockSumsRows([b for _, b in m0._blocks]), [m._caps for m in markets],
            _stack(markets, lambda m: m.quality), m0._sigma,
            _stack(markets, lambda m: m._beliefs.quality),
            _stack(markets, lambda m: m._beliefs.decay),
            _stack(markets, lambda m: m._beliefs.news),
            _stack(markets, lambda m: m._beliefs.observations),
            _stack(markets, lambda m: m._consideration.noise),
            _stack(markets, lambda m: m._consideration.value_bound),
            _stack(markets, lambda m: m._ledger.wealth),
            m0._abstain_threshold, m0._adversaries.colluders, m0._adversaries.collusion_target,
            business=replica_candidates.stacked_business(markets),
        )

    def caps(self, round_s: float) -> np.ndarray:
        """Each replica's caps for ``round_s``, stacked once per round length (read-only, as
        RoundCaps's)."""
        if self._caps[0] != round_s:
            caps = np.stack([caps(round_s) for caps in self.cap_fns])
            caps.flags.writeable = False
            self._caps = (round_s, caps)
        return self._caps[1]

    def refresh(self, rows: np.ndarray, changed: np.ndarray | None = None) -> None:
        """``Consideration._refresh_every_business`` for ``rows``: decay * noise + base.
        ``changed`` (R, N): only those businesses' values (the others' inputs are unchanged,
        so the formula would give their values again)."""
        if self.business is not None:  # a consideration set: cells of candidates
            replica_candidates.refresh(self, rows, changed)
            return
        if changed is not None:  # rows of (R * N, S) by flat index: cheaper than the mask
            cells = np.flatnonzero(changed)
            decay = self.decay.ravel()[cells]
            base = decay * self.rating.ravel()[cells] + self.news.ravel()[cells]
            n_stakers = self.value.shape[2]
            value = np.take(self.noise.reshape(-1, n_stakers), cells, axis=0)
            value *= decay.astype(np.float32)[:, None]
            value += base.astype(np.float32)[:, None]
            self.value.reshape(-1, n_stakers)[cells] = value
            self.soft_stale |= changed
            return
        at = _rows(rows)
        base = (self.decay[at] * self.rating[at] + self.news[at]).astype(np.float32)
        value = np.multiply(self.decay[at].astype(np.float32)[:, :, None], self.noise[at])
        value += base[:, :, None]
        self.value[at] = value
        self.soft_stale[at] = True

    # ---- step 3 --------------------------------------------------------------------------
    def decide_and_bond(self, deciding_rows: np.ndarray) -> None:
        """``Market._decide_and_bond`` for the replicas of ``deciding_rows`` (not idle)."""
        if self.slots is not None:  # k > 1 slots per staker
            self.slots.decide_and_bond(self, deciding_rows)
            return
        at = _rows(deciding_rows)
        replica_world.release(self, at)
        s = self.wealth.shape[1]
        soft = dict(self.blocks).get("softmax")
        n_soft = 0 if soft is None else soft.stop - soft.start
        draws_abstain = bool(np.max(self.threshold) > 0)
        width = (s if draws_abstain else 0) + n_soft
        if self.policies is not None:  # other drawing policies: their calls in order
            uniform = self.policies.draw(self.streams, deciding_rows)[at]
        else:  # one call per replica: float32 draws are sequential
            uniform = self.draws.uniforms(np.flatnonzero(deciding_rows), width)[at]
        abstain = self.abstain[at]
        abstain[:] = uniform[:, :s] < self.threshold if draws_abstain else False
        wish = self._wishes(at, uniform[:, width - n_soft:])
        if self.policies is not None:  # every bond looks like a loss: stay out
            self.policies.abstain(at, abstain)
        if self.target.size:  # colluders: always bonded to their business
            wish[:, self.colluders] = self.target[0]
            abstain[:, self.colluders] = False
        replica_world.commit(self, wish, abstain)  # the Sybil; closed businesses: sit out
        deciding, bonded = replica_economics.bond(self, at, wish, abstain)
        self.choice[at] = np.where(deciding, wish, self.choice[at])
        self.book_decisions(at, deciding, abstain, bonded)

    def book_decisions(self, at: Any, deciding: np.ndarray, abstain: np.ndarray,
                       bonded: np.ndarray) -> None:
        """Step 3's bookkeeping for rows ``at`` (k = 1 and the k-slot path alike)."""
        self.has_choice[at] |= deciding
        self.abstain[at], self.bonded[at], self.has_bonded[at] = abstain, bonded, True
        self.participation[at] = np.count_nonzero(bonded, axis=1) / self.wealth.shape[1]
        self.abstaining_per_policy[at] = self.block_sums(abstain)

    def book_payments(self, at: Any, gain: np.ndarray,
                      loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``Ledger.pay``'s bookkeeping for rows ``at``: per-staker gains and losses into
        wealth, rewards and slashes (in the single run's order); per-policy sums."""
        self.wealth[at] += gain
        self.wealth[at] -= loss
        self.rewards[at] += gain
        self.slashed[at] += loss
        return self.block_sums(gain), self.block_sums(loss)

    def _wishes(self, at: Any, soft_uniform: np.ndarray) -> np.ndarray:
        """``Decisions.decide`` with k = 1: every staker's business, (rows, S)."""
        wish = self.choice[at].copy()
        values = self.value[at]
        for name, block in self.blocks:
            if name == "softmax":
                wish[:, block] = self._to_business(at, block,
                                                   self._softmax(at, block, soft_uniform))
            elif name == "herding":  # the last active set's top business, once there is one
                target = self.herd_target[at]
                wish[:, block] = target[:, None]
                lost = np.flatnonzero(target < 0)
                if lost.size:
                    wish[lost, block] = self._to_business(
                        np.arange(len(self.streams))[at][lost], block,
                        values[lost][:, :, block].argmax(axis=1))
            elif name == "greedy":
                wish[:, block] = self._to_business(at, block, values[:, :, block].argmax(axis=1))
            elif name in POLICIES and self.policies is not None:
                wish[:, block] = self._to_business(at, block,
                                                   self.policies.wish(at, name, block, values))
            elif name == "loyal":  # greedy on their first decision, then never again
                first = ~self.has_choice[at][:, block] & self.loyal_pending[at][:, None]
                self.loyal_pending[at] = self.loyal_pending[at] & first.any(axis=1)
                rows = np.flatnonzero(first.any(axis=1))
                if rows.size:
                    greedy = self._to_business(np.arange(len(self.streams))[at][rows], block,
                                               values[rows][:, :, block].argmax(axis=1))
                    wish[rows, block] = np.where(first[rows], greedy, wish[rows, block])
        return wish

    def _to_business(self, at: Any, block: slice, rows: np.ndarray) -> np.ndarray:
        """Candidate ``rows`` (n, S_block) of the replicas ``at`` -> businesses."""
        return replica_candidates.to_business(self.business, at, block, rows)

    def _softmax(self, at: Any, block: slice, uniform: np.ndarray) -> np.ndarray:
        """``agents.logit_weights`` + ``cumulative_rows`` + ``draw_rows`` per replica. The
        logit weights are kept between rounds, candidates first ``(N, R, S_softmax)`` (each
        running-sum step is then one pass over every replica's stakers), and recomputed only
        for businesses whose values changed (the same bits: the same formula on the same
        values)."""
        temperature = self.cfg.population.temperature
        if np.any(self.value_bound / temperature > 60):  # the guard: a max over candidates
            weights = self._logit(self.value[at][:, :, block], self.value_bound[at])
            return _draw_rows(weights.transpose(1, 0, 2), uniform)
        if self.soft_weights is None:
            rows, width = self.soft_stale.shape
            self.soft_weights = np.empty((width, rows, block.stop - block.start), np.float32)
        stale = np.zeros_like(self.soft_stale)  # of the deciding replicas only
        stale[at] = self.soft_stale[at]
        cells = np.flatnonzero(stale)  # rows of the flat (R * N, S) values
        r, n = np.divmod(cells, stale.shape[1])
        values = self.value.reshape(-1, self.value.shape[2])[cells, block]
        weights = self.soft_weights.reshape(-1, self.soft_weights.shape[2])
        weights[n * stale.shape[0] + r] = self._logit(values[:, None], self.value_bound[r])[:, 0]
        self.soft_stale[r, n] = False
        return _draw_rows(self.soft_weights[:, at], uniform)

    def _logit(self, values: np.ndarray, bound: np.ndarray) -> np.ndarray:
        """``agents.logit_weights`` per replica (rows, c, S): the max-subtracting guard only
        in replicas whose ``value_bound`` needs it, as there."""
        temperature = self.cfg.population.temperature
        guard = bound / temperature > 60
        if temperature == 1 and not guard.any():
            return np.exp(values)  # = copy, then exp in place: the same bits
        weights = np.array(values, dtype=np.float32)
        if guard.any():
            weights[guard] -= weights[guard].max(axis=1, keepdims=True)
        if temperature != 1:
            weights *= np.float32(1.0 / temperature)
        return np.exp(weights, out=weights)

    # ---- step 4 --------------------------------------------------------------------------
    def stake_and_select(self, idle: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``Market._stake_and_select``: stake (R, N), order (R, N), selected count (R,).
        An idle replica with a kept selection reuses it and draws nothing (IdleSelection)."""
        reuse = idle & self.kept
        fresh = ~reuse
        stake, order = self.kept_stake.copy(), self.kept_order.copy()
        n_selected = self.kept_n.copy()
        if fresh.any():
            at = _rows(fresh)
            staker_stake = np.multiply(self.wealth[at], self.bonded[at])
            self.stake[at] = staker_stake
            stake[at] = self._per_business(staker_stake, at)
            self.bonded_per_policy[at] = self.block_sums(staker_stake)
            weight = stake[at]
            if self.cfg.mechanism.stake_weighting == "quadratic":
                weight = self._per_business(np.sqrt(staker_stake), at)
            elif self.cfg.mechanism.stake_weighting == "conviction":
                votes = replica_economics.conviction_votes(self, at, staker_stake, idle[at])
                weight = self._per_business(votes, at)
            weight = replica_world.open_only(self, weight)
            order[at], n_selected[at] = self._select(weight, np.flatnonzero(fresh))
            has = n_selected[at] >= 1
            self.herd_target[at] = np.where(has, order[at][:, 0], self.herd_target[at])
            if self.slots is not None:
                self.slots.follow(at, order[at], n_selected[at])
            keep = idle[at]
            self.kept[at] = keep
            self.kept_stake[at], self.kept_order[at] = stake[at], order[at]
            self.kept_n[at] = n_selected[at]
        return stake, order, n_selected

    def _per_business(self, staker_tokens: np.ndarray, at: Any) -> np.ndarray:
        """``bonded_stake_per_business`` per row: one bincount over replica-offset indices
        (each bin adds its stakers in staker order, as the 1-D bincount)."""
        rows, n = staker_tokens.shape[0], self.quality.shape[1]
        if self.slots is not None:
            return self.slots.per_business(staker_tokens, at, n)
        index = self.choice[at] + (np.arange(rows) * n)[:, None]
        sums = np.bincount(index.ravel(), weights=staker_tokens.ravel(), minlength=rows * n)
        return sums.reshape(rows, n)

    def _select(self, weight: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``select_active_set`` per row: each replica's permutation from its market stream,
        then a stable sort by weight of the eligible ones (ineligible sorted last)."""
        every = len(rows) == len(self.streams)
        perm = self.draws.permutations("market", None if every else rows)
        w = np.take_along_axis(weight, perm, axis=1)
        eligible = w > 0
        rank = np.argsort(np.where(eligible, -w, np.inf), axis=1, kind="stable")
        order = np.take_along_axis(perm, rank, axis=1)
        n_selected = np.minimum(eligible.sum(axis=1), self.cfg.businesses.active_set)
        return order, n_selected


def _draw_rows(weights: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """``agents.cumulative_rows`` + ``draw_rows`` per replica: ``weights`` (c, rows, S),
    ``uniform`` (rows, S). A few replicas at a time, so that the running sums stay in cache."""
    c, n_rows, n_stakers = weights.shape
    rows = np.empty((n_rows, n_stakers), dtype=np.intp)
    step = max(1, SOFTMAX_CELLS // max(1, c * n_stakers))
    buffer = np.empty((c, min(step, n_rows), n_stakers), dtype=np.float32)
    for start in range(0, n_rows, step):
        part = slice(start, min(start + step, n_rows))
        cumulative, w = buffer[:, : part.stop - start], weights[:, part]
        np.copyto(cumulative[0], w[0])
        for j in range(1, c):  # running sums down the candidates, in order
            np.add(cumulative[j - 1], w[j], out=cumulative[j])
        below = cumulative[:-1] <= uniform[part] * cumulative[-1]
        if c <= 128:  # count in int8, as the 1-D draw_rows
            rows[part] = below.view(np.int8).sum(axis=0, dtype=np.int8)
        else:
            rows[part] = below.sum(axis=0)
    return rows
