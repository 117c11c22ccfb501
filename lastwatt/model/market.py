"""The market: MODEL.md steps 3-7 composed into the two calls the engine makes each round.

``plan`` runs the stakers' decisions, the selection of the active set and the allocation;
``settle`` takes the *metered* energy, draws performance, pays rewards, slashes, updates the
public beliefs and computes the oracle, the baselines and the round metrics. A round without a
business pool is *idle*: nothing is at stake, so nobody decides and the last round's bonds
stand; performance and baseline draws happen every round all the same (docs/model.md).
"""

from __future__ import annotations

import math
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from lastwatt.config import Config
from lastwatt.errors import ConfigError, InputError
from lastwatt.model import agents, parallel
from lastwatt.model.allocation import pour_surplus, water_fill
from lastwatt.model.bandit import UcbAllocator
from lastwatt.model.baselines import equal_allocation, last_output_allocation, random_allocation
from lastwatt.model.beliefs import PublicBeliefs
from lastwatt.model.decisions import Decisions
from lastwatt.model.metrics import BlockSums, gini, turnover
from lastwatt.model.oracle import oracle_allocation
from lastwatt.model.performance import community_result, draw_performance
from lastwatt.model.selection import select_active_set
from lastwatt.model.settlement import BusinessSettlement, Inflation, settle_businesses
from lastwatt.model.stakes import Bonds, bonded_stake_per_business, gains_and_losses
from lastwatt.model.world import (
    apply_jumps,
    capture,
    drift_quality,
    endowment_tokens,
    shared_rating_error,
)
from lastwatt.rng import Streams

CACHED_POLICIES = ("softmax", "greedy", "epsilon_greedy")  # read their beliefs every round
BASELINES = (
    "oracle_result", "quality_oracle_result", "equal_result", "random_result",
    "reweighted_selection_result", "self_proportional_result", "ucb_result",
)
# what a round without a business pool reports: nothing allocated, paid, burned or minted
IDLE_FIGURES = dict.fromkeys((*BASELINES, "rewards_tokens", "slashed_tokens", "minted_tokens"), 0.0)


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

        # a large population splits its per-staker work over two threads (same results)
        self._threads = parallel.threaded(pop.households)
        self._blocks = agents.assign_policies(dict(pop.policies), pop.households)
        self.policy_names = [name for name, _ in self._blocks]
        blocks = [b for _, b in self._blocks]
        self._block_sums = BlockSums(blocks)
        self._stakers_per_policy = np.array([b.stop - b.start for b in blocks], dtype=float)
        world = cfg.world
        self._world = world
        self._jumps = [(j.round, j.business, j.quality) for j in world.jumps]
        sd = world.performance_sd_by_business
        self._sigma = biz.performance_sd if sd is None else np.array(sd, dtype=float)
        # a rating error every staker shares (correlated errors), then the endowments
        rating = shared_rating_error(self.quality, world.rating_shared_sd, streams.world)
        self._beliefs = PublicBeliefs(rating, pop.learning_rate)
        self._consideration = agents.Consideration(
            pop.households,
            biz.count,
            pop.consideration_set,
            pop.rating_noise_sd,
            streams.market,
            self._beliefs,
            cached=[b for name, b in self._blocks if name in CACHED_POLICIES],
            threads=self._threads,
        )
        self._decisions = Decisions(pop, self._blocks, self._consideration, self._k, self._threads)
        self._bonds = Bonds.empty(pop.households, self._k)
        self._wealth = endowment_tokens(world.endowment, pop.households,
                                        pop.tokens_per_household, world.pareto_shape,
                                        streams.world)
        collusion = cfg.adversaries.collusion
        n_colluders = round(collusion.share * pop.households)
        # the last stakers collude: they bond one business whatever their policy says
        self._colluders = slice(pop.households - n_colluders, pop.households)
        self._collusion_target = np.array([collusion.business] if n_colluders else [], int)
        self._rewards = np.zeros(pop.households)
        self._slashed = np.zeros(pop.households)
        self._gain = np.empty(pop.households)  # of the last settled round
        self._loss = np.empty(pop.households)
        self._abstained = np.zeros(pop.households, dtype=np.int32)  # half the traffic of int64
        mech = cfg.mechanism
        self._terms = {  # of every settlement
            "revenue_per_result": biz.revenue_per_result,
            "reward_share": mech.reward_share,
            "slash_fraction": mech.slash_fraction,
            "slash_unselected": mech.slash_unselected,
            "slash_unavailable": mech.slash_unavailable,
        }
        self._inflation = (
            Inflation(mech.inflation_rate, mech.target_bonding_rate, mech.inflation_change)
            if mech.inflation_rate > 0
            else None
        )
        self._last_result = np.zeros(biz.count)  # published R of the last settled round
        self._self_last_result = np.zeros(biz.count)  # self_proportional's own last R
        self._ucb = UcbAllocator(biz.count, biz.active_set, float(np.max(self._sigma)))
        self._previous_selected: list[int] | None = None
        self._plan: Plan | None = None
        # per-round buffers and caches: plan() fills them, the following settle() reads them
        self._abstain = self._no_abstain = np.zeros(pop.households, dtype=bool)  # never written
        self._abstain_buffer = np.zeros(pop.households, dtype=bool)
        by_policy: dict[str, float] = dict(pop.abstain_by_policy)
        self._abstain_threshold = self._stakers_per_policy_values(
            [by_policy.get(name, pop.abstain_probability) for name in self.policy_names]
        )
        self._staker_stake = np.zeros(pop.households)  # 0 for abstaining / unbonding stakers
        self._sort_work = np.empty(pop.households)
        self._holdings: _Holdings | Future[_Holdings] | None = None  # a Future: being measured
        self._bonded: np.ndarray | None = None  # (S,) bool, of the last round that bonded
        self._participation = 0.0
        self._bonded_per_policy = self._abstaining_per_policy = np.zeros(len(blocks))
        # stake and selection of an idle round, reused by the next idle rounds until it changes
        self._idle_selection: tuple[np.ndarray, np.ndarray, bytes] | None = None
        self._cap_wh = np.zeros(biz.count)
        self._cap_round_s = math.nan

    def _stakers_per_policy_values(self, values: list[float]) -> np.ndarray | np.floating:
        """One value per policy -> (S,) per staker; a scalar when all policies agree."""
        if len(set(values)) <= 1:
            return np.float32(values[0] if values else 0.0)
        counts = [b.stop - b.start for _, b in self._blocks]
        return np.repeat(np.array(values, dtype=np.float32), counts)

    def _caps(self, round_s: float) -> np.ndarray:
        if round_s != self._cap_round_s:  # the engine's round length never changes: compute once
            self._cap_wh = self.max_power_w * (round_s / 3600.0)
            self._cap_wh.flags.writeable = False
            self._cap_round_s = round_s
        return self._cap_wh

    def __getstate__(self) -> dict:
        """Pickled into a run's checkpoint: a holdings measurement in flight is finished."""
        state = self.__dict__.copy()
        if isinstance(state["_holdings"], Future):
            state["_holdings"] = parallel.collect(state["_holdings"], self._measure_holdings)
        return state

    def _measure_holdings(self) -> _Holdings:
        supply = float(self._wealth.sum())
        gini_ = gini(self._wealth, self._sort_work, supply)
        return _Holdings(supply, gini_, self._block_sums(self._wealth))

    def _holding_metrics(self) -> _Holdings:
        if self._holdings is None:
            self._holdings = self._measure_holdings()
        elif isinstance(self._holdings, Future):
            self._holdings = parallel.collect(self._holdings, self._measure_holdings)
        return self._holdings

    # ---- steps 3-5 -----------------------------------------------------------------------
    def _decide_and_bond(self, rng: np.random.Generator) -> None:
        """Step 3: who abstains, what everyone else wishes, who ends up bonded."""
        bonds, n_stakers = self._bonds, self.n_stakers
        abstain, threshold = self._no_abstain, self._abstain_threshold
        if np.max(threshold) > 0:
            uniform = rng.random(n_stakers, dtype=np.float32)
            abstain = np.less(uniform, threshold, out=self._abstain_buffer)
        wish = self._decisions.decide(bonds, rng)
        if self._decisions.strategic is not None:  # every bond looks like a loss: stay out
            abstain = abstain | self._decisions.strategic
        if self._collusion_target.size:  # committed: always bonded to their business
            wish[:, self._colluders] = self._collusion_target[0]
            abstain = abstain.copy()
            abstain[self._colluders] = False
        if self._mech.unbonding_rounds > 0:
            unbonding = bonds.idle()
            abstain = abstain & ~unbonding  # an unbonding stake is idle, not abstaining
            deciding = ~(abstain | unbonding)
        else:
            deciding = ~abstain
        self._abstain = abstain
        self._bonded = bonds.apply(wish, deciding, self._mech.unbonding_rounds, self._threads)
        self._participation = np.count_nonzero(self._bonded) / n_stakers
        self._abstaining_per_policy = self._block_sums(abstain)

    def plan(
        self,
        round_index: int,
        business_pool_wh: float,
        round_s: float,
        available: np.ndarray | None = None,
        draw_factor: np.ndarray | None = None,
    ) -> Plan:
        """Steps 3-5. ``draw_factor`` (N,) in [0, 1]: the share of its maximum power each
        business can draw this round (its load profile); it scales the caps, for the
        allocation, the oracle and the baselines alike. None: every business can draw its max.
        """
        n = self.n_businesses
        try:
            pool_wh = float(business_pool_wh)
        except (TypeError, ValueError):
            pool_wh = math.nan
        if not math.isfinite(pool_wh) or pool_wh < 0:
            raise InputError("business_pool_wh", f"must be finite and >= 0, got {business_pool_wh}")
        avail = np.ones(n, dtype=bool) if available is None else np.asarray(available, dtype=bool)
        if avail.shape != (n,):
            raise InputError("available", f"needs shape ({n},), got {avail.shape}")
        rng = self._streams.market
        idle = pool_wh == 0 and self._bonded is not None
        if not idle:
            self._decide_and_bond(rng)
        reuse = self._idle_selection if idle else None
        if reuse is not None and avail.tobytes() == reuse[2]:
            stake, selected_idx = reuse[0].copy(), reuse[1]
        else:
            staker_stake = np.multiply(self._wealth, self._bonded, out=self._staker_stake)
            measure = partial(self._block_sums, staker_stake)  # beside the stake per business
            per_policy = parallel.submit(measure) if self._threads else None
            stake = bonded_stake_per_business(self._bonds.choice, staker_stake, n)
            self._bonded_per_policy = (
                parallel.collect(per_policy, measure) if per_policy else measure()
            )
            some_offline = available is not None and not avail.all()
            weight = stake
            if self._mech.stake_weighting == "quadratic":  # one voice per sqrt(token)
                weight = bonded_stake_per_business(
                    self._bonds.choice, np.sqrt(staker_stake), n
                )
            selected_idx = select_active_set(
                weight, self._biz.active_set, rng, avail if some_offline else None
            )
            self._decisions.follow(selected_idx)
            self._idle_selection = (stake.copy(), selected_idx, avail.tobytes()) if idle else None
        selected = np.zeros(n, dtype=bool)
        selected[selected_idx] = True
        cap_wh = self._caps(round_s)
        if draw_factor is not None:
            cap_wh = cap_wh * np.clip(np.asarray(draw_factor, dtype=float), 0.0, 1.0)
        planned_wh = np.zeros(n)
        unplaced_wh = pool_wh
        if pool_wh > 0 and selected_idx.size:  # water-fill the selected only, in index order
            idx = np.sort(selected_idx)
            surplus = self._mech.surplus
            if surplus == "selected":  # the spec: re-share over every selected business
                planned_wh[idx], unplaced_wh = water_fill(pool_wh, stake[idx], cap_wh[idx])
            else:  # only where published output is positive, or nowhere (back to the reserve)
                eligible = (
                    self._beliefs.published_mean()[idx] > 0 if surplus != "reserve" else None
                )
                planned_wh[idx], unplaced_wh = pour_surplus(
                    pool_wh, stake[idx], cap_wh[idx], eligible
                )
        self._plan = Plan(
            round_index=round_index,
            stake_tokens=stake,
            selected=selected,
            selected_idx=selected_idx.tolist(),
            planned_wh=planned_wh,
            unplaced_wh=unplaced_wh,
            participation=self._participation,
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
        biz_cfg, streams = self._biz, self._streams
        if self._world.quality_drift_sd > 0:  # the world moves (every round: streams align)
            self.quality = drift_quality(self.quality, self._world.quality_drift_sd,
                                         streams.world)
        self.quality = apply_jumps(self.quality, plan.round_index, self._jumps)
        performance = draw_performance(self.quality, self._sigma, streams.performance)
        result = community_result(metered, performance)
        if plan.business_pool_wh > 0:
            biz, policy_gain, policy_loss, figures = self._settle(
                plan, metered, performance, result
            )
        else:  # nothing was at stake: no reward, no slash, no news; the baselines still draw
            avail = plan.available
            random_allocation(0.0, plan.cap_wh, biz_cfg.active_set, streams.baselines, avail)
            biz = settle_businesses(
                result, plan.stake_tokens, plan.selected, avail, settled=False, **self._terms
            )
            policy_gain = policy_loss = np.zeros(len(self._blocks))
            figures = IDLE_FIGURES
        self._abstained += self._abstain

        holdings = self._holding_metrics()
        total = float(result.sum())
        oracle = figures["oracle_result"]
        scalars = {
            "total_result": total,
            **figures,
            "efficiency": total / oracle if oracle > 0 else math.nan,
            "participation": plan.participation,
            "token_supply": holdings.supply_tokens,
            "bonded_tokens": float(plan.stake_tokens.sum()),
            "stake_gini": holdings.gini,
            "turnover": turnover(plan.selected_idx, self._previous_selected),
            "adversary_capture": capture(plan.selected_idx, self._collusion_target)
            if self._collusion_target.size else math.nan,
        }
        self._previous_selected = plan.selected_idx
        policy = {
            "stakers": self._stakers_per_policy.copy(),
            "wealth_tokens": holdings.per_policy_tokens.copy(),
            "bonded_tokens": self._bonded_per_policy.copy(),
            "reward_tokens": policy_gain,
            "slashed_tokens": policy_loss,
            "abstaining": self._abstaining_per_policy.copy(),
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

    def _settle(
        self, plan: Plan, metered: np.ndarray, performance: np.ndarray, result: np.ndarray
    ) -> tuple[BusinessSettlement, np.ndarray, np.ndarray, dict[str, float]]:
        """Step 7 of a round with a business pool, the oracle and baselines, then publish."""
        supply_before = self._holding_metrics().supply_tokens
        minted = self._inflation.mint(supply_before) if self._inflation else 0.0
        biz = settle_businesses(
            result,
            plan.stake_tokens,
            plan.selected,
            plan.available,
            settled=True,
            minted_tokens=minted,
            **self._terms,
        )
        credit, slash = biz.credit_per_token, biz.slash_per_token
        self._decisions.learn(credit - slash, self._bonded)  # payoff per bonded token
        gain, loss = self._gain, self._loss

        def pay(*arrays: np.ndarray) -> None:  # per staker: pieces agree with one pass
            choice, stake, gain, loss, wealth, rewards, slashed = arrays
            gains_and_losses(credit, slash, choice, stake, gain, loss)
            wealth += gain  # in two steps: no temporary of S values
            wealth -= loss
            rewards += gain
            slashed += loss

        per_staker = [self._bonds.choice, self._staker_stake, gain, loss]
        parallel.split(
            pay, [*per_staker, self._wealth, self._rewards, self._slashed], self._threads
        )
        self._idle_selection = None  # holdings, hence stake, have changed
        # the holdings are final: a large population measures them (a sort) on another thread
        # while beliefs are published; settle() collects them
        self._holdings = parallel.submit(self._measure_holdings) if self._threads else None

        pool, cap_wh, avail, biz_cfg = plan.business_pool_wh, plan.cap_wh, plan.available, self._biz
        active = biz_cfg.active_set if self._mech.oracle_respects_active_set else None
        allocations = (
            oracle_allocation(pool, cap_wh, performance, avail, active),
            # the realistic ceiling: knows q_i (not this round's p_i), feeds at most I
            oracle_allocation(pool, cap_wh, self.quality, avail, biz_cfg.active_set),
            equal_allocation(pool, cap_wh, avail),
            random_allocation(pool, cap_wh, biz_cfg.active_set, self._streams.baselines, avail),
            last_output_allocation(pool, cap_wh, self._last_result, avail),
            own := last_output_allocation(pool, cap_wh, self._self_last_result, avail),
            ucb := self._ucb.allocate(pool, cap_wh, avail),
        )
        figures = dict(zip(BASELINES, [float(e @ performance) for e in allocations], strict=True))
        self._self_last_result = own * performance
        self._ucb.observe(ucb, performance)
        policy_gain, policy_loss = self._block_sums(gain), self._block_sums(loss)
        figures["rewards_tokens"] = float(biz.reward_tokens.sum())
        figures["slashed_tokens"] = float(policy_loss.sum())
        figures["minted_tokens"] = float(biz.minted_tokens.sum())

        # publish: beliefs and the reweighted_selection baseline learn from this round
        observed = (plan.selected & (metered > 0)).nonzero()[0]
        self._beliefs.observe(observed, performance[observed])
        self._consideration.refresh(self._beliefs, observed)
        self._last_result = result
        if self._inflation:
            self._inflation.steer(float(plan.stake_tokens.sum()), supply_before)
        return biz, policy_gain, policy_loss, figures

    def stakers_table(self) -> pd.DataFrame:
        """Final per-staker table, columns ``lastwatt.result.STAKER_FIELDS``."""
        codes = np.repeat(np.arange(len(self._blocks)), [b.stop - b.start for _, b in self._blocks])
        return pd.DataFrame(
            {
                "policy": pd.Categorical.from_codes(codes, categories=self.policy_names),
                "stake_tokens": self._wealth.copy(),
                "rewards_tokens": self._rewards.copy(),
                "slashed_tokens": self._slashed.copy(),
                "rounds_abstained": self._abstained.astype(np.int64),
                "business": np.where(self._bonds.has_choice, self._bonds.choice[0], -1),
            }
        )
