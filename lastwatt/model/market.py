"""The market: docs/model.md steps 3-7 composed into the two calls the engine makes each round.

``plan`` runs the stakers' decisions (step 3), values their stake, selects the active set
(step 4) and allocates the pool (step 5); ``settle`` takes the *metered* energy, draws
performance (step 6), pays rewards and slashes (step 7), computes the oracle, the baselines and
the round metrics, and publishes the round's performance to the stakers' beliefs. A round
without a business pool is *idle*: nothing is at stake, so nobody decides and the last round's
bonds stand; performance and baseline draws happen every round all the same.

Each step is a function of its own module; the speed-ups for large populations (threads,
caches) live in :mod:`lastwatt.model.fastpath` and never change a result.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lastwatt.config import Config
from lastwatt.errors import ConfigError
from lastwatt.model import agents, fastpath
from lastwatt.model.adversaries import Adversaries
from lastwatt.model.allocation import allocate_to_selected
from lastwatt.model.bandit import UcbAllocator
from lastwatt.model.baselines import equal_allocation, last_output_allocation, random_allocation
from lastwatt.model.beliefs import PublicBeliefs
from lastwatt.model.contract import Outcome, Plan, check_available, check_metered, check_pool
from lastwatt.model.conviction import Conviction
from lastwatt.model.decisions import Decisions
from lastwatt.model.ledger import Ledger
from lastwatt.model.metrics import BlockSums, turnover
from lastwatt.model.oracle import oracle_allocation
from lastwatt.model.performance import community_result, draw_performance
from lastwatt.model.presence import Presence
from lastwatt.model.selection import select_active_set
from lastwatt.model.settlement import (
    TOKEN_FLOWS,
    BusinessSettlement,
    Inflation,
    bribes,
    energy_payments,
    settle_businesses,
    token_flows,
)
from lastwatt.model.stakes import Bonds, bonded_stake_per_business
from lastwatt.model.world import (
    apply_jumps,
    capture,
    drift_quality,
    endowment_tokens,
    shared_rating_error,
    sybil_tokens,
)
from lastwatt.rng import Streams
from lastwatt.site import Site
from lastwatt.site import site as site_of

CACHED_POLICIES = ("softmax", "greedy", "epsilon_greedy")  # read their beliefs every round
BASELINES = (
    "oracle_result", "quality_oracle_result", "equal_result", "random_result",
    "reweighted_selection_result", "self_proportional_result", "ucb_result",
)
# what a round without a business pool reports: nothing allocated, paid, burned or minted
IDLE_FIGURES = dict.fromkeys((*BASELINES, *TOKEN_FLOWS), 0.0)


class Market:
    """The staking market of one run: stakers (arrays of S) routing the business pool to N
    businesses, driven once per round by ``plan`` then ``settle`` (docs/model.md).

    ``site`` gives the businesses (default: drawn from ``streams.businesses``, as the run does).
    Attributes: ``n_businesses``, ``n_stakers``, ``quality``, ``max_power_w``,
    ``business_names``, ``policy_names`` (policies with a share > 0, in config order).
    """

    def __init__(self, cfg: Config, streams: Streams, site: Site | None = None) -> None:
        pop = self._pop = cfg.population
        self._biz, self._mech, self._streams = cfg.businesses, cfg.mechanism, streams
        site = site_of(cfg, streams.businesses) if site is None else site
        sybil = cfg.adversaries.sybil
        n_sybil = sybil.accounts if sybil.supply_share > 0 else 0
        # the Sybil's accounts are stakers after the households, in a block of their own
        self.n_businesses, self.n_stakers = site.n_businesses, pop.households + n_sybil
        self.quality, self.max_power_w = site.quality, site.max_power_w
        self.business_names = site.business_names
        self._k = _slots_per_staker(cfg)
        self._threads = fastpath.threaded(pop.households)  # same results either way
        self._blocks = agents.assign_policies(dict(pop.policies), pop.households)
        if n_sybil:
            self._blocks.append(("sybil", slice(pop.households, self.n_stakers)))
        self.policy_names = [name for name, _ in self._blocks]
        self._block_sums = BlockSums([b for _, b in self._blocks])
        world = self._world = cfg.world
        self._jumps = [(j.round, j.business, j.quality) for j in world.jumps]
        sd = world.performance_sd_by_business
        self._sigma = self._biz.performance_sd if sd is None else np.array(sd, dtype=float)
        self._init_stakers(cfg, streams)
        self._terms = _settlement_terms(cfg)
        self._inflation = _inflation(cfg)
        self._caps = fastpath.RoundCaps(site.cap_wh)
        self._idle_selection = fastpath.IdleSelection()
        self._last_result = np.zeros(self.n_businesses)  # published R of the last settled round
        self._self_last_result = np.zeros(self.n_businesses)  # self_proportional's own last R
        self._ucb = UcbAllocator(
            self.n_businesses, self._biz.active_set, float(np.max(self._sigma))
        )
        self._previous_selected: list[int] | None = None
        self._plan: Plan | None = None

    def _init_stakers(self, cfg: Config, streams: Streams) -> None:
        """Beliefs, consideration sets, policies, bonds, colluders and token accounts."""
        pop, world, n = cfg.population, cfg.world, self.n_stakers
        # a rating error every staker shares (correlated errors), then the endowments
        rating = shared_rating_error(self.quality, world.rating_shared_sd, streams.world)
        self._beliefs = PublicBeliefs(rating, pop.learning_rate)
        # entry and exit: the prior of an entrant keeps the shared error of its rating
        biz = cfg.businesses
        uninformed = (biz.quality_low + biz.quality_high) / 2
        self._presence = Presence(self.n_businesses, world.presence, rating - self.quality,
                                  uninformed if world.entry_prior == "uninformed" else None)
        self._beliefs.leave(np.flatnonzero(~self._presence.open))  # before the first values
        cached = [b for name, b in self._blocks if name in CACHED_POLICIES]
        self._consideration = agents.Consideration(
            n, self.n_businesses, pop.consideration_set, pop.rating_noise_sd, streams.market,
            self._beliefs, cached=cached, threads=self._threads,
        )
        self._decisions = Decisions(pop, self._blocks, self._consideration, self._k, self._threads)
        self._decisions.absent = self._presence.closed()
        self._bonds = Bonds.empty(n, self._k)
        wealth = endowment_tokens(world.endowment, pop.households, pop.tokens_per_household,
                                  world.pareto_shape, streams.world)
        sybil = cfg.adversaries.sybil
        if n > pop.households:
            wealth = np.concatenate([wealth, sybil_tokens(wealth, sybil.supply_share,
                                                          n - pop.households)])
        self._ledger = Ledger(wealth, self._block_sums, self._threads)
        self._adversaries = Adversaries.of(cfg, n)
        self._bribery = cfg.adversaries.bribery
        self._briber = np.array([self._bribery.business] if self._bribery.share > 0 else [], int)
        value = self._bribery.value_per_kwh
        self._bribe_value = self._mech.price_per_kwh if value is None else value
        self._conviction = (Conviction(n, self._k, self._mech.conviction_half_life_rounds)
                            if self._mech.stake_weighting == "conviction" else None)
        self._stakers_per_policy = np.array([b.stop - b.start for _, b in self._blocks], float)
        self._init_abstention(cfg)

    def _init_abstention(self, cfg: Config) -> None:
        pop = cfg.population
        self._abstain = self._no_abstain = np.zeros(self.n_stakers, dtype=bool)  # never written
        self._abstain_buffer = np.zeros(self.n_stakers, dtype=bool)
        by_policy: dict[str, float] = dict(pop.abstain_by_policy)
        by_policy["sybil"] = 0.0  # the Sybil's accounts never abstain
        shares = [by_policy.get(name, pop.abstain_probability) for name in self.policy_names]
        # one threshold per policy -> (S,) per staker; a scalar when all policies agree
        self._abstain_threshold: np.ndarray | np.float32 = (
            np.float32(shares[0] if shares else 0.0) if len(set(shares)) <= 1
            else np.repeat(np.array(shares, dtype=np.float32), self._stakers_per_policy.astype(int))
        )
        self._bonded: np.ndarray | None = None  # (S,) bool, of the last round that bonded
        self._participation = 0.0
        self._bonded_per_policy = self._abstaining_per_policy = np.zeros(len(self._blocks))

    # ---- steps 3-5 -----------------------------------------------------------------------
    def plan(
        self,
        round_index: int,
        business_pool_wh: float,
        round_s: float,
        available: np.ndarray | None = None,
        draw_factor: np.ndarray | None = None,
    ) -> Plan:
        """Steps 3-5 for a round of ``round_s`` seconds with ``business_pool_wh`` to route.

        ``available`` (N,) bool: businesses whose devices are online (default all); a
        business that has not entered yet or has exited (``world.presence``) is unavailable too.
        ``draw_factor`` (N,) in [0, 1]: the share of its maximum power each business can draw
        this round (its load profile); it scales the caps, for the allocation, the oracle and
        the baselines alike. None: every business can draw its max.
        """
        pool_wh = check_pool(business_pool_wh)
        avail = self._open(round_index, check_available(available, self.n_businesses))
        idle = pool_wh == 0 and self._bonded is not None  # nothing at stake: the bonds stand
        if not idle:
            self._decide_and_bond(self._streams.market)  # step 3
        some_offline = not avail.all()
        stake, selected_idx = self._stake_and_select(avail, some_offline, idle)  # step 4
        cap_wh = self._caps(round_s)
        if draw_factor is not None:
            cap_wh = cap_wh * np.clip(np.asarray(draw_factor, dtype=float), 0.0, 1.0)
        surplus = self._mech.surplus  # where what the caps leave goes
        published = self._beliefs.published_mean() if surplus == "positive_expected" else None
        planned_wh, unplaced_wh = allocate_to_selected(
            pool_wh, stake, selected_idx, cap_wh, surplus, published
        )  # step 5
        selected = np.zeros(self.n_businesses, dtype=bool)
        selected[selected_idx] = True
        self._plan = Plan(
            round_index, stake, selected, selected_idx.tolist(), planned_wh, unplaced_wh,
            self._participation, pool_wh, cap_wh, avail,
        )
        return self._plan

    def _open(self, round_index: int, avail: np.ndarray) -> np.ndarray:
        """``avail`` without the businesses closed this round (entry and exit)."""
        if not self._presence.tracked:
            return avail
        return avail & self._presence.update(
            round_index, self.quality, self._beliefs, self._consideration, self._decisions
        )

    def _decide_and_bond(self, rng: np.random.Generator) -> None:
        """Step 3: who abstains, what everyone else wishes, who ends up bonded."""
        bonds, n_stakers = self._bonds, self.n_stakers
        abstain, threshold = self._no_abstain, self._abstain_threshold
        if np.max(threshold) > 0:
            uniform = rng.random(n_stakers, dtype=np.float32)
            abstain = np.less(uniform, threshold, out=self._abstain_buffer)
        closed = self._decisions.absent
        if closed is not None:
            self._presence.release(bonds, self._decisions)
        wish = self._decisions.decide(bonds, rng)
        if self._decisions.strategic is not None:  # every bond looks like a loss: stay out
            abstain = abstain | self._decisions.strategic
        abstain = self._adversaries.commit(wish, abstain)  # colluders, Sybil: always bonded
        if closed is not None:  # a wish for a closed business (random draw, k > open): sit out
            abstain = abstain | closed[wish].any(axis=0)
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

    def _stake_and_select(
        self, avail: np.ndarray, some_offline: bool, idle: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stake per business (N,) and the active set (step 4), largest stake first."""
        kept = self._idle_selection.get(avail) if idle else None
        if kept is not None:
            return kept
        staker_stake = self._ledger.bond(self._bonded)
        stake, self._bonded_per_policy = fastpath.beside(
            lambda: bonded_stake_per_business(self._bonds.choice, staker_stake, self.n_businesses),
            lambda: self._block_sums(staker_stake),
            self._threads,
        )
        weight = self._selection_weight(stake, staker_stake, idle)
        selected_idx = select_active_set(
            weight, self._biz.active_set, self._streams.market, avail if some_offline else None
        )
        self._decisions.follow(selected_idx)
        if idle:
            self._idle_selection.keep(stake, selected_idx, avail)
        else:
            self._idle_selection.clear()
        return stake, selected_idx

    def _selection_weight(self, stake: np.ndarray, staker_stake: np.ndarray,
                          idle: bool) -> np.ndarray:
        """What the active set is ranked by (N,); the allocation stays pro rata to stake."""
        if self._mech.stake_weighting == "quadratic":  # one voice per sqrt(token)
            votes = np.sqrt(staker_stake)
        elif self._conviction is not None:  # stake-time; accrues only in rounds with a pool
            votes = self._conviction.value if idle else self._conviction.update(
                self._bonds.choice, self._bonded, staker_stake)
        else:
            return stake
        return bonded_stake_per_business(self._bonds.choice, votes, self.n_businesses)

    # ---- steps 6-7 ---------------------------------------------------------------------
    def settle(self, plan: Plan, metered_wh: np.ndarray) -> Outcome:
        """Steps 6-7 for the plan of the latest ``plan`` call and the energy the businesses'
        meters reported (N,). Call it every round, idle rounds too."""
        if plan is not self._plan:
            raise RuntimeError("settle() needs the plan returned by the latest plan() call")
        metered = check_metered(metered_wh, self.n_businesses)
        self._plan = None
        self._move_world(plan.round_index)
        performance = draw_performance(self.quality, self._sigma, self._streams.performance)
        # step 6
        result = community_result(metered, performance)
        if plan.business_pool_wh > 0:
            biz, policy_gain, policy_loss, figures = self._settle(plan, result, metered)
            figures = {**self._benchmarks(plan, performance), **figures}
            self._publish(plan, metered, performance, result)
        else:  # nothing was at stake: no reward, no slash, no news; the baselines still draw
            biz = self._settle_idle(plan, result, metered)
            policy_gain = policy_loss = np.zeros(len(self._blocks))
            figures = IDLE_FIGURES
        self._ledger.abstained += self._abstain
        return self._outcome(plan, performance, result, biz, figures, policy_gain, policy_loss)

    def _move_world(self, round_index: int) -> None:
        """The businesses' qualities drift and jump (every round: the streams stay aligned)."""
        if self._world.quality_drift_sd > 0:
            self.quality = drift_quality(self.quality, self._world.quality_drift_sd,
                                         self._streams.world)
        self.quality = apply_jumps(self.quality, round_index, self._jumps)

    def _settle(
        self, plan: Plan, result: np.ndarray, metered: np.ndarray
    ) -> tuple[BusinessSettlement, np.ndarray, np.ndarray, dict[str, float]]:
        """Step 7 of a round with a business pool: mint, reward, slash, book per staker."""
        supply_before = self._ledger.holdings().supply_tokens
        minted = self._inflation.mint(supply_before) if self._inflation else 0.0
        bribe = (bribes(metered, self._bribe_value, self._bribery.share,
                        self._bribery.business) if self._briber.size else None)
        biz = settle_businesses(
            result, plan.stake_tokens, plan.selected, plan.available, settled=True,
            minted_tokens=minted, revenue_tokens=self._payments(metered), bribe_tokens=bribe,
            **self._terms,
        )
        self._decisions.learn(biz.credit_per_token - biz.slash_per_token, self._bonded)
        self._ledger.pay(biz.credit_per_token, biz.slash_per_token, self._bonds.choice)
        self._idle_selection.clear()  # holdings, hence stake, have changed
        if self._inflation:
            self._inflation.steer(float(plan.stake_tokens.sum()), supply_before)
        policy_gain = self._block_sums(self._ledger.gain)
        policy_loss = self._block_sums(self._ledger.loss)
        figures = token_flows(biz, plan.stake_tokens, self._mech.reward_mode == "revenue")
        return biz, policy_gain, policy_loss, figures

    def _payments(self, metered: np.ndarray) -> np.ndarray | None:
        """Revenue mode: what each business pays for its metered energy; minted mode: None."""
        if self._mech.reward_mode != "revenue":
            return None
        return energy_payments(metered, self._mech.price_per_kwh)

    def _settle_idle(self, plan: Plan, result: np.ndarray,
                     metered: np.ndarray) -> BusinessSettlement:
        """A round without a pool: revenue only; the random baseline draws all the same."""
        random_allocation(
            0.0, plan.cap_wh, self._biz.active_set, self._streams.baselines, plan.available
        )
        return settle_businesses(
            result, plan.stake_tokens, plan.selected, plan.available, settled=False,
            revenue_tokens=self._payments(metered), **self._terms,
        )

    def _benchmarks(self, plan: Plan, performance: np.ndarray) -> dict[str, float]:
        """Result R of the ceilings and the baselines: same pool, caps, p_i and availability.
        The self-proportional and UCB baselines learn from their own allocations."""
        pool, cap_wh, avail, active = (
            plan.business_pool_wh, plan.cap_wh, plan.available, self._biz.active_set
        )
        oracle_active = active if self._mech.oracle_respects_active_set else None
        allocations = (
            oracle_allocation(pool, cap_wh, performance, avail, oracle_active),
            # the realistic ceiling: knows q_i (not this round's p_i), feeds at most I
            oracle_allocation(pool, cap_wh, self.quality, avail, active),
            equal_allocation(pool, cap_wh, avail),
            random_allocation(pool, cap_wh, active, self._streams.baselines, avail),
            last_output_allocation(pool, cap_wh, self._last_result, avail),
            own := last_output_allocation(pool, cap_wh, self._self_last_result, avail),
            ucb := self._ucb.allocate(pool, cap_wh, avail),
        )
        self._self_last_result = own * performance
        self._ucb.observe(ucb, performance)
        return dict(zip(BASELINES, [float(e @ performance) for e in allocations], strict=True))

    def _publish(
        self, plan: Plan, metered: np.ndarray, performance: np.ndarray, result: np.ndarray
    ) -> None:
        """Beliefs learn p_i of the selected businesses that drew energy; the reweighted
        selection baseline learns R."""
        observed = (plan.selected & (metered > 0)).nonzero()[0]
        self._beliefs.observe(observed, performance[observed])
        self._consideration.refresh(self._beliefs, observed)
        self._last_result = result

    def _outcome(
        self, plan: Plan, performance: np.ndarray, result: np.ndarray, biz: BusinessSettlement,
        figures: dict[str, float], policy_gain: np.ndarray, policy_loss: np.ndarray,
    ) -> Outcome:
        """The round's figures: per business, the round scalars and per policy."""
        holdings = self._ledger.holdings()
        total = float(result.sum())
        oracle = figures["oracle_result"]
        entrants = self._presence.open_entrants()  # share of slots they hold once they are open
        scalars = {
            "total_result": total,
            **figures,
            "efficiency": total / oracle if oracle > 0 else math.nan,
            "participation": plan.participation,
            "token_supply": holdings.supply_tokens,
            "bonded_tokens": float(plan.stake_tokens.sum()),
            "stake_gini": holdings.gini,
            "turnover": turnover(plan.selected_idx, self._previous_selected),
            **self._adversaries.capture(plan.selected_idx),
            "entrant_capture": capture(plan.selected_idx, entrants) if entrants.size else math.nan,
            "bribe_capture": capture(plan.selected_idx, self._briber)
            if self._briber.size else math.nan,
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
            performance, result, biz.revenue_tokens, biz.reward_tokens,
            biz.slash_per_token * plan.stake_tokens, scalars, policy,
        )

    def stakers_table(self) -> pd.DataFrame:
        """Final per-staker table, columns ``lastwatt.result.STAKER_FIELDS``."""
        codes = np.repeat(np.arange(len(self._blocks)), self._stakers_per_policy.astype(int))
        ledger = self._ledger
        return pd.DataFrame(
            {
                "policy": pd.Categorical.from_codes(codes, categories=self.policy_names),
                "stake_tokens": ledger.wealth.copy(),
                "rewards_tokens": ledger.rewards.copy(),
                "slashed_tokens": ledger.slashed.copy(),
                "rounds_abstained": ledger.abstained.astype(np.int64),
                "business": np.where(self._bonds.has_choice, self._bonds.choice[0], -1),
            }
        )


def _slots_per_staker(cfg: Config) -> int:
    k, count = cfg.population.max_businesses_per_staker, cfg.businesses.count
    if k > count:
        raise ConfigError(
            "population.max_businesses_per_staker", f"{k} exceeds businesses.count={count}",
            "lower it to at most the number of businesses",
        )
    return k


def _settlement_terms(cfg: Config) -> dict[str, float | bool]:
    """The config terms of every settlement (``settle_businesses`` keywords)."""
    mech = cfg.mechanism
    return {
        "revenue_per_result": cfg.businesses.revenue_per_result,
        "reward_share": mech.reward_share,
        "slash_fraction": mech.slash_fraction,
        "slash_unselected": mech.slash_unselected,
        "slash_unavailable": mech.slash_unavailable,
    }


def _inflation(cfg: Config) -> Inflation | None:
    mech = cfg.mechanism
    if mech.inflation_rate <= 0:
        return None
    return Inflation(mech.inflation_rate, mech.target_bonding_rate, mech.inflation_change)
