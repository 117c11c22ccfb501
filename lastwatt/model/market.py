"""The market: MODEL.md steps 3-7 composed into the two calls the engine makes each round.

``plan`` runs the stakers' decisions, the selection of the active set and the allocation;
``settle`` takes the *metered* energy, draws performance, pays rewards, slashes, updates the
public beliefs and computes the oracle, the baselines and the round metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lastwatt.config import Config
from lastwatt.errors import ConfigError, InputError
from lastwatt.model import agents
from lastwatt.model.allocation import water_fill
from lastwatt.model.baselines import equal_allocation, proportional_allocation, random_allocation
from lastwatt.model.beliefs import PublicBeliefs
from lastwatt.model.decisions import Decisions
from lastwatt.model.metrics import BlockSums, gini, turnover
from lastwatt.model.oracle import oracle_allocation
from lastwatt.model.performance import community_result, draw_performance
from lastwatt.model.selection import select_active_set
from lastwatt.model.settlement import Inflation, settle_businesses
from lastwatt.model.stakes import Bonds, bonded_stake_per_business, gains_and_losses
from lastwatt.rng import Streams


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
    cap_wh: np.ndarray  # (N,) max_power_w * round_s / 3600 (read-only)
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


@dataclass(frozen=True, slots=True)
class _Holdings:
    """Metrics of the token holdings; they change only in settled rounds, so they are cached."""

    supply_tokens: float
    gini: float
    per_policy_tokens: np.ndarray


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
        blocks = [b for _, b in self._blocks]
        self._block_sums = BlockSums(blocks)
        self._stakers_per_policy = np.array([b.stop - b.start for b in blocks], dtype=float)
        self._beliefs = PublicBeliefs(self.quality, pop.learning_rate)
        self._consideration = agents.Consideration(
            pop.households,
            biz.count,
            pop.consideration_set,
            pop.rating_noise_sd,
            streams.market,
            self._beliefs,
        )
        self._decisions = Decisions(pop, self._blocks, self._consideration, self._k)
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
        self._last_result = np.zeros(biz.count)  # published R of the last settled round
        self._previous_selected: list[int] | None = None
        self._plan: Plan | None = None
        # per-round buffers and caches: plan() fills them, the following settle() reads them
        self._abstain = np.zeros(pop.households, dtype=bool)
        self._staker_stake = np.zeros(pop.households)  # 0 for abstaining / unbonding stakers
        self._sort_work = np.empty(pop.households)
        self._holdings: _Holdings | None = None
        self._cap_wh = np.zeros(biz.count)
        self._cap_round_s = math.nan

    def _caps(self, round_s: float) -> np.ndarray:
        if round_s != self._cap_round_s:  # the engine's round length never changes: compute once
            self._cap_wh = self.max_power_w * (round_s / 3600.0)
            self._cap_wh.flags.writeable = False
            self._cap_round_s = round_s
        return self._cap_wh

    def _holding_metrics(self) -> _Holdings:
        if self._holdings is None:
            self._holdings = _Holdings(
                float(self._wealth.sum()),
                gini(self._wealth, self._sort_work),
                self._block_sums(self._wealth),
            )
        return self._holdings

    # ---- steps 3-5 -----------------------------------------------------------------------
    def plan(
        self,
        round_index: int,
        business_pool_wh: float,
        round_s: float,
        available: np.ndarray | None = None,
    ) -> Plan:
        n, n_stakers = self.n_businesses, self.n_stakers
        try:
            pool_wh = float(business_pool_wh)
        except (TypeError, ValueError):
            pool_wh = math.nan
        if not math.isfinite(pool_wh) or pool_wh < 0:
            raise InputError("business_pool_wh", f"must be finite and >= 0, got {business_pool_wh}")
        avail = np.ones(n, dtype=bool) if available is None else np.asarray(available, dtype=bool)
        if avail.shape != (n,):
            raise InputError("available", f"needs shape ({n},), got {avail.shape}")
        rng, bonds = self._streams.market, self._bonds
        p_abstain = self._pop.abstain_probability
        abstain = self._abstain
        if p_abstain > 0:
            abstain = np.less(rng.random(n_stakers, dtype=np.float32), p_abstain, out=abstain)
        if self._mech.unbonding_rounds > 0:
            idle = bonds.idle()
            abstain &= ~idle  # an unbonding stake is idle, not abstaining
            deciding = ~(abstain | idle)
        else:
            deciding = ~abstain
        wish = self._decisions.decide(bonds, rng)
        bonded = bonds.apply(wish, deciding, self._mech.unbonding_rounds)
        staker_stake = np.multiply(self._wealth, bonded, out=self._staker_stake)
        stake = bonded_stake_per_business(bonds.choice, staker_stake, n)

        selected_idx = select_active_set(
            stake, self._biz.active_set, rng, None if available is None or avail.all() else avail
        )
        self._decisions.follow(selected_idx)
        selected = np.zeros(n, dtype=bool)
        selected[selected_idx] = True
        cap_wh = self._caps(round_s)
        planned_wh = np.zeros(n)
        unplaced_wh = pool_wh
        if pool_wh > 0 and selected_idx.size:  # water-fill the selected only, in index order
            idx = np.sort(selected_idx)
            planned_wh[idx], unplaced_wh = water_fill(pool_wh, stake[idx], cap_wh[idx])
        self._plan = Plan(
            round_index=round_index,
            stake_tokens=stake,
            selected=selected,
            selected_idx=selected_idx.tolist(),
            planned_wh=planned_wh,
            unplaced_wh=unplaced_wh,
            participation=np.count_nonzero(bonded) / n_stakers,
            business_pool_wh=pool_wh,
            cap_wh=cap_wh,
            available=avail,
        )
        return self._plan

    # ---- steps 6-7 ---------------------------------------------------------------------
    def settle(self, plan: Plan, metered_wh: np.ndarray) -> Outcome:
        if plan is not self._plan:
            raise RuntimeError("settle() needs the plan returned by the latest plan() call")
        n = self.n_businesses
        metered = np.asarray(metered_wh, dtype=float)
        if metered.shape != (n,) or not metered.max() < np.inf:  # NaN fails the test too
            raise InputError("metered_wh", f"needs {n} finite values")
        if not metered.min() >= 0:
            if not np.isfinite(metered).all():
                raise InputError("metered_wh", f"needs {n} finite values")
            raise InputError("metered_wh", "metered energy cannot be negative")
        self._plan = None
        mech, streams, biz_cfg = self._mech, self._streams, self._biz
        abstain, staker_stake = self._abstain, self._staker_stake
        block_sums = self._block_sums

        performance = draw_performance(self.quality, biz_cfg.performance_sd, streams.performance)
        result = community_result(metered, performance)
        pool = plan.business_pool_wh
        settled = pool > 0
        supply_before = self._holding_metrics().supply_tokens
        minted = self._inflation.mint(supply_before) if self._inflation and settled else 0.0
        biz = settle_businesses(
            result,
            plan.stake_tokens,
            plan.selected,
            plan.available,
            settled=settled,
            revenue_per_result=biz_cfg.revenue_per_result,
            reward_share=mech.reward_share,
            slash_fraction=mech.slash_fraction,
            slash_unselected=mech.slash_unselected,
            slash_unavailable=mech.slash_unavailable,
            minted_tokens=minted,
        )
        if settled:
            gain, loss = gains_and_losses(
                biz.credit_per_token, biz.slash_per_token, self._bonds.choice, staker_stake
            )
            self._wealth += gain - loss
            self._rewards += gain
            self._slashed += loss
            self._holdings = None
            policy_gain, policy_loss = block_sums(gain), block_sums(loss)
        else:
            policy_gain = policy_loss = np.zeros(len(self._blocks))
        self._abstained += abstain

        cap_wh, avail = plan.cap_wh, plan.available
        active = biz_cfg.active_set if mech.oracle_respects_active_set else None
        oracle_wh = oracle_allocation(pool, cap_wh, performance, avail, active)
        equal_wh = equal_allocation(pool, cap_wh, avail)
        random_wh = random_allocation(pool, cap_wh, biz_cfg.active_set, streams.baselines, avail)
        proportional_wh = proportional_allocation(pool, cap_wh, self._last_result, avail)

        if settled:  # publish: beliefs and the proportional baseline learn from this round
            observed = np.flatnonzero(plan.selected & (metered > 0))
            self._beliefs.observe(observed, performance[observed])
            self._consideration.refresh(self._beliefs, observed)
            self._last_result = result
            if self._inflation:
                self._inflation.steer(float(plan.stake_tokens.sum()), supply_before)

        holdings = self._holding_metrics()
        total = float(result.sum())
        oracle = float(oracle_wh @ performance)
        slashed = float(policy_loss.sum())
        scalars = {
            "total_result": total,
            "oracle_result": oracle,
            "equal_result": float(equal_wh @ performance),
            "random_result": float(random_wh @ performance),
            "proportional_result": float(proportional_wh @ performance),
            "efficiency": total / oracle if oracle > 0 else math.nan,
            "participation": plan.participation,
            "token_supply": holdings.supply_tokens,
            "bonded_tokens": float(plan.stake_tokens.sum()),
            "stake_gini": holdings.gini,
            "turnover": turnover(plan.selected_idx, self._previous_selected),
            "rewards_tokens": float(biz.reward_tokens.sum()),
            "slashed_tokens": slashed,
            "minted_tokens": float(biz.minted_tokens.sum()),
        }
        self._previous_selected = plan.selected_idx
        policy = {
            "stakers": self._stakers_per_policy.copy(),
            "wealth_tokens": holdings.per_policy_tokens.copy(),
            "bonded_tokens": block_sums(staker_stake),
            "reward_tokens": policy_gain,
            "slashed_tokens": policy_loss,
            "abstaining": block_sums(abstain),
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
