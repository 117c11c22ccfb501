"""The replica axis: R seeds of one configuration as one market (docs/replicas.md).

``ReplicaMarket(cfg, seeds)`` keeps every staker array as ``(R, S)``, every business array as
``(R, N)``, and the stakers' candidate values as ``(R, N, S)``. Each replica draws from its own
``Streams``, call for call as a single run; everything else is vectorised over replicas with
the 1-D code's order of arithmetic (:mod:`lastwatt.model.rowwise`), so replica k is
bit-identical to ``Market(cfg, streams(seeds[k]))`` given the same pools and metered energy.
Steps 3-5 live here, steps 6-7 in :mod:`lastwatt.model.replica_settle`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lastwatt.config import Config
from lastwatt.model import replica_economics, replica_settle, replica_world
from lastwatt.model.contract import Plan
from lastwatt.model.market import Market
from lastwatt.model.replica_state import ReplicaState
from lastwatt.model.replica_support import unsupported
from lastwatt.rng import streams


@dataclass(slots=True)
class ReplicaPlan:
    """``Plan`` with a leading replica axis; ``order[r, :n_selected[r]]`` is ``selected_idx``."""

    round_index: int
    stake_tokens: np.ndarray  # (R, N)
    selected: np.ndarray  # (R, N) bool
    order: np.ndarray  # (R, N) businesses, largest stake first
    n_selected: np.ndarray  # (R,)
    planned_wh: np.ndarray  # (R, N)
    unplaced_wh: np.ndarray  # (R,)
    participation: np.ndarray  # (R,)
    business_pool_wh: np.ndarray  # (R,)
    cap_wh: np.ndarray  # (R, N)
    available: np.ndarray | None = None  # (N,) open businesses (every replica); None: all

    def replica(self, r: int) -> Plan:
        """Replica ``r``'s plan, as ``Market.plan`` returns it."""
        n = self.stake_tokens.shape[1]
        return Plan(
            self.round_index, self.stake_tokens[r], self.selected[r],
            self.order[r, : self.n_selected[r]].tolist(), self.planned_wh[r],
            float(self.unplaced_wh[r]), float(self.participation[r]),
            float(self.business_pool_wh[r]), self.cap_wh[r],
            np.ones(n, dtype=bool) if self.available is None else self.available.copy(),
        )


class ReplicaMarket:
    """The markets of ``seeds`` (one configuration), driven together by ``plan`` / ``settle``.

    ``ValueError`` when :func:`lastwatt.model.replica_support.unsupported` names a setting:
    run such configurations one seed at a time.
    """

    def __init__(self, cfg: Config, seeds: Sequence[int]) -> None:
        reason = unsupported(cfg)
        if reason is not None:
            raise ValueError(f"a replica batch does not support {reason} yet")
        self.seeds = list(seeds)
        # each replica's initial state is its single run's, built by the single run's code
        markets = [Market(cfg, streams(seed)) for seed in self.seeds]
        self.state = ReplicaState.stack(cfg, markets)
        self.policy_names = markets[0].policy_names
        self.business_names = markets[0].business_names
        self.n_replicas, self.n_stakers = len(self.seeds), markets[0].n_stakers  # Sybil too
        self.n_businesses = cfg.businesses.count
        self._cfg = cfg

    # ---- steps 3-5 -----------------------------------------------------------------------
    def plan(self, round_index: int, business_pool_wh: np.ndarray, round_s: float,
             draw_factor: np.ndarray | None = None) -> ReplicaPlan:
        """Steps 3-5 of every replica; ``business_pool_wh`` (R,), ``draw_factor`` (N,)."""
        st = self.state
        pool = np.asarray(business_pool_wh, dtype=float).reshape(self.n_replicas)
        if not np.all(np.isfinite(pool) & (pool >= 0)):
            raise ValueError("business_pool_wh must be finite and >= 0 in every replica")
        replica_world.open_round(st, round_index)  # entry and exit
        idle = (pool == 0) & st.has_bonded
        if not idle.all():
            st.decide_and_bond(~idle)  # step 3
        stake, order, n_selected = st.stake_and_select(idle)  # step 4
        cap = st.caps(round_s)
        if draw_factor is not None:
            cap = cap * np.clip(np.asarray(draw_factor, dtype=float), 0.0, 1.0)
        selected = np.zeros(stake.shape, dtype=bool)
        ranks = np.arange(self.n_businesses)[None, :] < n_selected[:, None]
        np.put_along_axis(selected, order, ranks, axis=1)
        planned, unplaced = replica_economics.allocate(st, pool, stake, selected, cap)  # step 5
        st.plan = ReplicaPlan(round_index, stake, selected, order, n_selected, planned,
                              unplaced, st.participation.copy(), pool, cap,
                              st.presence.available())
        return st.plan

    # ---- steps 6-7 -----------------------------------------------------------------------
    def settle(self, plan: ReplicaPlan, metered_wh: np.ndarray) -> replica_settle.ReplicaOutcome:
        """Steps 6-7 of every replica for the latest plan and metered energy (R, N)."""
        if plan is not self.state.plan:
            raise RuntimeError("settle() needs the plan returned by the latest plan() call")
        self.state.plan = None
        metered = np.asarray(metered_wh, dtype=float).reshape(plan.planned_wh.shape)
        return replica_settle.settle(self.state, self._cfg, plan, metered)

    def stakers_table(self, r: int) -> pd.DataFrame:
        """Replica ``r``'s final per-staker table (``Market.stakers_table``)."""
        st = self.state
        return pd.DataFrame(
            {
                "policy": pd.Categorical.from_codes(st.policy_codes, categories=self.policy_names),
                "stake_tokens": st.wealth[r].copy(),
                "rewards_tokens": st.rewards[r].copy(),
                "slashed_tokens": st.slashed[r].copy(),
                "rounds_abstained": st.abstained[r].astype(np.int64),
                "business": np.where(st.has_choice[r], st.choice[r], -1),
            }
        )
