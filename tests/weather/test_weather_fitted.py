"""The fitted source: a Markov day-bootstrap with the real year's daily energy statistics."""

from __future__ import annotations

import numpy as np
import pytest

from lastwatt.config import Config
from lastwatt.rng import streams
from lastwatt.weather import production_series
from lastwatt.weather.pv_chain import pv_year

SEEDS = range(50)


def lag1(x: np.ndarray) -> float:
    return float(np.corrcoef(x[:-1], x[1:])[0, 1])


@pytest.mark.parametrize("station", ["greensboro", "sand_point"])
def test_fitted_weather_over_50_seeds_has_the_source_years_daily_statistics(station):
    # rounds start at local midnight so that days are whole rounds
    cfg = Config.model_validate({
        "rounds": 365 * 24,
        "time": {"start": "2026-01-01T05:00:00Z" if station == "greensboro"
                 else "2026-01-01T09:00:00Z"},
        "weather": {"source": "fitted", "station": station},
    })
    real_daily = pv_year(cfg).ac_wh.sum(axis=1)
    runs = [production_series(cfg, streams(s).weather).reshape(365, 24).sum(axis=1)
            for s in SEEDS]
    pooled = np.concatenate(runs)
    assert pooled.mean() == pytest.approx(real_daily.mean(), rel=0.05)
    assert pooled.std() == pytest.approx(real_daily.std(), rel=0.05)
    assert abs(np.mean([lag1(r) for r in runs]) - lag1(real_daily)) < 0.1


def test_fitted_weather_is_reproducible_per_seed_and_varies_between_seeds():
    cfg = Config.model_validate({"rounds": 24 * 30, "weather": {"source": "fitted"}})
    a = production_series(cfg, streams(7).weather)
    np.testing.assert_array_equal(a, production_series(cfg, streams(7).weather))
    assert not np.array_equal(a, production_series(cfg, streams(8).weather))
