"""What one round produces, in one definition shared by every sink (files, InfluxDB).

Column names carry units. ``ROUND_FIELDS`` are the per-round scalars (``rounds.parquet``),
``BUSINESS_FIELDS`` the per-round x business columns (``businesses.parquet``),
``POLICY_FIELDS`` the per-round x staker-policy aggregates, ``DEVICE_FIELDS`` the per-round x
device columns, ``STAKER_FIELDS`` the final per-staker table (``stakers.parquet``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

ROUND_FIELDS: tuple[str, ...] = (
    "production_wh",
    "community_wh",  # served
    "household_wh",  # served
    "reserve_wh",  # held back, plus what allocation could not place
    "business_pool_wh",
    "unserved_community_wh",
    "unserved_household_wh",
    "planned_wh",  # sum of planned business energy
    "metered_wh",  # sum of metered business energy
    "total_result",  # sum_i R_i with metered energy
    "oracle_result",
    "equal_result",
    "random_result",
    "reweighted_selection_result",
    "self_proportional_result",
    "ucb_result",
    "quality_oracle_result",  # knows q_i, feeds at most I: the realistic ceiling
    "adversary_capture",  # share of selected slots held by colluders' businesses (NaN: none)
    "sybil_capture",  # share of selected slots held by the Sybil's business (NaN: none)
    "entrant_capture",  # share held by businesses that entered after round 0 (NaN: none open)
    "efficiency",  # total_result / oracle_result (NaN when the oracle is 0)
    "participation",  # share of stakers not abstaining
    "token_supply",
    "bonded_tokens",
    "stake_gini",
    "turnover",  # 1 - Jaccard(selected set, previous selected set)
    "rewards_tokens",
    "slashed_tokens",
    "minted_tokens",  # Livepeer inflation
    "bribes_tokens",  # paid by the bribing business to its stakers
    "paid_in_tokens",  # businesses' payments for energy (revenue mode) + bribes
    "treasury_tokens",  # payments not passed on to stakers (revenue mode)
    "created_tokens",  # out of nothing: inflation, plus the rewards in minted mode
    "bribe_capture",  # share of selected slots held by the bribing business (NaN: none)
    "lag_s",  # real time: how far the round started behind the wall clock
    # meter readings rejected in this round, by reason (lastwatt.meters)
    "rejected_future",
    "rejected_past",
    "rejected_implausible",
    "rejected_unflagged_reset",
    "rejected_old_epoch",
)

BUSINESS_FIELDS: tuple[str, ...] = (
    "stake_tokens",
    "selected",  # 0/1
    "planned_wh",
    "metered_wh",
    "performance",
    "result",
    "revenue_tokens",
    "reward_tokens",
    "slashed_tokens",
)

POLICY_FIELDS: tuple[str, ...] = (
    "stakers",
    "wealth_tokens",  # total tokens held by stakers of this policy
    "bonded_tokens",
    "reward_tokens",
    "slashed_tokens",
    "abstaining",
)

DEVICE_FIELDS: tuple[str, ...] = (
    "business",
    "quota_wh",
    "metered_wh",
    "power_w",  # last metered power
    "on",
    "online",
    "rejected_readings",  # meter readings of this device rejected in this round
)

STAKER_FIELDS: tuple[str, ...] = (
    "policy",
    "stake_tokens",
    "rewards_tokens",
    "slashed_tokens",
    "rounds_abstained",
    "business",  # last business bonded to, -1 = none
)


@dataclass(frozen=True, slots=True)
class Allocation:
    """One way to allocate the business pool, under its three names."""

    column: str  # per-round result R in the rounds table (ROUND_FIELDS)
    key: str  # in the run summary (``result``, ``efficiency``) and sweep tables (``eff_<key>``)
    label: str  # in figures and reports


#: The mechanism, the two ceilings and the baselines (docs/model.md), in summary order.
ALLOCATIONS: tuple[Allocation, ...] = (
    Allocation("total_result", "lastwatt", "LastWatt"),
    Allocation("oracle_result", "oracle", "oracle"),
    Allocation("equal_result", "equal_split", "equal split"),
    Allocation("random_result", "random_i", "random I"),
    Allocation("quality_oracle_result", "quality_oracle", "quality oracle"),
    Allocation("reweighted_selection_result", "reweighted_selection", "reweighted selection"),
    Allocation("self_proportional_result", "self_proportional", "self-proportional"),
    Allocation("ucb_result", "ucb", "UCB"),
)
CEILINGS = ("oracle", "quality_oracle")  # the others are measured against them
#: LastWatt and the baselines: everything but the ceilings.
COMPARED: tuple[Allocation, ...] = tuple(a for a in ALLOCATIONS if a.key not in CEILINGS)


@dataclass(slots=True)
class RoundResult:
    """Everything one round produced. Arrays are indexed by business / policy / device."""

    round: int
    start_ts: float  # UTC epoch seconds (simulated time mapped onto time.start)
    end_ts: float
    scalars: dict[str, float]  # keys: ROUND_FIELDS
    selected: list[int]
    business: dict[str, np.ndarray]  # keys: BUSINESS_FIELDS, each shape (N,)
    policy: dict[str, np.ndarray]  # keys: POLICY_FIELDS, each shape (P,)
    device_ids: list[str] = field(default_factory=list)
    device: dict[str, np.ndarray] = field(default_factory=dict)  # keys: DEVICE_FIELDS


@dataclass(slots=True)
class RunMeta:
    """Identity of a run, known before round 0; tags every stored point."""

    run_id: str
    site: str
    scenario: str
    seed: int
    business_names: list[str]
    policy_names: list[str]
    device_dialects: dict[str, str] = field(default_factory=dict)  # device id -> dialect
    config: dict[str, Any] = field(default_factory=dict)
