"""Steps 6-7 of a replica batch (docs/replicas.md): ``Market.settle`` with a replica axis.

Replicas with a pool settle (rewards, slashes, benchmarks, news); the others are idle rounds
(revenue only). The draws every replica makes every round: its quality drift, its
performance normals and the random baseline's permutation, each from its own streams.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lastwatt.config import Config
from lastwatt.model import replica_economics, replica_world
from lastwatt.model.beliefs import DECAY_FLOOR
from lastwatt.model.market import BASELINES, IDLE_FIGURES
from lastwatt.model.performance import PERFORMANCE_MAX, PERFORMANCE_MIN
from lastwatt.model.rowwise import dot_rows, gini_rows, oracle_rows, water_fill_rows
from lastwatt.model.world import QUALITY_MAX, QUALITY_MIN

if TYPE_CHECKING:
    from lastwatt.model.replica_state import ReplicaState
    from lastwatt.model.replicas import ReplicaPlan


@dataclass(slots=True)
class ReplicaOutcome:
    """``Outcome`` with a leading replica axis: (R, N) arrays, scalars (R,), policy (R, P)."""

    performance: np.ndarray
    result: np.ndarray
    revenue_tokens: np.ndarray
    reward_tokens: np.ndarray
    slashed_tokens: np.ndarray
    scalars: dict[str, np.ndarray]
    policy: dict[str, np.ndarray]


def settle(st: ReplicaState, cfg: Config, plan: ReplicaPlan,
           metered: np.ndarray) -> ReplicaOutcome:
    """``Market.settle`` for every replica."""
    _move_world(st, cfg, plan.round_index)
    performance = st.draws.normals("performance")
    performance *= st.sigma
    performance += st.quality
    np.maximum(performance, PERFORMANCE_MIN, out=performance)
    np.minimum(performance, PERFORMANCE_MAX, out=performance)
    result = metered * performance
    avail = st.presence.available()
    chosen = _random_choice(st, cfg.businesses.active_set, avail)
    settled = plan.business_pool_wh > 0
    biz = replica_economics.settle_businesses(st, cfg, plan, result, metered, settled)
    net = biz["credit"] - biz["slash"]
    if st.policies is not None:  # the learners see the per-token payoffs
        st.policies.learn(net, st.bonded, settled)
    if st.slots is not None:  # k > 1: gains and losses summed over the slots
        gain, loss = st.slots.pay(st, biz["credit"], biz["slash"], settled)
    else:
        gain, loss = _pay(st, net, settled)
    replica_economics.steer(st, plan, settled)
    figures = _benchmarks(st, cfg, plan, performance, chosen, settled, avail)
    for name, value in replica_economics.token_flows(cfg, biz, plan.stake_tokens).items():
        figures[name] = np.where(settled, value, IDLE_FIGURES[name])
    _publish(st, plan, metered, performance, result, settled)
    st.abstained += st.abstain
    return ReplicaOutcome(
        performance, result, biz["revenue"], biz["reward"], biz["slash"] * plan.stake_tokens,
        _scalars(st, plan, result, figures), _policy(st, gain, loss),
    )


def _move_world(st: ReplicaState, cfg: Config, round_index: int) -> None:
    """``Market._move_world``: drift (each replica's world stream), then the jumps."""
    sd = cfg.world.quality_drift_sd
    if sd > 0:
        st.quality = np.clip(st.quality + sd * st.draws.normals("world"), QUALITY_MIN, QUALITY_MAX)
    for jump in cfg.world.jumps:
        if jump.round == round_index:
            st.quality = st.quality.copy()
            st.quality[:, jump.business] = jump.quality


def _random_choice(st: ReplicaState, count: int, avail: np.ndarray | None) -> np.ndarray:
    """The random baseline's businesses (R, N) bool: each replica's permutation of the
    available businesses (drawn as one of their count), every round."""
    candidates = np.arange(st.quality.shape[1]) if avail is None else np.flatnonzero(avail)
    perm = st.draws.permutations("baselines", size=len(candidates))
    chosen = np.zeros(st.quality.shape, dtype=bool)
    np.put_along_axis(chosen, candidates[perm[:, :count]], True, axis=1)
    return chosen


def _pay(st: ReplicaState, net: np.ndarray,
         settled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``Ledger.pay`` (k = 1) for the settled replicas; per-policy gains and losses (R, P)."""
    p = len(st.blocks)
    gain, loss = np.zeros((len(net), p)), np.zeros((len(net), p))
    if not settled.any():
        return gain, loss
    at = slice(None) if settled.all() else np.flatnonzero(settled)
    delta = np.take_along_axis(net[at], st.choice[at], axis=1)
    delta *= st.stake[at]
    g = np.maximum(delta, 0.0)
    lo = np.subtract(g, delta, out=delta)
    gain[at], loss[at] = st.book_payments(at, g, lo)
    return gain, loss


def _last_output_weight(last: np.ndarray, avail: np.ndarray | None) -> np.ndarray:
    """``last_output_allocation``'s weights per row: positive last results of the available
    businesses, else an equal split over them."""
    weight = np.maximum(last, 0.0)
    if avail is not None:
        weight[:, ~avail] = 0.0
    none = ~(weight != 0).any(axis=1)
    weight[none] = 1.0 if avail is None else avail
    return weight


def _ucb_weight(st: ReplicaState, cfg: Config, avail: np.ndarray | None) -> np.ndarray:
    """``UcbAllocator.allocate``'s weights per row: 1 for the I available businesses with
    the largest indices."""
    sigma = float(np.max(st.sigma))
    count, t = st.ucb_count, np.maximum(st.ucb_t, 1).astype(float)
    bonus = sigma * np.sqrt(2.0 * np.log(t)[:, None] / np.maximum(count, 1))  # bandit.ucb_index
    index = np.where(count > 0, st.ucb_mean + bonus, np.inf)
    if avail is not None:
        index[:, ~avail] = -np.inf  # sorted last, and never given a share
    order = np.argsort(-index, axis=1, kind="stable")[:, : cfg.businesses.active_set]
    weight = np.zeros(count.shape)
    np.put_along_axis(weight, order, 1.0, axis=1)
    if avail is not None:
        weight *= avail
    return weight


def _benchmarks(st: ReplicaState, cfg: Config, plan: ReplicaPlan, performance: np.ndarray,
                chosen: np.ndarray, settled: np.ndarray,
                avail: np.ndarray | None) -> dict[str, np.ndarray]:
    """``Market._benchmarks`` per row; idle replicas report zeros and learn nothing. A
    closed business (``avail``) is no oracle's: its p_i and q_i count as 0 (not eligible).
    The five baselines' water-fills are one row-wise call (each row fills on its own)."""
    pool, cap, active = plan.business_pool_wh, plan.cap_wh, cfg.businesses.active_set
    oracle_active = active if cfg.mechanism.oracle_respects_active_set else None
    shown = (performance, st.quality) if avail is None else (
        np.where(avail, performance, 0.0), np.where(avail, st.quality, 0.0))
    equal = np.ones(cap.shape) if avail is None else np.broadcast_to(avail, cap.shape) * 1.0
    weights = (equal, chosen.astype(float), _last_output_weight(st.last_result, avail),
               _last_output_weight(st.self_last_result, avail), _ucb_weight(st, cfg, avail))
    filled = water_fill_rows(np.tile(pool, len(weights)), np.concatenate(weights),
                             np.tile(cap, (len(weights), 1)))[0]
    equal, random_, reweighted, own, ucb = np.split(filled, len(weights))
    allocations = (
        oracle_rows(pool, cap, shown[0], oracle_active),
        oracle_rows(pool, cap, shown[1], active),
        equal, random_, reweighted, own, ucb,
    )
    at = settled[:, None]
    st.self_last_result = np.where(at, own * performance, st.self_last_result)
    fed = (ucb > 0) & at
    st.ucb_t += settled
    st.ucb_count += fed
    with np.errstate(divide="ignore", invalid="ignore"):
        step = (performance - st.ucb_mean) / st.ucb_count
    st.ucb_mean = np.where(fed, st.ucb_mean + step, st.ucb_mean)
    return {name: np.where(settled, dot_rows(e, performance), IDLE_FIGURES[name])
            for name, e in zip(BASELINES, allocations, strict=True)}


def _publish(st: ReplicaState, plan: ReplicaPlan, metered: np.ndarray,
             performance: np.ndarray, result: np.ndarray, settled: np.ndarray) -> None:
    """``Market._publish`` for the settled replicas: beliefs learn the observed p_i."""
    observed = plan.selected & (metered > 0) & settled[:, None]
    lr = st.cfg.population.learning_rate
    keep = 1.0 - lr
    st.news = np.where(observed, keep * st.news + lr * performance, st.news)
    decay = st.decay * keep  # floored as Beliefs.observe does: no subnormals, same bits
    st.decay = np.where(observed & (decay >= DECAY_FLOOR), decay, np.where(observed, 0.0, st.decay))
    st.observations += observed
    if observed.any():
        st.refresh(observed.any(axis=1), observed)
    st.last_result = np.where(settled[:, None], result, st.last_result)


def _turnover(selected: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """``metrics.turnover`` per row: 1 - Jaccard, NaN on the first round, 0 for two empties."""
    if previous is None:
        return np.full(len(selected), np.nan)
    union = (selected | previous).sum(axis=1)
    both = (selected & previous).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, 1.0 - both / union, 0.0)


def _scalars(st: ReplicaState, plan: ReplicaPlan, result: np.ndarray,
             figures: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``Market._outcome``'s round scalars per replica."""
    supply = st.wealth.sum(axis=1)
    total = result.sum(axis=1)
    oracle = figures["oracle_result"]
    with np.errstate(divide="ignore", invalid="ignore"):
        efficiency = np.where(oracle > 0, total / oracle, np.nan)
    adv = st.cfg.adversaries
    sybil = [adv.sybil.business] if adv.sybil.supply_share > 0 else []
    briber = [adv.bribery.business] if adv.bribery.share > 0 else []
    scalars = {
        "total_result": total, **figures, "efficiency": efficiency,
        "participation": plan.participation, "token_supply": supply,
        "bonded_tokens": plan.stake_tokens.sum(axis=1), "stake_gini": gini_rows(st.wealth, supply),
        "turnover": _turnover(plan.selected, st.previous),
        "adversary_capture": replica_world.capture(plan, st.target),
        "sybil_capture": replica_world.capture(plan, sybil),
        "entrant_capture": replica_world.entrant_capture(st, plan),
        "bribe_capture": replica_world.capture(plan, briber),
    }
    st.previous = plan.selected
    return scalars


def _policy(st: ReplicaState, gain: np.ndarray, loss: np.ndarray) -> dict[str, np.ndarray]:
    r = len(gain)
    stakers = np.array([b.stop - b.start for _, b in st.blocks], float)
    return {
        "stakers": np.broadcast_to(stakers, (r, len(stakers))).copy(),
        "wealth_tokens": st.block_sums(st.wealth),
        "bonded_tokens": st.bonded_per_policy.copy(),
        "reward_tokens": gain,
        "slashed_tokens": loss,
        "abstaining": st.abstaining_per_policy.copy(),
    }
