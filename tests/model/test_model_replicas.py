"""The replica axis: replica k of a ReplicaMarket is bit-identical to the single Market of its
seed fed the same pools and metered energy (every plan and outcome array, every round scalar,
the stakers table), and unsupported configurations are refused by name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lastwatt.config import Config
from lastwatt.model.allocation import water_fill
from lastwatt.model.market import Market
from lastwatt.model.oracle import oracle_allocation
from lastwatt.model.replica_support import unsupported
from lastwatt.model.replicas import ReplicaMarket
from lastwatt.model.rowwise import oracle_rows, water_fill_rows
from lastwatt.rng import streams

SEEDS = [7, 8, 9, 1234]
ROUNDS = 60

BUSY_WORLD = {
    "businesses.qualities": [9.0 - i for i in range(20)],
    "adversaries.collusion.share": 0.15,
    "adversaries.collusion.business": 17,
    "world.quality_drift_sd": 0.3,
    "world.jumps": [{"round": 20, "business": 0, "quality": -8.0}],
    "world.endowment": "pareto",
    "world.rating_shared_sd": 3.0,
    "mechanism.stake_weighting": "quadratic",
    "mechanism.oracle_respects_active_set": True,
    "mechanism.slash_unselected": 0.5,  # scaled slashing of the unselected
    "population.policies": {"softmax": 0.5, "herding": 0.2, "loyal": 0.1, "greedy": 0.2},
    "population.abstain_by_policy": {"herding": 0.2},
    "population.temperature": 0.1,  # large values / T: the softmax guard path
}

# the drawing policies (replica_policies): blocks that draw between the abstention and the
# softmax uniforms, several explorers per round (epsilon 0.3), and no abstention draws at all
DRAWING = {
    "population.policies": {"random": 0.2, "softmax": 0.3, "epsilon_greedy": 0.3,
                            "herding": 0.2},
    "population.epsilon": 0.3,
    "population.abstain_by_policy": {"random": 0.1},
}
DRAWING_NO_ABSTAIN = {
    **BUSY_WORLD,
    "population.policies": {"epsilon_greedy": 0.5, "loyal": 0.2, "random": 0.3},
    "population.abstain_probability": 0.0,
    "population.abstain_by_policy": {},
}
# the payoff-driven policies (replica_learning): foregone payoffs, strategic abstention in both
# (negative payoffs: low qualities, scaled slashing of the unselected), explorers
LEARNING = {
    **BUSY_WORLD,
    "population.policies": {"ewa": 0.3, "softmax": 0.2, "q_learning": 0.3, "random": 0.2},
    "population.ewa.foregone_weight": 0.5,
    "population.ewa.sensitivity": 30.0,
    "population.ewa.abstain_when_negative": True,
    "population.q_learning.epsilon": 0.2,
}
LEARNING_DEFAULTS = {  # colluders inside a learning block: they learn from their own wish
    "population.policies": {"q_learning": 0.4, "herding": 0.2, "ewa": 0.4},
    "population.abstain_probability": 0.0,
    "adversaries.collusion.share": 0.5,
    "adversaries.collusion.business": 3,
}
# consideration sets (replica_candidates): every policy choosing among its own c candidates
CONSIDERED = {
    "population.consideration_set": 4,
    "population.policies": {"softmax": 0.3, "herding": 0.1, "loyal": 0.1, "greedy": 0.1,
                            "random": 0.1, "epsilon_greedy": 0.1, "ewa": 0.1, "q_learning": 0.1},
    "population.epsilon": 0.3,
    "population.ewa.foregone_weight": 0.5,
}
CONSIDERED_BUSY = {**LEARNING, "population.consideration_set": 7}
# k > 1 businesses per staker (replica_slots): every policy that allows it, draws without
# replacement, greedy's top k, herding's k targets, stake split and paid over the slots
SLOTS = {
    "population.max_businesses_per_staker": 3,
    "population.policies": {"softmax": 0.3, "herding": 0.1, "loyal": 0.1, "greedy": 0.1,
                            "random": 0.2, "epsilon_greedy": 0.2},
    "population.epsilon": 0.3,
    "population.abstain_by_policy": {"greedy": 0.2},
}
SLOTS_BUSY = {**BUSY_WORLD, **SLOTS, "population.consideration_set": 5,
              "population.policies": {"random": 0.2, "epsilon_greedy": 0.2, "softmax": 0.2,
                                      "herding": 0.2, "loyal": 0.1, "greedy": 0.1}}
CONFIGS = {"default": {}, "busy_world": BUSY_WORLD, "drawing": DRAWING,
           "drawing_no_abstain": DRAWING_NO_ABSTAIN, "learning": LEARNING,
           "learning_defaults": LEARNING_DEFAULTS, "considered": CONSIDERED,
           "considered_busy": CONSIDERED_BUSY, "slots": SLOTS, "slots_busy": SLOTS_BUSY}


# the mechanism's economics (lastwatt.model.replica_economics), each on the busy world, where
# caps bind, stakers switch (drift, a jump, abstention) and some businesses publish a loss
REVENUE_BRIBERY = {**BUSY_WORLD, "mechanism.reward_mode": "revenue",
                   "mechanism.price_per_kwh": 0.03, "adversaries.bribery.share": 0.4,
                   "adversaries.bribery.business": 2}
BRIBERY_OWN_VALUE = {**BUSY_WORLD, "adversaries.bribery.share": 1.0,
                     "adversaries.bribery.business": 12, "adversaries.bribery.value_per_kwh": 0.5}
INFLATION = {**BUSY_WORLD, "mechanism.inflation_rate": 0.01, "mechanism.inflation_change": 0.003,
             "mechanism.target_bonding_rate": 0.85}  # abstention: bonding rate near target
SURPLUS_RESERVE = {**BUSY_WORLD, "mechanism.surplus": "reserve"}
SURPLUS_POSITIVE = {**BUSY_WORLD, "mechanism.surplus": "positive_expected",
                    "businesses.qualities": [3.0 - 0.5 * i for i in range(20)]}
UNBONDING = {**BUSY_WORLD, "mechanism.unbonding_rounds": 3}
CONVICTION = {**BUSY_WORLD, "mechanism.stake_weighting": "conviction",
              "mechanism.conviction_half_life_rounds": 3.0}
SYBIL = {**BUSY_WORLD, "adversaries.sybil.supply_share": 0.3, "adversaries.sybil.accounts": 7,
         "adversaries.sybil.business": 4, "population.abstain_probability": 0.1}
# entry and exit: entrants (one in an idle stretch), exits of a top business and of the
# colluders' business, a business open only in between
PRESENCE = {**BUSY_WORLD, "world.presence": [
    {"business": 1, "enters": 10}, {"business": 2, "exits": 30}, {"business": 4, "enters": 7},
    {"business": 5, "enters": 15, "exits": 40}, {"business": 17, "exits": 45}]}
ECONOMICS = {
    "presence": PRESENCE,
    # fewer businesses open than the active set: the UCB baseline must skip closed ones
    "presence_uninformed_few_open": {**PRESENCE, "world.entry_prior": "uninformed",
                                     "mechanism.slash_unavailable": True,
                                     "businesses.active_set": 18},
    "sybil": SYBIL, "sybil_one_account": {**SYBIL, "adversaries.sybil.accounts": 1,
                                          "population.abstain_probability": 0.0},
    "revenue_bribery": REVENUE_BRIBERY, "bribery_own_value": BRIBERY_OWN_VALUE,
    "inflation": INFLATION, "surplus_reserve": SURPLUS_RESERVE,
    "surplus_positive_expected": SURPLUS_POSITIVE, "unbonding": UNBONDING,
    "conviction": CONVICTION,
    # ten selected: the sums over them take numpy's pairwise order (more than 8 values)
    "all_at_once": {**REVENUE_BRIBERY, **INFLATION, **SURPLUS_POSITIVE, **UNBONDING,
                    **CONVICTION, **SYBIL, **PRESENCE, "businesses.active_set": 10},
}


def _pools(rounds: int, seeds: list[int]) -> np.ndarray:
    """(rounds, R) pools, different per replica, with nights (zero pools) and round 0 dark
    for some replicas; large enough in the day that caps bind."""
    rng = np.random.default_rng(99)
    pools = rng.uniform(5_000.0, 90_000.0, size=(rounds, len(seeds)))
    pools[rng.random(pools.shape) < 0.3] = 0.0
    pools[0, ::2] = 0.0
    pools[5:9, 1] = 0.0  # consecutive idle rounds: the kept selection
    return pools


def _metered(planned: np.ndarray, r: int, k: int) -> np.ndarray:
    """What the meters report: the plan with a deterministic shortfall, one business dark."""
    metered = planned * (0.9 + 0.01 * (np.arange(planned.shape[-1]) % 7))
    metered[(r + k) % planned.shape[-1]] = 0.0
    return metered


def _same(a: object, b: object, what: str) -> None:
    a_arr, b_arr = np.asarray(a), np.asarray(b)
    assert a_arr.dtype == b_arr.dtype and a_arr.tobytes() == b_arr.tobytes(), what


@pytest.mark.parametrize("overrides", [*CONFIGS.values(), *ECONOMICS.values()],
                         ids=[*CONFIGS, *ECONOMICS])
def test_replica_k_is_bit_identical_to_the_single_run_of_its_seed(overrides: dict) -> None:
    _check_bit_identical(Config().with_overrides(**overrides), ROUNDS)


@pytest.mark.parametrize("overrides", [DRAWING, SLOTS_BUSY], ids=["drawing", "slots_busy"])
def test_replicas_draw_chunk_by_chunk_as_the_single_run(monkeypatch, overrides: dict) -> None:
    # a large population's blocks draw in chunks (decisions._chunks): small chunks here, so
    # that every drawing block has several
    from lastwatt.model import fastpath

    monkeypatch.setattr(fastpath, "CHUNK_STAKERS", 24)
    _check_bit_identical(Config().with_overrides(**overrides), 12)


def _check_bit_identical(cfg: Config, rounds: int) -> None:
    """Plan, outcome and stakers table of every replica equal its single run's, byte for
    byte, over ``rounds`` rounds of :func:`_pools`."""
    batch = ReplicaMarket(cfg, SEEDS)
    singles = [Market(cfg, streams(seed)) for seed in SEEDS]
    pools = _pools(ROUNDS, SEEDS)
    for k in range(rounds):
        plan = batch.plan(k, pools[k], 3600.0)
        metered = np.stack([_metered(plan.planned_wh[r], r, k) for r in range(len(SEEDS))])
        outcome = batch.settle(plan, metered)
        for r, market in enumerate(singles):
            one = market.plan(k, float(pools[k, r]), 3600.0)
            mine = plan.replica(r)
            for field in ("stake_tokens", "selected", "planned_wh", "cap_wh", "available"):
                _same(getattr(mine, field), getattr(one, field), f"round {k} r {r} {field}")
            assert mine.selected_idx == one.selected_idx, f"round {k} r {r}"
            _same(mine.unplaced_wh, one.unplaced_wh, f"round {k} r {r} unplaced")
            _same(mine.participation, one.participation, f"round {k} r {r} participation")
            out = market.settle(one, metered[r])
            for field in ("performance", "result", "revenue_tokens", "reward_tokens",
                          "slashed_tokens"):
                _same(getattr(outcome, field)[r], getattr(out, field), f"round {k} {field}")
            for name, value in out.scalars.items():
                _same(outcome.scalars[name][r], value, f"round {k} r {r} {name}")
            for name, value in out.policy.items():
                _same(outcome.policy[name][r], value, f"round {k} r {r} policy {name}")
    for r, market in enumerate(singles):
        pd.testing.assert_frame_equal(batch.stakers_table(r), market.stakers_table(),
                                      check_exact=True)


def test_a_batch_of_one_seed_is_its_single_run() -> None:
    cfg = Config().with_overrides(**{"population.households": 50})
    batch, market = ReplicaMarket(cfg, [5]), Market(cfg, streams(5))
    for k in range(20):
        plan, one = batch.plan(k, np.array([40_000.0]), 3600.0), market.plan(k, 40_000.0, 3600.0)
        out = market.settle(one, one.planned_wh)
        mine = batch.settle(plan, plan.planned_wh)
        _same(mine.scalars["total_result"][0], out.scalars["total_result"], f"round {k}")
    pd.testing.assert_frame_equal(batch.stakers_table(0), market.stakers_table(),
                                  check_exact=True)


def test_row_kernels_equal_the_one_dimensional_code_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    rows, n = 600, 20
    open_share = rng.integers(0, n + 1, size=rows) / n
    weight = rng.random((rows, n)) * rng.choice([1e-3, 1.0, 1e4], size=(rows, n))
    weight[rng.random((rows, n)) >= open_share[:, None]] = 0.0
    cap = rng.random((rows, n)) * 1e4
    pool = rng.random(rows) * rng.choice([0.0, 1e3, 3e4, 2e5], size=rows)
    energy, unplaced = water_fill_rows(pool, weight, cap)
    expected = [water_fill(pool[r], weight[r], cap[r]) for r in range(rows)]
    assert energy.tobytes() == np.array([e for e, _ in expected]).tobytes()
    assert unplaced.tobytes() == np.array([u for _, u in expected]).tobytes()
    performance = rng.standard_normal((rows, n)) * 5
    for active in (None, 5):
        oracle = [oracle_allocation(pool[r], cap[r], performance[r], None, active)
                  for r in range(rows)]
        assert oracle_rows(pool, cap, performance, active).tobytes() == np.array(oracle).tobytes()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        # the policy features with world and mechanism features not compared yet
        ({"population.max_businesses_per_staker": 2, "mechanism.unbonding_rounds": 2},
         "population.max_businesses_per_staker with mechanism.unbonding_rounds"),
        ({"population.consideration_set": 5, "world.presence": [{"business": 3, "enters": 10}]},
         "population.consideration_set with world.presence"),
        ({"population.policies": {"ewa": 1.0}, "adversaries.sybil.supply_share": 0.2},
         "population.policies: ewa, q_learning with adversaries.sybil"),
    ],
)
def test_an_unsupported_setting_is_named_and_refused(overrides: dict, named: str) -> None:
    cfg = Config().with_overrides(**overrides)
    assert unsupported(cfg) == named
    with pytest.raises(ValueError, match=named.split(":")[0]):
        ReplicaMarket(cfg, [1, 2])


def test_the_default_and_the_suite_scenarios_are_supported() -> None:
    assert unsupported(Config()) is None
    for overrides in [*CONFIGS.values(), *ECONOMICS.values()]:
        assert unsupported(Config().with_overrides(**overrides)) is None


def test_a_model_setting_off_its_default_and_not_whitelisted_is_refused(monkeypatch) -> None:
    # a feature the batch does not know (here: drift, taken off the whitelist) must not be
    # silently ignored
    from lastwatt.model import replica_support

    monkeypatch.setattr(replica_support, "FREE", replica_support.FREE - {"world.quality_drift_sd"})
    assert unsupported(Config().with_overrides(**{"world.quality_drift_sd": 0.1})) == (
        "world.quality_drift_sd")
    assert unsupported(Config()) is None


def test_beliefs_past_the_decay_floor_stay_bit_identical_and_never_subnormal() -> None:
    """Hundreds of observations drive the weight left on the prior below ``DECAY_FLOOR``:
    the batch flushes it to 0 exactly as the single run does (no subnormals)."""
    cfg = Config().with_overrides(**{"population.households": 20, "businesses.count": 3,
                                     "businesses.active_set": 3})
    batch, market = ReplicaMarket(cfg, [3]), Market(cfg, streams(3))
    for k in range(450):
        plan, one = batch.plan(k, np.array([40_000.0]), 3600.0), market.plan(k, 40_000.0, 3600.0)
        market.settle(one, one.planned_wh)
        batch.settle(plan, plan.planned_wh)
    decay = market._beliefs.decay
    assert (decay == 0.0).any(), "the floor was never reached: observe more rounds"
    _same(batch.state.decay[0], decay, "decay")
    _same(batch.state.news[0], market._beliefs.news, "news")
