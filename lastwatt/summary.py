"""A run's summary: LastWatt against the oracle and the baselines, and where energy went."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lastwatt.result import ALLOCATIONS

RESULT_COLUMNS = {a.key: a.column for a in ALLOCATIONS}  # summary key -> rounds column


def last_quarter(n: int) -> slice:
    """The last quarter of ``n`` rows (of daytime rounds): has the run settled by then?"""
    return slice(n * 3 // 4, None)


def best_businesses(businesses: pd.DataFrame, active_set: int) -> set[int]:
    """The ``active_set`` businesses with the best realised mean performance (the run's
    revealed q_i; p_i is drawn for every business every round)."""
    mean_perf = businesses.groupby("business", sort=False)["performance"].mean()
    return set(mean_perf.nlargest(active_set).index)


def top_quality_share(businesses: pd.DataFrame, rounds: pd.DataFrame, active_set: int) -> float:
    """Share of the selected set, over the last quarter of settling rounds, that belongs to
    :func:`best_businesses`."""
    best = best_businesses(businesses, active_set)
    lit = rounds.loc[rounds["business_pool_wh"] > 0, "round"].to_numpy()
    tail = lit[last_quarter(len(lit))]
    chosen = businesses[businesses["round"].isin(tail) & (businesses["selected"] > 0)]
    return float(chosen["business"].isin(best).mean()) if len(chosen) else float("nan")


def summarise(rounds: pd.DataFrame, stakers: pd.DataFrame) -> dict[str, Any]:
    """The run's summary (``run.json``): results and efficiency per allocation, energy,
    participation, late turnover, final supply and Gini, mean stake per policy."""
    if rounds.empty:
        return {"rounds": 0}
    oracle = float(rounds["oracle_result"].sum())
    results = {name: float(rounds[col].sum()) for name, col in RESULT_COLUMNS.items()}
    daytime = rounds[rounds["business_pool_wh"] > 0]
    tail = daytime.iloc[last_quarter(len(daytime))]
    out: dict[str, Any] = {
        "rounds": len(rounds),
        "energy_kwh": {
            k: round(float(rounds[f"{k}_wh"].sum()) / 1000, 3)
            for k in ("production", "community", "household", "reserve", "business_pool",
                      "unserved_community", "unserved_household", "planned", "metered")
        },
        "result": {k: round(v, 1) for k, v in results.items()},
        "efficiency": {
            k: (round(v / oracle, 4) if oracle > 0 else None) for k, v in results.items()
        },
        # against the realistic ceiling (knows q_i, feeds at most I); can exceed 1 by luck
        "efficiency_vs_quality_oracle": {
            k: (round(v / results["quality_oracle"], 4) if results["quality_oracle"] > 0
                else None) for k, v in results.items()
        },
        "adversary_capture": _mean_or_none(daytime, "adversary_capture"),
        "sybil_capture": _mean_or_none(daytime, "sybil_capture"),
        "entrant_capture": _mean_or_none(daytime, "entrant_capture"),
        "bribe_capture": _mean_or_none(daytime, "bribe_capture"),
        "token_flows": token_flow_totals(rounds),
        "participation_mean": round(float(rounds["participation"].mean()), 4),
        "turnover_last_quarter": round(float(tail["turnover"].mean()), 4) if len(tail) else None,
        "token_supply_final": round(float(rounds["token_supply"].iloc[-1]), 4),
        "stake_gini_final": round(float(rounds["stake_gini"].iloc[-1]), 4),
    }
    if not stakers.empty:
        wealth = stakers.groupby("policy")["stake_tokens"].mean()
        out["mean_stake_by_policy"] = {k: round(float(v), 4) for k, v in wealth.items()}
    return out


FLOW_COLUMNS = ("created", "paid_in", "rewards", "minted", "bribes", "slashed", "treasury")


def token_flow_totals(rounds: pd.DataFrame) -> dict[str, float]:
    """The run's token flows (sums of the rounds' ``<flow>_tokens``) and the supply before the
    first round: supply_final = supply_initial + rewards + minted + bribes - slashed."""
    totals = {k: float(rounds[f"{k}_tokens"].sum()) for k in FLOW_COLUMNS
              if f"{k}_tokens" in rounds}
    first = rounds.iloc[0]
    net = sum(float(first.get(f"{k}_tokens", 0.0)) for k in ("rewards", "minted", "bribes"))
    totals["supply_initial"] = float(first["token_supply"]) - net + float(first["slashed_tokens"])
    totals["supply_final"] = float(rounds["token_supply"].iloc[-1])
    return {k: round(v, 6) for k, v in totals.items()}


def _mean_or_none(rounds: pd.DataFrame, column: str) -> float | None:
    if column not in rounds or not rounds[column].notna().any():
        return None
    return round(float(rounds[column].mean()), 4)


def efficiency_interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and a 95 % t-interval over Monte Carlo runs."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        m = float(v.mean()) if len(v) else float("nan")
        return m, m, m
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)
