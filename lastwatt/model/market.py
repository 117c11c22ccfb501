"""The market: MODEL.md steps 3-7 composed into the two calls the engine makes each round.

``plan`` runs the stakers' decisions, the selection of the active set and the allocation;
``settle`` takes the *metered* energy, draws performance, pays rewards, slashes, updates the
public beliefs and computes the oracle, the baselines and the round metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lastwatt.config import Config
from lastwatt.errors import ConfigError, InputError
from lastwatt.model import agents
from lastwatt.model.allocation import water_fill
from lastwatt.model.baselines import equal_allocation, proportional_allocation, random_allocation
from lastwatt.model.beliefs import PublicBeliefs
from lastwatt.model.metrics import block_sums, gini, turnover
from lastwatt.model.oracle import oracle_allocation
from lastwatt.model.performance import community_result, draw_performance
from lastwatt.model.selection import select_active_set, selected_mask
from lastwatt.model.settlement import Inflation, settle_businesses
from lastwatt.model.stakes import Bonds, bonded_stake_per_business, gains_and_losses
from lastwatt.rng import Streams

CHUNK_STAKERS = 32_768  # decide in cache-sized pieces: the (c, chunk) temporaries stay in L2


def _chunks(block: slice) -> list[slice]:
    starts = range(block.start, block.stop, CHUNK_STAKERS)
    return [slice(s, min(s + CHUNK_STAKERS, block.stop)) for s in starts]


@dataclass(slots=True)
class Plan:
    round_index: int
    stake_tokens: np.ndarray  # (N,) bonded this round
    selected: np.ndarray  # (N,) bool
    selected_idx: list[int]  # largest stake first
    planned_wh: np.ndarray  # (N,)
    unplaced_wh: float  # pool the caps could not place: back to the reserve
    participation: float  # share of stakers with bonded stake
    business_pool_wh: float
    cap_wh: np.ndarray  # (N,) max_power_w * round_s / 3600
    available: np.ndarray  # (N,) bool


@dataclass(slots=True)
class Outcome:
    performance: np.ndarray  # (N,) p_i
    result: np.ndarray  # (N,) R_i = metered E_i * p_i
    revenue_tokens: np.ndarray
    reward_tokens: np.ndarray  # revenue share paid to each business's stakers
    slashed_tokens: np.ndarray
    scalars: dict[str, float]
    policy: dict[str, np.ndarray]  # keys lastwatt.result.POLICY_FIELDS, each (P,)


@dataclass(slots=True)
class _StakerRound:
    """Per-staker facts of the planned round that settle needs."""

    abstain: np.ndarray
    stake_tokens: np.ndarray  # (S,) bonded stake, 0 for abstaining / unbonding stakers


class Market:
    def __init__(self, cfg: Config, streams: Streams) -> None:
        pop, biz = cfg.population, cfg.businesses
        self._pop, self._biz, self._mech = pop, biz, cfg.mechanism
        self._streams = streams
        self.n_businesses = biz.count
        self.n_stakers = pop.households
        self._k = pop.max_businesses_per_staker
        if self._k > biz.count:
            raise ConfigError(
                "population.max_businesses_per_staker",
                f"{self._k} exceeds businesses.count={biz.count}",
                "lower it to at most the number of businesses",
            )
        # both drawn even when qualities are given, so max power does not depend on that choice
        quality = streams.businesses.uniform(biz.quality_low, biz.quality_high, biz.count)
        self.max_power_w = streams.businesses.uniform(
            biz.max_power_w_low, biz.max_power_w_high, biz.count
        )
        self.quality = np.array(biz.qualities, dtype=float) if biz.qualities else quality
        width = len(str(biz.count - 1))
        self.business_names = [f"b{i:0{max(width, 2)}d}" for i in range(biz.count)]

        self._blocks = agents.assign_policies(dict(pop.policies), pop.households)
        self.policy_names = [name for name, _ in self._blocks]
        self._beliefs = PublicBeliefs(self.quality, pop.learning_rate)
        self._consideration = agents.Consideration(
            pop.households,
            biz.count,
            pop.consideration_set,
            pop.rating_noise_sd,
            streams.market,
            self._beliefs,
        )
        self._bonds = Bonds.empty(pop.households, self._k)
        self._wealth = np.full(pop.households, pop.tokens_per_household)
        self._rewards = np.zeros(pop.households)
        self._slashed = np.zeros(pop.households)
        self._abstained = np.zeros(pop.households, dtype=np.int64)
        mech = cfg.mechanism
        self._inflation = (
            Inflation(mech.inflation_rate, mech.target_bonding_rate, mech.inflation_change)
            if mech.inflation_rate > 0
            else None
        )
        self._herd_target: np.ndarray | None = None
        self._last_result = np.zeros(biz.count)  # published R of the last settled round
        self._previous_selected: np.ndarray | None = None
        self._plan: Plan | None = None
        self._staker_round: _StakerRound | None = None

    # ---- step 3: decisions -------------------------------------------------------------
    def _decide(self) -> np.ndarray:
        """Every staker's wish for this round, (k, S) business indices."""
        pop, rng, k = self._pop, self._streams.market, self._k
        consider = self._consideration
        wish = np.empty((k, self.n_stakers), dtype=np.intp)
        for name, block in self._blocks:
            if name == "loyal":
                wish[:, block] = self._bonds.choice[:, block]
                first = ~self._bonds.has_choice[block]
                if first.any():  # first decision: greedy on its own beliefs, then never again
                    rows = agents.greedy(consider.values(block), k)
                    np.copyto(wish[:, block], consider.to_business(block, rows), where=first)
                continue
            if name == "herding" and self._herd_target is not None:
                wish[:, block] = self._herd_target[:, None]
                continue
            for part in _chunks(block):
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

    # ---- steps 3-5 -----------------------------------------------------------------------
    def plan(
        self,
        round_index: int,
        business_pool_wh: float,
        round_s: float,
        available: np.ndarray | None = None,
    ) -> Plan:
        n = self.n_businesses
        if not np.isfinite(business_pool_wh) or business_pool_wh < 0:
            raise InputError("business_pool_wh", f"must be finite and >= 0, got {business_pool_wh}")
        avail = np.ones(n, dtype=bool) if available is None else np.asarray(available, dtype=bool)
        if avail.shape != (n,):
            raise InputError("available", f"needs shape ({n},), got {avail.shape}")
        rng = self._streams.market
        idle = self._bonds.idle()
        p_abstain = self._pop.abstain_probability
        abstain = (
            rng.random(self.n_stakers, dtype=np.float32) < p_abstain
            if p_abstain > 0
            else np.zeros(self.n_stakers, dtype=bool)
        )
        abstain &= ~idle  # an unbonding stake is idle, not abstaining
        bonded = self._bonds.apply(self._decide(), ~abstain & ~idle, self._mech.unbonding_rounds)
        staker_stake = np.where(bonded, self._wealth, 0.0)
        stake = bonded_stake_per_business(self._bonds.choice, staker_stake, n)

        selected_idx = select_active_set(stake, self._biz.active_set, rng, avail)
        selected = selected_mask(selected_idx, n)
        cap_wh = self.max_power_w * (round_s / 3600.0)
        planned_wh, unplaced_wh = water_fill(
            float(business_pool_wh), np.where(selected, stake, 0.0), cap_wh
        )
        if selected_idx.size >= self._k:
            self._herd_target = selected_idx[: self._k].astype(np.intp)
        self._staker_round = _StakerRound(abstain=abstain, stake_tokens=staker_stake)
        self._plan = Plan(
            round_index=round_index,
            stake_tokens=stake,
            selected=selected,
            selected_idx=selected_idx.tolist(),
            planned_wh=planned_wh,
            unplaced_wh=unplaced_wh,
            participation=float(bonded.mean()),
            business_pool_wh=float(business_pool_wh),
            cap_wh=cap_wh,
            available=avail,
        )
        return self._plan

    # ---- steps 6-7 ---------------------------------------------------------------------
    def settle(self, plan: Plan, metered_wh: np.ndarray) -> Outcome:
        if plan is not self._plan or self._staker_round is None:
            raise RuntimeError("settle() needs the plan returned by the latest plan() call")
        metered = np.asarray(metered_wh, dtype=float)
        if metered.shape != (self.n_businesses,) or not np.all(np.isfinite(metered)):
            raise InputError("metered_wh", f"needs {self.n_businesses} finite values")
        if np.any(metered < 0):
            raise InputError("metered_wh", "metered energy cannot be negative")
        staker = self._staker_round
        self._plan = self._staker_round = None
        mech, streams = self._mech, self._streams

        performance = draw_performance(self.quality, self._biz.performance_sd, streams.performance)
        result = community_result(metered, performance)
        pool = plan.business_pool_wh
        settled = pool > 0
        supply_before = float(self._wealth.sum())
        minted = self._inflation.mint(supply_before) if self._inflation and settled else 0.0
        biz = settle_businesses(
            result,
            plan.stake_tokens,
            plan.selected,
            plan.available,
            settled=settled,
            revenue_per_result=self._biz.revenue_per_result,
            reward_share=mech.reward_share,
            slash_fraction=mech.slash_fraction,
            slash_unselected=mech.slash_unselected,
            slash_unavailable=mech.slash_unavailable,
            minted_tokens=minted,
        )
        if settled:
            gain, loss = gains_and_losses(
                biz.credit_per_token, biz.slash_per_token, self._bonds.choice, staker.stake_tokens
            )
            self._wealth += gain - loss
            self._rewards += gain
            self._slashed += loss
            policy_gain = block_sums(gain, [b for _, b in self._blocks])
            policy_loss = block_sums(loss, [b for _, b in self._blocks])
        else:
            policy_gain = policy_loss = np.zeros(len(self._blocks))
        self._abstained += staker.abstain

        cap_wh, avail = plan.cap_wh, plan.available
        active = self._biz.active_set if mech.oracle_respects_active_set else None
        oracle_wh = oracle_allocation(pool, cap_wh, performance, avail, active)
        equal_wh = equal_allocation(pool, cap_wh, avail)
        random_wh = random_allocation(pool, cap_wh, self._biz.active_set, streams.baselines, avail)
        proportional_wh = proportional_allocation(pool, cap_wh, self._last_result, avail)

        if settled:  # publish: beliefs and the proportional baseline learn from this round
            observed = np.flatnonzero(plan.selected & (metered > 0))
            self._beliefs.observe(observed, performance[observed])
            self._consideration.refresh(self._beliefs, observed)
            self._last_result = result
            if self._inflation:
                self._inflation.steer(float(plan.stake_tokens.sum()), supply_before)

        total = float(result.sum())
        oracle = float(oracle_wh @ performance)
        scalars = {
            "total_result": total,
            "oracle_result": oracle,
            "equal_result": float(equal_wh @ performance),
            "random_result": float(random_wh @ performance),
            "proportional_result": float(proportional_wh @ performance),
            "efficiency": total / oracle if oracle > 0 else float("nan"),
            "participation": plan.participation,
            "token_supply": float(self._wealth.sum()),
            "bonded_tokens": float(plan.stake_tokens.sum()),
            "stake_gini": gini(self._wealth),
            "turnover": turnover(np.array(plan.selected_idx), self._previous_selected),
            "rewards_tokens": float(biz.reward_tokens.sum()),
            "slashed_tokens": float(policy_loss.sum()),
            "minted_tokens": float(biz.minted_tokens.sum()),
        }
        self._previous_selected = np.array(plan.selected_idx)
        blocks = [b for _, b in self._blocks]
        policy = {
            "stakers": np.array([b.stop - b.start for b in blocks], dtype=float),
            "wealth_tokens": block_sums(self._wealth, blocks),
            "bonded_tokens": block_sums(staker.stake_tokens, blocks),
            "reward_tokens": policy_gain,
            "slashed_tokens": policy_loss,
            "abstaining": block_sums(staker.abstain, blocks),
        }
        return Outcome(
            performance=performance,
            result=result,
            revenue_tokens=biz.revenue_tokens,
            reward_tokens=biz.reward_tokens,
            slashed_tokens=biz.slash_per_token * plan.stake_tokens,
            scalars=scalars,
            policy=policy,
        )

    def stakers_table(self) -> pd.DataFrame:
        """Final per-staker table, columns ``lastwatt.result.STAKER_FIELDS``."""
        codes = np.repeat(np.arange(len(self._blocks)), [b.stop - b.start for _, b in self._blocks])
        return pd.DataFrame(
            {
                "policy": pd.Categorical.from_codes(codes, categories=self.policy_names),
                "stake_tokens": self._wealth.copy(),
                "rewards_tokens": self._rewards.copy(),
                "slashed_tokens": self._slashed.copy(),
                "rounds_abstained": self._abstained.copy(),
                "business": np.where(self._bonds.has_choice, self._bonds.choice[0], -1),
            }
        )
