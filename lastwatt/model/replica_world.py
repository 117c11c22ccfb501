"""Adversaries of the world on the replica axis (docs/replicas.md): a Sybil's accounts, the
single run's ``Adversaries`` per row. Its accounts are stakers after the households (the
``sybil`` policy block), stacked from each replica's own market with their tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lastwatt.config import Config
from lastwatt.model.adversaries import Adversaries

if TYPE_CHECKING:
    from lastwatt.model.replicas import ReplicaPlan


def commit_sybil(cfg: Config, wish: np.ndarray, abstain: np.ndarray) -> None:
    """``Adversaries.commit`` for the Sybil's accounts (rows, S): every account bonds its
    business and never abstains."""
    adversaries = Adversaries.of(cfg, wish.shape[1])
    if adversaries.sybil_target.size:
        wish[:, adversaries.sybil] = adversaries.sybil_target[0]
        abstain[:, adversaries.sybil] = False


def sybil_capture(cfg: Config, plan: ReplicaPlan) -> np.ndarray:
    """``world.capture`` of the Sybil's business per row (NaN without a Sybil or a slot)."""
    sybil, n_sel = cfg.adversaries.sybil, plan.n_selected
    if not sybil.supply_share > 0:
        return np.full(len(n_sel), np.nan)
    hits = plan.selected[:, sybil.business].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_sel > 0, hits / n_sel, np.nan)
