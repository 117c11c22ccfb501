"""Config of a world that moves and of adversaries (``[world]``, ``[adversaries]``;
docs/model.md, "A world that moves" and "Adversaries"). ``lastwatt.config.run`` composes them and
checks the cross-references (:func:`check_world`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lastwatt.config.base import Section


class JumpConfig(Section):
    """One scheduled change of a business's true quality."""
    round: int = Field(ge=0, description="round at whose start the quality changes")
    business: int = Field(ge=0, description="business index")
    quality: float = Field(ge=-10, le=10, description="its new true quality q_i")


class PresenceConfig(Section):
    """When one business is open: from round ``enters`` up to, not including, ``exits``."""
    business: int = Field(ge=0, description="business index")
    enters: int = Field(0, ge=0, description="first round it is open (0: from the start)")
    exits: int | None = Field(None, ge=1, description="first round it is closed (None: never)")


class WorldConfig(Section):
    """A world that moves: quality drift and jumps, sigma_i, shared rating errors, endowments,
    business entry and exit."""
    quality_drift_sd: float = Field(
        0.0, ge=0, description="sd of the per-round random walk of every q_i (clipped to ±10)"
    )
    jumps: list[JumpConfig] = Field(default_factory=list, description="scheduled q_i changes")
    performance_sd_by_business: list[float] | None = Field(
        None, description="sigma_i per business (replaces businesses.performance_sd)"
    )
    rating_shared_sd: float = Field(
        0.0, ge=0, description="sd of a rating error shared by every staker (per business)"
    )
    endowment: Literal["equal", "uniform", "pareto"] = Field(
        "equal", description="household tokens: all equal, U(0, 2 mean), or Pareto (whales)"
    )
    pareto_shape: float = Field(1.5, gt=1, description="Pareto tail index (smaller: fatter)")
    presence: list[PresenceConfig] = Field(
        default_factory=list,
        description="business entry and exit: {business, enters = 0, exits} each, open in "
        "rounds enters <= t < exits (no exits: never closes; unlisted: open the whole run)",
    )
    entry_prior: Literal["rating", "uninformed"] = Field(
        "rating", description="an entrant's prior: its rating q_i + e_i as at round 0, or "
        "uninformed: the middle of [quality_low, quality_high] (plus personal noise either way)"
    )


class CollusionConfig(Section):
    """Colluders: a share of the stakers always bonds one named business."""
    share: float = Field(0.0, ge=0, le=1, description="share of stakers that collude")
    business: int = Field(0, ge=0, description="the business they always bond to")


class SybilConfig(Section):
    """One actor's tokens spread equally over many extra accounts that all bond one business."""
    supply_share: float = Field(
        0.0, ge=0, lt=1, description="share of the round-0 token supply the actor holds (0: none)"
    )
    accounts: int = Field(1, ge=1, description="accounts its tokens are split over")
    business: int = Field(0, ge=0, description="the business every account bonds to")


class BriberyConfig(Section):
    """A bribing business pays a share of its revenue (what its energy is worth to it) to its
    stakers, pro rata to stake."""
    share: float = Field(0.0, ge=0, le=1, description="share of its revenue (metered kWh x "
                         "value_per_kwh) paid as bribes; 0 = off")
    business: int = Field(0, ge=0, description="the bribing business")
    value_per_kwh: float | None = Field(
        None, ge=0, description="tokens a kWh earns the briber; default mechanism.price_per_kwh"
    )


class AdversariesConfig(Section):
    """Adversaries, each block reported separately (adversary, Sybil and bribe capture)."""
    collusion: CollusionConfig = CollusionConfig()
    sybil: SybilConfig = SybilConfig()
    bribery: BriberyConfig = BriberyConfig()


def check_world(world: WorldConfig, adversaries: AdversariesConfig, n_businesses: int,
                rounds: int) -> None:
    """Cross-references against the run: raise ValueError naming the bad field."""
    for i, jump in enumerate(world.jumps):
        if jump.business >= n_businesses:
            raise ValueError(f"world.jumps[{i}].business={jump.business}: unknown business "
                             f"(0..{n_businesses - 1})")
        if jump.round >= rounds:
            raise ValueError(f"world.jumps[{i}].round={jump.round} is beyond the run "
                             f"({rounds} rounds)")
    sd = world.performance_sd_by_business
    if sd is not None and (len(sd) != n_businesses or min(sd) < 0):
        raise ValueError(f"world.performance_sd_by_business needs {n_businesses} values >= 0")
    if adversaries.collusion.share > 0 and adversaries.collusion.business >= n_businesses:
        raise ValueError(f"adversaries.collusion.business={adversaries.collusion.business}: "
                         f"unknown business (0..{n_businesses - 1})")
    sybil = adversaries.sybil
    if sybil.supply_share > 0 and sybil.business >= n_businesses:
        raise ValueError(f"adversaries.sybil.business={sybil.business}: unknown business "
                         f"(0..{n_businesses - 1})")
    bribery = adversaries.bribery
    if bribery.share > 0 and bribery.business >= n_businesses:
        raise ValueError(f"adversaries.bribery.business={bribery.business}: unknown business "
                         f"(0..{n_businesses - 1})")
    _check_presence(world.presence, n_businesses, rounds)


def _check_presence(presence: list[PresenceConfig], n_businesses: int, rounds: int) -> None:
    seen: set[int] = set()
    for i, p in enumerate(presence):
        where = f"world.presence[{i}]"
        if p.business >= n_businesses:
            raise ValueError(f"{where}.business={p.business}: unknown business "
                             f"(0..{n_businesses - 1})")
        if p.business in seen:
            raise ValueError(f"{where}.business={p.business} is listed twice: one entry each")
        seen.add(p.business)
        if p.enters >= rounds:
            raise ValueError(f"{where}.enters={p.enters} is beyond the run ({rounds} rounds)")
        if p.exits is not None and p.exits <= p.enters:
            raise ValueError(f"{where}.exits={p.exits} is not after enters={p.enters}: "
                             "a business exits after it enters")
        if p.exits is not None and p.exits > rounds:
            raise ValueError(f"{where}.exits={p.exits} is beyond the run ({rounds} rounds); "
                             "leave it out to stay open")
