"""The default markov source: sky states x day-night profile x season x noise."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from lastwatt.config import Config
from lastwatt.rng import streams
from lastwatt.weather import describe_weather, production_series
from lastwatt.weather.markov import markov_states, sin_elevation


def test_same_seed_gives_identical_production_and_other_seeds_differ():
    cfg = Config()
    a = production_series(cfg, streams(3).weather)
    np.testing.assert_array_equal(a, production_series(cfg, streams(3).weather))
    assert not np.array_equal(a, production_series(cfg, streams(4).weather))
    assert a.shape == (cfg.rounds,)


def test_no_production_at_night_and_never_above_peak():
    cfg = Config()
    energy = production_series(cfg, streams(0).weather)
    peak_wh = cfg.container.peak_power_w * cfg.time.round_s / 3600
    assert energy.min() >= 0 and energy.max() <= peak_wh
    # Kampala (UTC+3 by the clock, +2 by longitude): 21:00-03:00 UTC is night all year
    utc_hour = np.arange(cfg.rounds) % 24
    assert np.all(energy[(utc_hour >= 18) | (utc_hour < 2)] == 0)
    assert np.all(energy[utc_hour == 9] > 0)


def test_clear_noon_leaves_tens_of_kilowatts_for_businesses_in_the_default_scenario():
    cfg = Config().with_overrides(**{"weather.clearness": (1.0, 1.0, 1.0),
                                     "weather.noise_sd": 0.0})
    noon_w = production_series(cfg, streams(0).weather)[9:8760:24]  # 09-10 UTC ~ solar noon
    d = cfg.demand
    pool_w = noon_w * (1 - d.reserve_fraction) - d.community_w - 320 * d.household_w
    assert pool_w.min() > 20_000


def test_sun_elevation_matches_pvlib_solar_position():
    import pvlib

    times = pd.date_range("2026-01-01", "2026-12-31", freq="37min", tz="UTC")
    epoch_s = (times - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    for lat, lon in ((0.35, 32.58), (55.3, -160.5)):
        ref = pvlib.solarposition.get_solarposition(times, lat, lon)["elevation"].to_numpy()
        mine = np.rad2deg(np.arcsin(sin_elevation(np.asarray(epoch_s), lat, lon)))
        assert np.abs(mine - ref).max() < 1.0  # degrees


def test_markov_chain_visits_states_with_its_stationary_frequencies():
    transition = np.array([[0.85, 0.12, 0.03], [0.25, 0.6, 0.15], [0.1, 0.3, 0.6]])
    path = markov_states(transition, 20_000, np.random.default_rng(1))
    values, vectors = np.linalg.eig(transition.T)
    stationary = np.real(vectors[:, np.argmax(np.real(values))])
    stationary /= stationary.sum()
    np.testing.assert_allclose(np.bincount(path, minlength=3) / path.size, stationary, atol=0.02)
    stays = np.mean(path[1:][path[:-1] == 0] == 0)
    assert abs(stays - 0.85) < 0.02


def test_high_latitude_winter_days_are_short():
    cfg = Config().with_overrides(**{"container.latitude_deg": 60.0, "container.longitude_deg":
                                     0.0, "rounds": 24, "weather.noise_sd": 0.0,
                                     "time.start": datetime(2026, 12, 21, tzinfo=UTC)})
    energy = production_series(cfg, streams(0).weather)
    assert np.count_nonzero(energy) <= 8


def test_describe_weather_reports_run_energy_for_the_configured_seed():
    info = describe_weather(Config())
    assert info["source"] == "markov"
    expected = production_series(Config(), streams(Config().seed).weather).sum() / 1000
    assert info["run_energy_kwh"] == expected
    assert 0 < info["capacity_factor"] < 0.5
