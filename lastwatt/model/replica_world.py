"""The world's Sybil and business entry and exit on the replica axis (docs/replicas.md), the
single run's ``Adversaries`` and ``Presence`` per row. The Sybil's accounts are stakers after
the households (the ``sybil`` policy block), stacked from each replica's own market with
their tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lastwatt.config import Config
from lastwatt.model.adversaries import Adversaries
from lastwatt.model.beliefs import ABSENT_VALUE
from lastwatt.model.world import QUALITY_MAX, QUALITY_MIN, open_rounds, present_at

if TYPE_CHECKING:
    from lastwatt.model.replica_state import ReplicaState
    from lastwatt.model.replicas import ReplicaPlan


def commit_sybil(cfg: Config, wish: np.ndarray, abstain: np.ndarray) -> None:
    """``Adversaries.commit`` for the Sybil's accounts (rows, S): every account bonds its
    business and never abstains."""
    adversaries = Adversaries.of(cfg, wish.shape[1])
    if adversaries.sybil_target.size:
        wish[:, adversaries.sybil] = adversaries.sybil_target[0]
        abstain[:, adversaries.sybil] = False


def capture(plan: ReplicaPlan, businesses: Sequence[int] | np.ndarray) -> np.ndarray:
    """``world.capture`` per row: the share of the selected slots held by ``businesses`` (an
    adversary's; NaN without one, or in a row without a slot)."""
    n_sel = plan.n_selected
    if len(businesses) == 0:
        return np.full(len(n_sel), np.nan)
    held = np.isin(np.arange(plan.selected.shape[1]), businesses)
    hits = (plan.selected & held).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_sel > 0, hits / n_sel, np.nan)


@dataclass(eq=False)
class Presence:
    """``presence.Presence`` of a batch: entry and exit rounds are the config's, so which
    businesses are open is the same in every replica (N,); the priors of the entrants are not
    (each replica's true quality and shared rating error, (R, N))."""

    enters: np.ndarray
    exits: np.ndarray
    open: np.ndarray  # (N,) bool, of the latest round
    rating_error: np.ndarray  # (R, N)
    uninformed: float | None

    @classmethod
    def of(cls, st: ReplicaState) -> Presence:
        """At round 0: closed businesses are valued as absent (``PublicBeliefs.leave``)."""
        cfg = st.cfg
        enters, exits = open_rounds(st.quality.shape[1], [(p.business, p.enters, p.exits)
                                                         for p in cfg.world.presence])
        biz = cfg.businesses
        uninformed = ((biz.quality_low + biz.quality_high) / 2
                      if cfg.world.entry_prior == "uninformed" else None)
        presence = cls(enters, exits, present_at(0, enters, exits), st.rating - st.quality,
                       uninformed)
        closed = np.flatnonzero(~presence.open)
        if closed.size:
            _revalue(st, presence.open, closed)
        return presence

    def available(self) -> np.ndarray | None:
        """(N,) the open businesses; None when every business is open."""
        return None if self.open.all() else self.open


def _revalue(st: ReplicaState, is_open: np.ndarray, businesses: np.ndarray) -> None:
    """``Consideration.refresh`` of ``businesses`` in every replica: decay * noise + base,
    the base ``ABSENT_VALUE`` where closed (``PublicBeliefs.base``)."""
    decay = st.decay[:, businesses]
    base = decay * st.rating[:, businesses] + st.news[:, businesses]
    base = np.where(is_open[businesses], base, ABSENT_VALUE).astype(np.float32)
    value = decay.astype(np.float32)[:, :, None] * st.noise[:, businesses]
    value += base[:, :, None]
    st.value[:, businesses] = value
    st.soft_stale[:, businesses] = True


def open_round(st: ReplicaState, round_index: int) -> None:
    """``Presence.update``: who is open in ``round_index``; an entrant's belief restarts from
    its prior (no news), an exit is valued as absent, and a selection kept over idle rounds
    is dropped (``IdleSelection.get``: it holds only under the same availability)."""
    p = st.presence
    now = present_at(round_index, p.enters, p.exits)
    entered, left = np.flatnonzero(now & ~p.open), np.flatnonzero(p.open & ~now)
    if not (entered.size or left.size):
        return
    prior = st.quality[:, entered] + p.rating_error[:, entered]
    if p.uninformed is not None:
        prior = np.full(prior.shape, p.uninformed)
    st.rating[:, entered] = np.clip(prior, QUALITY_MIN, QUALITY_MAX)
    st.decay[:, entered], st.news[:, entered], st.observations[:, entered] = 1.0, 0.0, 0
    p.open = now
    _revalue(st, now, np.concatenate([entered, left]))
    st.kept[:] = False


def release(st: ReplicaState, at: Any) -> None:
    """``Presence.release`` for rows ``at``: bonds on a closed business are returned (those
    stakers choose afresh, loyal ones too)."""
    is_open = st.presence.open
    if is_open.all():
        return
    on_closed = ~is_open[st.choice[at]] & st.has_choice[at]
    st.has_choice[at] = st.has_choice[at] & ~on_closed
    st.loyal_pending[at] = st.loyal_pending[at] | on_closed.any(axis=1)


def commit(st: ReplicaState, wish: np.ndarray, abstain: np.ndarray) -> None:
    """``Adversaries.commit`` for the Sybil, then a wish for a closed business sits out."""
    commit_sybil(st.cfg, wish, abstain)
    if not st.presence.open.all():
        abstain |= ~st.presence.open[wish]


def open_only(st: ReplicaState, weight: np.ndarray) -> np.ndarray:
    """The selection weight of open businesses only (``select_active_set``'s ``available``)."""
    is_open = st.presence.open
    return weight if is_open.all() else np.where(is_open, weight, 0.0)


def entrant_capture(st: ReplicaState, plan: ReplicaPlan) -> np.ndarray:
    """``world.capture`` of the open entrants per row (NaN: none open, or nothing selected)."""
    p, n_sel = st.presence, plan.n_selected
    entrants = np.flatnonzero((p.enters > 0) & p.open)
    if not entrants.size:
        return np.full(len(n_sel), np.nan)
    hits = plan.selected[:, entrants].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_sel > 0, hits / n_sel, np.nan)
