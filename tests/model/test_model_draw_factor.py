"""A business's load profile caps what it can draw in a round, for the mechanism, the oracle
and the baselines alike (otherwise they would be compared against energy nobody could use)."""

import numpy as np
import pytest

from lastwatt.config import Config
from lastwatt.model.market import Market
from lastwatt.rng import streams


def test_draw_factor_scales_every_business_cap_for_plan_oracle_and_baselines():
    cfg = Config().with_overrides(**{"businesses.count": 4, "businesses.active_set": 4,
                                     "population.households": 40})
    market = Market(cfg, streams(1))
    factor = np.array([0.0, 0.5, 1.0, 0.25])
    plan = market.plan(0, 1e9, 3600.0, draw_factor=factor)  # a pool no cap can absorb
    assert plan.cap_wh == pytest.approx(market.max_power_w * factor)
    assert plan.planned_wh[0] == 0
    assert np.all(plan.planned_wh <= plan.cap_wh + 1e-9)
    out = market.settle(plan, plan.planned_wh)
    best = np.clip(out.performance, 0, None) @ (market.max_power_w * factor)
    assert out.scalars["oracle_result"] == pytest.approx(best)


def test_without_draw_factor_caps_are_the_max_power_for_the_round():
    market = Market(Config(), streams(1))
    plan = market.plan(0, 1000.0, 1800.0)
    assert plan.cap_wh == pytest.approx(market.max_power_w / 2)
