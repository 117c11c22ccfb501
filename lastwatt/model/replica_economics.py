"""The mechanism's economics on the replica axis (docs/replicas.md): the revenue reward mode,
bribery, inflation, the surplus variants, unbonding and conviction weighting. Each function is
the single run's code (named) per row, with its order of arithmetic; ``replica_state``,
``replicas`` and ``replica_settle`` call in here. None of these draws a random number."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lastwatt.config import Config
from lastwatt.model.conviction import decay_factor
from lastwatt.model.rowwise import masked_sums, python_max0, water_fill_rows
from lastwatt.model.settlement import TOKEN_FLOWS

if TYPE_CHECKING:
    from lastwatt.model.replica_state import ReplicaState
    from lastwatt.model.replicas import ReplicaPlan


@dataclass(eq=False)
class Economics:
    """What the single run keeps in ``Bonds.unbond_left``, ``Inflation`` and ``Conviction``."""

    unbond_left: np.ndarray  # (R, S) int32: idle rounds still to sit out
    rate: np.ndarray  # (R,) inflation rate (0 without inflation)
    conviction: np.ndarray  # (R, S) Conviction.value
    conviction_choice: np.ndarray  # (R, S) the bonds it was accrued on
    conviction_bonded: np.ndarray  # (R, S) bool
    supply_before: np.ndarray | None = None  # (R,) of the round being settled (inflation)

    @classmethod
    def of(cls, cfg: Config, n_replicas: int, n_stakers: int) -> Economics:
        shape = (n_replicas, n_stakers)
        return cls(np.zeros(shape, dtype=np.int32),
                   np.full(n_replicas, cfg.mechanism.inflation_rate), np.zeros(shape),
                   np.zeros(shape, dtype=np.intp), np.zeros(shape, dtype=bool))


# ---- step 3: unbonding -------------------------------------------------------------------
def bond(st: ReplicaState, at: Any, wish: np.ndarray,
         abstain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``Bonds.idle`` + ``Bonds.apply`` (k = 1) for rows ``at``: (deciding, bonded). An
    unbonding stake neither abstains nor decides (``abstain`` is updated in place); a staker
    that switches business sits out this round and the next ``u - 1``."""
    u = st.cfg.mechanism.unbonding_rounds
    if u == 0:
        deciding = ~abstain
        return deciding, deciding
    left = st.econ.unbond_left[at]
    unbonding = left > 0
    left = np.maximum(left - 1, 0)  # one idle round less (the counts are never negative)
    abstain &= ~unbonding
    deciding = ~(abstain | unbonding)
    switching = deciding & st.has_choice[at] & (wish != st.choice[at])
    left[switching] = u - 1
    st.econ.unbond_left[at] = left
    return deciding, deciding & ~switching


# ---- step 4: conviction ------------------------------------------------------------------
def conviction_votes(st: ReplicaState, at: Any, staker_stake: np.ndarray,
                     idle: np.ndarray) -> np.ndarray:
    """``Conviction.update`` for the rows ``at`` with a pool (the ``idle`` ones keep theirs):
    each staker's conviction (rows, S), accrued while it stays bonded to the same business."""
    e, a = st.econ, decay_factor(st.cfg.mechanism.conviction_half_life_rounds)
    value, choice, bonded = e.conviction[at], st.choice[at], st.bonded[at]
    kept = bonded & e.conviction_bonded[at] & (choice == e.conviction_choice[at])
    update = ~idle[:, None]
    value = np.where(update, np.where(kept, a * value + staker_stake, staker_stake), value)
    e.conviction[at] = value
    e.conviction_choice[at] = np.where(update, choice, e.conviction_choice[at])
    e.conviction_bonded[at] = np.where(update, bonded, e.conviction_bonded[at])
    return value


# ---- step 5: where the surplus goes ------------------------------------------------------
def allocate(st: ReplicaState, pool: np.ndarray, stake: np.ndarray, selected: np.ndarray,
             cap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``allocation.allocate_to_selected`` per row: (planned (R, N), unplaced (R,))."""
    weight = np.where(selected, stake, 0.0)
    surplus = st.cfg.mechanism.surplus
    if surplus == "selected":
        return water_fill_rows(pool, weight, cap)
    eligible = None
    if surplus == "positive_expected":
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(st.observations > 0, st.news / (1.0 - st.decay), np.nan)
        eligible = mean > 0
    return _pour_surplus_rows(pool, weight, cap, selected, eligible)


def _pour_surplus_rows(pool: np.ndarray, weight: np.ndarray, cap: np.ndarray,
                       selected: np.ndarray,
                       eligible: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """``allocation.pour_surplus`` over each row's selected businesses (its compressed
    arrays' sums: numpy's order over the selected, ``masked_sums``)."""
    pairwise = np.zeros(len(pool), dtype=bool)
    total = masked_sums(weight, selected, pairwise)
    live = (pool > 0) & (total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        energy = np.minimum(pool[:, None] * (weight / total[:, None]), cap)
    energy[~live] = 0.0
    energy[~selected] = 0.0
    left = np.where(live, python_max0(pool - masked_sums(energy, selected, pairwise)), pool)
    fill = live & (left != 0)
    if eligible is None or not fill.any():
        return energy, left
    rows = np.flatnonzero(fill)
    extra, unplaced = water_fill_rows(left[rows], weight[rows] * eligible[rows],
                                      cap[rows] - energy[rows])
    energy[rows] += extra
    left[rows] = unplaced
    return energy, left


# ---- step 7: revenue, minting, bribes, token flows ---------------------------------------
def settle_businesses(st: ReplicaState, cfg: Config, plan: ReplicaPlan, result: np.ndarray,
                      metered: np.ndarray, settled: np.ndarray) -> dict[str, np.ndarray]:
    """``settlement.settle_businesses`` per row (every business available); idle replicas:
    revenue only. Inflation mints on the supply before the round's payments."""
    mech = cfg.mechanism
    if mech.reward_mode == "revenue":  # settlement.energy_payments
        revenue = metered * (mech.price_per_kwh / 1000.0)
    else:
        revenue = np.maximum(result, 0.0)
        revenue *= cfg.businesses.revenue_per_result
    stake, selected = plan.stake_tokens, plan.selected
    positive, staked = result > 0, (stake > 0) & settled[:, None]
    rewarded = selected & positive & staked
    reward = revenue * mech.reward_share
    reward *= rewarded
    minted = _minted(st, stake, rewarded, settled)
    bribe = _bribes(cfg, metered) * staked
    earned = reward + minted
    earned += bribe
    credit = np.divide(earned, stake, out=np.zeros(stake.shape), where=staked)
    slash = (selected & ~positive) * mech.slash_fraction  # settlement.slash_rates
    if mech.slash_unselected > 0:
        avail = st.presence.available()
        unselected = ~selected if mech.slash_unavailable or avail is None else ~selected & avail
        slash[unselected] = mech.slash_fraction * float(mech.slash_unselected)
    slash[~settled] = 0.0
    return {"revenue": revenue, "reward": reward, "minted": minted, "bribe": bribe,
            "credit": credit, "slash": slash}


def _minted(st: ReplicaState, stake: np.ndarray, rewarded: np.ndarray,
            settled: np.ndarray) -> np.ndarray:
    """``Inflation.mint`` + ``settlement._inflation_shares`` per row."""
    minted = np.zeros(stake.shape)
    if not st.cfg.mechanism.inflation_rate > 0:
        return minted
    supply = st.econ.supply_before = st.wealth.sum(axis=1)  # before this round's payments
    tokens = st.econ.rate * supply
    rewarded_stake = masked_sums(stake, rewarded, np.zeros(len(stake), dtype=bool))
    go = (tokens > 0) & (rewarded_stake > 0) & settled
    np.divide(tokens[:, None] * stake, rewarded_stake[:, None], out=minted,
              where=rewarded & go[:, None])
    return minted


def _bribes(cfg: Config, metered: np.ndarray) -> np.ndarray:
    """``settlement.bribes`` per row (zeros without a briber)."""
    bribery, out = cfg.adversaries.bribery, np.zeros(metered.shape)
    if bribery.share > 0:
        value = cfg.mechanism.price_per_kwh if bribery.value_per_kwh is None \
            else bribery.value_per_kwh
        out[:, bribery.business] = bribery.share * metered[:, bribery.business] * (value / 1000.0)
    return out


def steer(st: ReplicaState, plan: ReplicaPlan, settled: np.ndarray) -> None:
    """``Inflation.steer`` after the settled rounds (only with inflation on)."""
    mech, supply_before = st.cfg.mechanism, st.econ.supply_before
    if supply_before is None:
        return
    bonded = plan.stake_tokens.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        bonding_rate = np.where(supply_before > 0, bonded / supply_before, 0.0)
    change = mech.inflation_change
    step = np.where(bonding_rate < mech.target_bonding_rate, change, -change)
    st.econ.rate = np.where(settled, python_max0(st.econ.rate + step), st.econ.rate)


def token_flows(cfg: Config, biz: dict[str, np.ndarray],
                stake: np.ndarray) -> dict[str, np.ndarray]:
    """``settlement.token_flows`` per row."""
    revenue_mode = cfg.mechanism.reward_mode == "revenue"
    rewards, minted = biz["reward"].sum(axis=1), biz["minted"].sum(axis=1)
    bribed = biz["bribe"].sum(axis=1)
    paid = biz["revenue"].sum(axis=1) if revenue_mode else np.zeros(len(rewards))
    values = (rewards, (biz["slash"] * stake).sum(axis=1), minted, bribed, paid + bribed,
              paid - rewards if revenue_mode else np.zeros(len(rewards)),
              minted if revenue_mode else minted + rewards)
    return dict(zip(TOKEN_FLOWS, values, strict=True))
