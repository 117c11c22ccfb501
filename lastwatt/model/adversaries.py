"""Committed stakers (``[adversaries]``; docs/model.md, "Adversaries"): colluders and a
Sybil's accounts bond one business whatever their policy says, and never abstain; otherwise
they follow every rule (rewards, slashing per account, unbonding).

- colluders: the last ``collusion.share`` of the households;
- Sybil: ``sybil.accounts`` extra stakers after the households (the market's ``sybil`` policy
  block), holding ``sybil.supply_share`` of the round-0 supply in equal parts
  (:func:`lastwatt.model.world.sybil_tokens`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lastwatt.config import Config
from lastwatt.model.world import capture


@dataclass(frozen=True, slots=True)
class Adversaries:
    colluders: slice
    collusion_target: np.ndarray  # [business] or empty: no colluders
    sybil: slice
    sybil_target: np.ndarray  # [business] or empty: no Sybil

    @classmethod
    def of(cls, cfg: Config, n_stakers: int) -> Adversaries:
        """Stakers 0..households-1 are households, the rest the Sybil's accounts."""
        collusion, households = cfg.adversaries.collusion, cfg.population.households
        n_colluders = round(collusion.share * households)
        return cls(
            slice(households - n_colluders, households),
            np.array([collusion.business] if n_colluders else [], int),
            slice(households, n_stakers),
            np.array([cfg.adversaries.sybil.business] if n_stakers > households else [], int),
        )

    def commit(self, wish: np.ndarray, abstain: np.ndarray) -> np.ndarray:
        """Write the committed stakers' wishes into ``wish`` (k, S); the new abstain mask."""
        committed = [(s, t) for s, t in ((self.colluders, self.collusion_target),
                                         (self.sybil, self.sybil_target)) if t.size]
        if not committed:
            return abstain
        abstain = abstain.copy()
        for stakers, target in committed:
            wish[:, stakers] = target[0]
            abstain[stakers] = False
        return abstain

    def capture(self, selected_idx: list[int]) -> dict[str, float]:
        """Round scalars: share of the selected slots held by each adversary's business."""
        return {
            "adversary_capture": capture(selected_idx, self.collusion_target)
            if self.collusion_target.size else math.nan,
            "sybil_capture": capture(selected_idx, self.sybil_target)
            if self.sybil_target.size else math.nan,
        }
