"""Weather source ``tmy``: the container's AC energy from a weather-year file, replayed.

Each simulated local day takes the weather year's day with the same date (Feb 29 repeats
Feb 28), so a run may start on any day and run for more than a year; rounds of any length
integrate the hourly AC energy exactly.
"""

from __future__ import annotations

import numpy as np

from lastwatt.config import Config
from lastwatt.weather.pv_chain import PvYear, pv_year
from lastwatt.weather.timebase import RunClock, clock_for, integrate, weather_year_day


def weather_clock(cfg: Config, pv: PvYear) -> RunClock:
    """The run's clock in the weather file's time zone."""
    return clock_for(cfg, pv.weather.utc_offset_h * 3600.0)


def energy_of_days(pv: PvYear, days: np.ndarray, clock: RunClock) -> np.ndarray:
    """(R,) energy per round when simulated day d replays weather-year day ``days[d]``."""
    return integrate(pv.ac_wh[days].ravel(), 3600.0, clock.starts_s, clock.round_s)


def production(cfg: Config) -> np.ndarray:
    """Energy per round from the weather year, day for day (``weather.source = "tmy"``)."""
    pv = pv_year(cfg)
    clock = weather_clock(cfg, pv)
    return energy_of_days(pv, weather_year_day(clock.dates()), clock)
