"""The example configs load and give a village with a business pool at some times."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lastwatt.config import load_config
from lastwatt.demand import business_load_factor, demand_series
from lastwatt.rng import streams
from lastwatt.weather import production_series

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.mark.parametrize("name", ["greensboro", "cloudy_north", "cloudy_month"])
def test_example_village_has_a_business_pool_by_day_and_none_at_night(name):
    cfg = load_config(EXAMPLES / f"{name}.toml")
    produced_wh = production_series(cfg, streams(cfg.seed).weather)
    demand = demand_series(cfg, streams(cfg.seed).demand)
    pool_wh = (produced_wh * (1 - cfg.demand.reserve_fraction) - demand.community_wh
               - demand.household_wh)
    assert pool_wh.max() > 20_000 * cfg.time.round_s / 3600  # tens of kW at a good noon
    assert np.mean(pool_wh <= 0) > 0.4  # nights and grey days
    assert business_load_factor(cfg).shape == (cfg.rounds, cfg.businesses.count)
