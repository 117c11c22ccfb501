"""A run's summary: LastWatt against the oracle and the baselines, and where energy went."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

RESULT_COLUMNS = {
    "lastwatt": "total_result",
    "oracle": "oracle_result",
    "equal_split": "equal_result",
    "random_i": "random_result",
    "quality_oracle": "quality_oracle_result",
    "reweighted_selection": "reweighted_selection_result",
    "self_proportional": "self_proportional_result",
    "ucb": "ucb_result",
}


def summarise(rounds: pd.DataFrame, stakers: pd.DataFrame) -> dict[str, Any]:
    """The run's summary (results, efficiencies, energy, staking) from its tables."""
    if rounds.empty:
        return {"rounds": 0}
    oracle = float(rounds["oracle_result"].sum())
    results = {name: float(rounds[col].sum()) for name, col in RESULT_COLUMNS.items()}
    daytime = rounds[rounds["business_pool_wh"] > 0]
    tail = daytime.iloc[len(daytime) * 3 // 4:]  # the last quarter: has it settled?
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
        "participation_mean": round(float(rounds["participation"].mean()), 4),
        "turnover_last_quarter": round(float(tail["turnover"].mean()), 4) if len(tail) else None,
        "token_supply_final": round(float(rounds["token_supply"].iloc[-1]), 4),
        "stake_gini_final": round(float(rounds["stake_gini"].iloc[-1]), 4),
    }
    if not stakers.empty:
        wealth = stakers.groupby("policy")["stake_tokens"].mean()
        out["mean_stake_by_policy"] = {k: round(float(v), 4) for k, v in wealth.items()}
    return out


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
