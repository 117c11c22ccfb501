"""The tmy source: pvlib's PVWatts chain on a weather-year file, replayed round by round."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from lastwatt.config import Config
from lastwatt.readers.weather_year import shipped_path
from lastwatt.rng import streams
from lastwatt.weather import describe_weather, production_series


def tmy_config(**weather: object) -> Config:
    return Config.model_validate(
        {"container": {"peak_power_w": 1000.0}, "weather": {"source": "tmy", **weather}}
    )


def reference_yield_kwh(station: str, tilt_deg: float) -> float:
    """pvlib's own ModelChain.with_pvwatts on the raw file, 1 kWp, 14 % losses."""
    import pvlib

    path = str(shipped_path(station))
    if path.endswith(".tm2"):
        data, meta = pvlib.iotools.read_tmy2(path)
        data = data.rename(columns={"GHI": "ghi", "DNI": "dni", "DHI": "dhi"})
        data["temp_air"], data["wind_speed"] = data["DryBulb"] / 10, data["Wspd"] / 10
        stamps = data.index + pd.Timedelta("30min")
    else:
        data, meta = pvlib.iotools.read_tmy3(path, map_variables=True)
        stamps = data.index - pd.Timedelta("30min")  # hour-ending labels -> midpoints
    weather = data[["ghi", "dni", "dhi", "temp_air", "wind_speed"]].copy()
    weather.index = stamps
    location = pvlib.location.Location(meta["latitude"], meta["longitude"],
                                       altitude=meta["altitude"])
    losses = dict.fromkeys(("shading", "snow", "mismatch", "wiring", "connections", "lid",
                            "nameplate_rating", "age", "availability"), 0.0)
    system = pvlib.pvsystem.PVSystem(
        surface_tilt=tilt_deg, surface_azimuth=180,
        module_parameters={"pdc0": 1000.0, "gamma_pdc": -0.004},
        inverter_parameters={"pdc0": 1000.0, "eta_inv_nom": 0.96},
        temperature_model_parameters=pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"][
            "open_rack_glass_polymer"],
        losses_parameters={**losses, "soiling": 14.0},
    )
    chain = pvlib.modelchain.ModelChain.with_pvwatts(system, location)
    chain.run_model(weather)
    return float(chain.results.ac.clip(lower=0).fillna(0).sum()) / 1000.0


@pytest.mark.parametrize(("station", "tilt_deg"), [("greensboro", 36.1), ("sand_point", 55.317),
                                                   ("miami", 25.8)])
def test_yearly_ac_yield_of_1_kwp_matches_pvlib_modelchain_within_1_percent(station, tilt_deg):
    cfg = tmy_config(station=station)
    info = describe_weather(cfg)
    reference = reference_yield_kwh(station, tilt_deg)
    assert info["specific_yield_kwh_per_kwp"] == pytest.approx(reference, rel=0.01)
    # a whole non-leap year of hourly rounds replays the file's year exactly
    year = production_series(cfg, streams(0).weather)
    assert year.sum() / 1000.0 == pytest.approx(info["annual_yield_kwh"], rel=1e-9)


def test_short_and_long_rounds_resample_the_same_energy():
    hourly = production_series(tmy_config(), streams(0).weather)
    quarter = production_series(
        tmy_config().with_overrides(**{"rounds": 4 * 8760, "time.round_s": 900.0,
                                      "time.metering_interval_s": 60.0}),
        streams(0).weather,
    )
    three_h = production_series(
        tmy_config().with_overrides(**{"rounds": 8760 // 3, "time.round_s": 10800.0}),
        streams(0).weather,
    )
    np.testing.assert_allclose(quarter.reshape(-1, 4).sum(axis=1), hourly, atol=1e-6)
    np.testing.assert_allclose(three_h, hourly.reshape(-1, 3).sum(axis=1), atol=1e-6)


def test_run_starting_in_december_wraps_into_january_of_the_weather_year():
    january = production_series(tmy_config().with_overrides(rounds=31 * 24), streams(0).weather)
    december_start = tmy_config().with_overrides(
        **{"rounds": 62 * 24, "time.start": datetime(2026, 12, 1, tzinfo=UTC)}
    )
    wrapped = production_series(december_start, streams(0).weather)
    np.testing.assert_allclose(wrapped[31 * 24:], january, atol=1e-9)


def test_leap_day_repeats_february_28():
    cfg = tmy_config().with_overrides(
        **{"rounds": 48, "time.start": datetime(2028, 2, 28, 5, tzinfo=UTC)}  # local midnight
    )
    energy = production_series(cfg, streams(0).weather)
    np.testing.assert_allclose(energy[:24], energy[24:], atol=1e-9)
    assert energy.sum() > 0


def test_production_follows_local_solar_time_of_the_file():
    # Greensboro is UTC-5: local midnight = 05:00 UTC; no sun before 06:00 local in January
    cfg = tmy_config().with_overrides(**{"rounds": 24, "time.start": datetime(2026, 1, 10, 5,
                                                                               tzinfo=UTC)})
    energy = production_series(cfg, streams(0).weather)
    assert np.all(energy[:6] == 0) and np.all(energy[20:] == 0)
    assert energy[10:15].min() > 0


def test_tmy_production_does_not_depend_on_the_random_stream():
    a = production_series(tmy_config(), streams(1).weather)
    b = production_series(tmy_config(), streams(2).weather)
    np.testing.assert_array_equal(a, b)
