"""Which configurations a replica batch runs (docs/replicas.md); the rest run one seed at a
time. A whitelist: any model setting off its default that is not listed here (a new feature
too) makes :func:`unsupported` name it, so a batch never silently differs from single runs."""

from __future__ import annotations

from typing import Any

from lastwatt.config import Config

SUPPORTED_POLICIES = frozenset({"softmax", "herding", "loyal", "greedy", "random",
                                "epsilon_greedy", "ewa", "q_learning"})
# what each replica's own run handles with the single run's code; every other section (a new
# one too) must be at its defaults or whitelisted in FREE
RUN_SECTIONS = frozenset({"seed", "rounds", "site", "scenario", "time", "container", "weather",
                          "demand", "devices", "output", "mqtt", "influx"})
# settings the batch follows whatever their value (the rest below are checked by value)
FREE = frozenset({
    "population.households", "population.tokens_per_household", "population.policies",
    "population.abstain_probability", "population.abstain_by_policy",
    "population.rating_noise_sd", "population.temperature", "population.learning_rate",
    "population.consideration_set", "population.epsilon", "population.ewa",
    "population.q_learning", "population.max_businesses_per_staker",
    "businesses.count", "businesses.active_set", "businesses.quality_low",
    "businesses.quality_high", "businesses.qualities", "businesses.max_power_w_low",
    "businesses.max_power_w_high", "businesses.performance_sd", "businesses.revenue_per_result",
    "mechanism.reward_share", "mechanism.slash_fraction", "mechanism.slash_unselected",
    "mechanism.slash_unavailable", "mechanism.stake_weighting",
    "mechanism.oracle_respects_active_set", "mechanism.target_bonding_rate",
    "mechanism.inflation_change", "mechanism.inflation_rate", "mechanism.unbonding_rounds",
    "mechanism.surplus", "mechanism.conviction_half_life_rounds", "mechanism.reward_mode",
    "mechanism.price_per_kwh",
    "world.endowment", "world.pareto_shape", "world.rating_shared_sd", "world.quality_drift_sd",
    "world.jumps", "world.performance_sd_by_business", "world.presence", "world.entry_prior",
    "adversaries.collusion", "adversaries.bribery", "adversaries.sybil",
})


def _flat(prefix: str, node: Any) -> dict[str, Any]:
    if not isinstance(node, dict) or prefix in FREE:
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(_flat(f"{prefix}.{key}", value))
    return out


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def _combined(cfg: Config) -> str | None:
    """The batch's learners, consideration sets and k > 1 slots (replica_learning,
    replica_candidates, replica_slots) with a world or mechanism feature whose batched code
    assumes one slot and every business considered, and that no test has compared yet."""
    pop, mech = cfg.population, cfg.mechanism
    ours = {
        "population.max_businesses_per_staker": pop.max_businesses_per_staker > 1,
        "population.consideration_set": 0 < pop.consideration_set < cfg.businesses.count,
        "population.policies: ewa, q_learning": any(
            pop.policies.get(name, 0) > 0 for name in ("ewa", "q_learning")),
    }
    theirs = {
        "mechanism.unbonding_rounds": mech.unbonding_rounds > 0,
        "mechanism.stake_weighting = conviction": mech.stake_weighting == "conviction",
        "adversaries.sybil": cfg.adversaries.sybil.supply_share > 0,
        "world.presence": bool(cfg.world.presence),
    }
    for name, used in ours.items():
        for other, on in theirs.items():
            if used and on:
                return f"{name} with {other}"
    return None


def unsupported(cfg: Config) -> str | None:
    """The first setting a replica batch does not handle yet (None: the batch runs ``cfg``)."""
    combined = _combined(cfg)
    if combined is not None:
        return combined
    pop = cfg.population
    other = sorted(n for n, share in pop.policies.items() if share > 0
                   and n not in SUPPORTED_POLICIES)
    checks = {
        f"population.policies: {other[0] if other else ''}": bool(other),
    }
    for name, bad in checks.items():
        if bad:
            return name
    default = Config()
    for section in sorted(set(Config.model_fields) - RUN_SECTIONS):
        now = _flat(section, _dump(getattr(cfg, section)))
        base = _flat(section, _dump(getattr(default, section)))
        for name, value in now.items():
            if name not in FREE and value != base.get(name):
                return name
    return None
