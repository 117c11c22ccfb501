"""Every replica's run summary (and the sweep's top-quality share) from the rounds as they are
settled, without the tables: what :func:`lastwatt.summary.summarise` and
:func:`lastwatt.summary.top_quality_share` compute from a run's tables, with the same bits
(column sums in numpy's pairwise order, means as pandas takes them), in memory O(R x daytime
rounds) for the subsets only (docs/replicas.md, "The vectorised batch engine").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lastwatt.replica_sums import KahanSums, PairwiseSums
from lastwatt.summary import FLOW_COLUMNS, RESULT_COLUMNS

SPLIT_ENERGY = ("production", "community", "household", "business_pool", "unserved_community",
                "unserved_household")
ENERGY = (*SPLIT_ENERGY[:3], "reserve", *SPLIT_ENERGY[3:], "planned", "metered")
# whole-column sums: the results, the energy the round makes, participation, the token flows
SUMMED = (*RESULT_COLUMNS.values(), "reserve_wh", "planned_wh", "metered_wh", "participation",
          *(f"{k}_tokens" for k in FLOW_COLUMNS))
FIRST = ("token_supply", "rewards_tokens", "minted_tokens", "bribes_tokens", "slashed_tokens")
CAPTURES = ("adversary_capture", "sybil_capture", "entrant_capture", "bribe_capture")


class SummaryColumns:
    """What the summaries need of R replicas' rounds tables; :meth:`add` once per round.

    ``daytime`` (R, rounds): the rounds with a business pool (known before round 0), over
    which the captures are averaged and whose last quarter gives the late turnover and the
    top-quality share."""

    def __init__(self, rounds: int, daytime: np.ndarray, n_businesses: int) -> None:
        r = len(daytime)
        self.sums = PairwiseSums(rounds, (len(SUMMED), r))
        self.totals: np.ndarray | None = None  # the sums, once every round is in
        self.daytime, self.rounds = daytime, rounds
        self.n_day = daytime.sum(axis=1)
        self.tail_from = self.n_day * 3 // 4  # summary.last_quarter
        self.tail_turnover = np.zeros((r, int((self.n_day - self.tail_from).max(initial=0))))
        self.pos = np.zeros(r, dtype=np.int64)  # each replica's daytime rows so far
        self.captures: dict[str, np.ndarray] = {}  # allocated once a value is not NaN
        self.first: dict[str, np.ndarray] = {}
        self.last: dict[str, np.ndarray] = {}
        self.performance = KahanSums((r, n_businesses))
        self.tail_selected = np.zeros((r, n_businesses), dtype=np.int64)

    def add(self, k: int, row: dict[str, np.ndarray], performance: np.ndarray,
            selected: np.ndarray) -> None:
        """Round ``k``: ``row`` the rounds table's columns (R,) (at least SUMMED, FIRST,
        CAPTURES, turnover, stake_gini), the business table's performance and selection."""
        self.sums.add(np.stack([row[c] for c in SUMMED]))
        if k == 0:
            self.first = {c: row[c].copy() for c in FIRST}
        if k == self.rounds - 1:
            self.last = {c: row[c].copy() for c in ("token_supply", "stake_gini")}
        self.performance.add(performance)
        day = np.flatnonzero(self.daytime[:, k])
        if not len(day):
            return
        pos = self.pos[day]
        tail = pos >= self.tail_from[day]
        self.tail_turnover[day[tail], (pos - self.tail_from[day])[tail]] = row["turnover"][
            day[tail]]
        self.tail_selected[day[tail]] += selected[day[tail]]
        for c in CAPTURES:
            self._capture(c, row[c][day], day, pos)
        self.pos[day] += 1

    def _capture(self, name: str, values: np.ndarray, day: np.ndarray, pos: np.ndarray) -> None:
        store = self.captures.get(name)
        if store is None:
            if np.isnan(values).all():
                return
            store = self.captures[name] = np.full((len(self.daytime), int(self.n_day.max())),
                                                  np.nan)
        store[day, pos] = values

    def summary(self, r: int, energy_wh: dict[str, float], stakers: pd.DataFrame
                ) -> dict[str, Any]:
        """Replica ``r``'s ``summarise(rounds, stakers)``; ``energy_wh``: its split's sums."""
        if self.totals is None:
            self.totals = self.sums.total()
        total = self.totals[:, r]
        col = dict(zip(SUMMED, total.tolist(), strict=True))
        oracle = col["oracle_result"]
        results = {name: col[c] for name, c in RESULT_COLUMNS.items()}
        energy = {**energy_wh, **{k: col[f"{k}_wh"] for k in ("reserve", "planned", "metered")}}
        q = results["quality_oracle"]
        n_tail = int(self.n_day[r] - self.tail_from[r])
        out: dict[str, Any] = {
            "rounds": self.rounds,
            "energy_kwh": {k: round(float(energy[k]) / 1000, 3) for k in ENERGY},
            "result": {k: round(v, 1) for k, v in results.items()},
            "efficiency": {k: (round(v / oracle, 4) if oracle > 0 else None)
                           for k, v in results.items()},
            "efficiency_vs_quality_oracle": {k: (round(v / q, 4) if q > 0 else None)
                                             for k, v in results.items()},
            **{c: self._capture_mean(c, r) for c in CAPTURES},
            "token_flows": self._flows(r, col),
            "participation_mean": round(col["participation"] / self.rounds, 4),
            "turnover_last_quarter": (round(float(self.tail_turnover[r, :n_tail].sum() / n_tail),
                                            4) if n_tail else None),
            "token_supply_final": round(float(self.last["token_supply"][r]), 4),
            "stake_gini_final": round(float(self.last["stake_gini"][r]), 4),
        }
        if not stakers.empty:
            wealth = stakers.groupby("policy")["stake_tokens"].mean()
            out["mean_stake_by_policy"] = {k: round(float(v), 4) for k, v in wealth.items()}
        return out

    def _capture_mean(self, name: str, r: int) -> float | None:
        """``summary._mean_or_none`` over the daytime rows: NaN as 0 in the sum, not counted."""
        store = self.captures.get(name)
        values = None if store is None else store[r, : self.n_day[r]]
        if values is None or np.isnan(values).all():
            return None
        return round(float(np.nan_to_num(values, nan=0.0).sum() / (~np.isnan(values)).sum()), 4)

    def _flows(self, r: int, col: dict[str, float]) -> dict[str, float]:
        """``summary.token_flow_totals``."""
        totals = {k: col[f"{k}_tokens"] for k in FLOW_COLUMNS}
        first = {c: float(v[r]) for c, v in self.first.items()}
        net = sum(first[f"{k}_tokens"] for k in ("rewards", "minted", "bribes"))
        totals["supply_initial"] = first["token_supply"] - net + first["slashed_tokens"]
        totals["supply_final"] = float(self.last["token_supply"][r])
        return {k: round(v, 6) for k, v in totals.items()}

    def top_quality_share(self, r: int, active_set: int) -> float:
        """:func:`lastwatt.summary.top_quality_share` of replica ``r``."""
        mean = self.performance.mean()[r]
        best = np.argsort(-mean, kind="stable")[:active_set]  # nlargest keeps the first of ties
        chosen = self.tail_selected[r]
        n = int(chosen.sum())
        return int(chosen[best].sum()) / n if n else float("nan")
