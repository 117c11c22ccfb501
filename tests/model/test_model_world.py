"""A world that moves and colluders: hand-computed steps, the market's reaction, bad config."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lastwatt.config import Config
from lastwatt.errors import ConfigError
from lastwatt.model.market import Market
from lastwatt.model.stakes import bonded_stake_per_business
from lastwatt.model.world import (
    apply_jumps,
    capture,
    drift_quality,
    endowment_tokens,
    shared_rating_error,
)
from lastwatt.rng import streams


def test_pareto_endowment_has_the_scale_that_gives_the_mean():
    rng, same = np.random.default_rng(1), np.random.default_rng(1)
    tokens = endowment_tokens("pareto", 5, 1.0, 1.5, rng)
    np.testing.assert_allclose(tokens, (1.0 / 3.0) * (1.0 + same.pareto(1.5, 5)))  # x_m = 1/3
    assert tokens.min() >= 1.0 / 3.0
    assert (endowment_tokens("equal", 3, 2.0, 1.5, rng) == 2.0).all()


def test_drift_is_a_clipped_random_walk_and_jumps_replace_quality_at_their_round():
    q = np.array([9.9, 0.0, -9.9])
    step = np.random.default_rng(2).standard_normal(3)
    np.testing.assert_allclose(drift_quality(q, 0.5, np.random.default_rng(2)),
                               np.clip(q + 0.5 * step, -10, 10))
    jumps = [(3, 1, -7.0), (5, 0, 1.0)]
    assert apply_jumps(q, 2, jumps) is q
    np.testing.assert_allclose(apply_jumps(q, 3, jumps), [9.9, -7.0, -9.9])
    assert q[1] == 0.0  # a new array: the stakers' ratings are not changed with it


def test_shared_rating_error_is_one_draw_per_business_clipped():
    q = np.array([9.0, -2.0])
    e = np.random.default_rng(3).standard_normal(2)
    np.testing.assert_allclose(shared_rating_error(q, 4.0, np.random.default_rng(3)),
                               np.clip(q + 4.0 * e, -10, 10))


def test_capture_is_the_share_of_selected_slots():
    assert capture([3, 1, 0], np.array([1])) == pytest.approx(1 / 3)
    assert math.isnan(capture([], np.array([1])))


def small(**over) -> Config:
    base = {"population.households": 100, "businesses.count": 6, "businesses.active_set": 2,
            "businesses.qualities": [9.0, 6.0, 2.0, -3.0, -8.0, 4.0],
            "population.abstain_probability": 0.0, "rounds": 20}
    return Config().with_overrides(**{**base, **over})


def test_colluders_put_a_bad_business_in_the_active_set_and_capture_is_reported():
    cfg = small(**{"adversaries.collusion.share": 0.4, "adversaries.collusion.business": 4})
    market = Market(cfg, streams(1))
    plan = market.plan(0, 30_000.0, 3600.0)
    out = market.settle(plan, plan.planned_wh)
    assert 4 in plan.selected_idx  # 40 tokens on b04 beat the honest split
    assert out.scalars["adversary_capture"] == 0.5
    assert plan.stake_tokens[4] >= 40.0 - 1e-9
    table = market.stakers_table()
    assert (table["business"].iloc[60:] == 4).all()
    # never more stake than their tokens: bonded stake of b04 <= colluders' holdings + others
    assert plan.stake_tokens.sum() <= table["stake_tokens"].sum() + 1e-9 + out.scalars[
        "slashed_tokens"]


def test_a_quality_jump_changes_what_is_drawn_from_that_round():
    cfg = small(**{"world.jumps": [{"round": 1, "business": 0, "quality": -9.0}],
                   "businesses.performance_sd": 0.0})
    market = Market(cfg, streams(2))
    perf = []
    for t in range(3):
        plan = market.plan(t, 10_000.0, 3600.0)
        perf.append(market.settle(plan, plan.planned_wh).performance[0])
    assert perf == [9.0, -9.0, -9.0]


def test_default_world_draws_nothing_from_the_world_stream():
    rs = streams(4)
    Market(small(), rs)
    assert rs.world.random() == streams(4).world.random()


@pytest.mark.parametrize("override, where", [
    ({"world.quality_drift_sd": -1.0}, "quality_drift_sd"),
    ({"world.rating_shared_sd": -0.5}, "rating_shared_sd"),
    ({"adversaries.collusion.share": 1.5}, "share"),
    ({"adversaries.collusion.share": 0.1, "adversaries.collusion.business": 6}, "unknown business"),
    ({"world.jumps": [{"round": 20, "business": 0, "quality": 1.0}]}, "beyond the run"),
    ({"world.jumps": [{"round": 2, "business": 9, "quality": 1.0}]}, "unknown business"),
    ({"world.performance_sd_by_business": [1.0, 2.0]}, "performance_sd_by_business"),
    ({"world.endowment": "lognormal"}, "endowment"),
])
def test_bad_world_and_adversary_settings_are_one_line_errors(override, where):
    with pytest.raises(ConfigError) as err:
        small(**override)
    assert where in str(err.value) and "\n" not in str(err.value)


def test_quadratic_weighting_lets_many_small_stakers_outvote_one_whale():
    choice = np.array([[0, 1, 1, 1, 1]])
    stake = np.array([9.0, 1.0, 1.0, 1.0, 1.0])  # one whale on b0, four households on b1
    assert list(bonded_stake_per_business(choice, stake, 2)) == [9.0, 4.0]
    assert list(bonded_stake_per_business(choice, np.sqrt(stake), 2)) == [3.0, 4.0]
    cfg = small(**{"mechanism.stake_weighting": "quadratic", "world.endowment": "pareto",
                   "world.pareto_shape": 1.1})
    market = Market(cfg, streams(3))
    plan = market.plan(0, 10_000.0, 3600.0)
    market.settle(plan, plan.planned_wh)
    tokens = endowment_tokens("pareto", 100, 1.0, 1.1, streams(3).world)  # same draws
    business = market.stakers_table()["business"].to_numpy()
    votes = np.bincount(business, weights=np.sqrt(tokens), minlength=6)
    assert sorted(plan.selected_idx) == sorted(np.argsort(-votes)[:2].tolist())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), share=st.floats(0, 0.5),
       surplus=st.sampled_from(["selected", "positive_expected", "reserve"]),
       weighting=st.sampled_from(["linear", "quadratic"]))
def test_supply_is_exact_energy_is_not_created_and_caps_hold_in_a_moving_adversarial_world(
        seed, share, surplus, weighting):
    cfg = small(**{"adversaries.collusion.share": share, "adversaries.collusion.business": 4,
                   "world.endowment": "pareto", "world.quality_drift_sd": 0.5,
                   "population.policies": {"ewa": 0.3, "q_learning": 0.3, "softmax": 0.4},
                   "mechanism.surplus": surplus, "mechanism.stake_weighting": weighting,
                   "mechanism.inflation_rate": 0.001})
    market = Market(cfg, streams(seed))
    supply = market.stakers_table()["stake_tokens"].sum()
    n_colluders = round(share * 100)
    for t, pool in enumerate([0.0, 20_000.0, 90_000.0, 5_000.0, 0.0, 60_000.0] * 2):
        held = market.stakers_table()["stake_tokens"].to_numpy()[100 - n_colluders:].sum()
        plan = market.plan(t, pool, 3600.0)
        # colluders bond exactly what they hold to b04 (honest stakers may add to it)
        assert held - 1e-9 <= plan.stake_tokens[4] <= plan.stake_tokens.sum() + 1e-9
        assert plan.planned_wh.sum() + plan.unplaced_wh == pytest.approx(pool)
        assert (plan.planned_wh <= plan.cap_wh + 1e-9).all()
        out = market.settle(plan, plan.planned_wh)
        s = out.scalars
        supply += s["rewards_tokens"] + s["minted_tokens"] - s["slashed_tokens"]
        assert s["token_supply"] == pytest.approx(supply, rel=1e-12)
