"""Step 1 of a round: the energy the container produces, for the whole run at once.

Sources (``weather.source``): ``markov`` (default, stochastic), ``csv`` (a recorded PV
series), ``tmy`` (a weather-year file through pvlib's PVWatts chain) and ``fitted`` (stochastic
days bootstrapped from a weather year). See docs/weather.md.
"""

from __future__ import annotations

import numpy as np

from lastwatt.config import Config
from lastwatt.rng import streams
from lastwatt.weather import fitted, markov, recorded, tmy
from lastwatt.weather.timebase import DAY_S


def production_series(cfg: Config, rng: np.random.Generator) -> np.ndarray:
    """(cfg.rounds,) AC energy in Wh per round, >= 0; round k covers
    ``[time.start + k * round_s, + round_s)``. Only ``markov`` and ``fitted`` draw from rng."""
    source = cfg.weather.source
    if source == "markov":
        return markov.production(cfg, rng)
    if source == "csv":
        return recorded.production(cfg)
    if source == "tmy":
        return tmy.production(cfg)
    return fitted.production(cfg, rng)


def describe_weather(cfg: Config) -> dict[str, float | str]:
    """Figures for ``lastwatt check``: the run's energy (with the config's seed) and, for the
    weather-year sources, the file's annual and specific yield."""
    energy_wh = production_series(cfg, streams(cfg.seed).weather)
    run_days = cfg.rounds * cfg.time.round_s / DAY_S
    info: dict[str, float | str] = {
        "source": cfg.weather.source,
        "run_energy_kwh": float(energy_wh.sum()) / 1000.0,
        "mean_daily_energy_kwh": float(energy_wh.sum()) / 1000.0 / run_days,
        "capacity_factor": float(energy_wh.sum())
        / (cfg.container.peak_power_w * cfg.rounds * cfg.time.round_s / 3600.0),
    }
    if cfg.weather.source in ("tmy", "fitted"):
        pv = tmy.pv_year(cfg)
        info |= {
            "weather_file": str(pv.weather.path),
            "station": pv.weather.name,
            "tilt_deg": pv.tilt_deg,
            "azimuth_deg": pv.azimuth_deg,
            "annual_yield_kwh": pv.annual_yield_kwh,
            "specific_yield_kwh_per_kwp": pv.specific_yield_kwh_per_kwp,
        }
    return info
