"""The run's clock in the village's local standard time, and energy per round from a series.

Every source (weather, demand profiles) produces a piecewise-constant power series on a regular
grid that starts at local midnight of the run's first day; :func:`integrate` turns it into
energy per round for any round length (shorter rounds get the mean power of their slice, longer
rounds the sum), so resampling is exact and energy-conserving.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lastwatt.config import Config

DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class RunClock:
    """Round k covers ``[starts_s[k], starts_s[k] + round_s)``, seconds since local midnight
    of ``day0``."""

    day0: np.datetime64  # local calendar date of round 0
    starts_s: np.ndarray  # (R,)
    round_s: float

    @property
    def n_days(self) -> int:
        """Local days touched by the run (the last one possibly partly)."""
        return int(np.ceil((self.starts_s[-1] + self.round_s) / DAY_S))

    def dates(self) -> np.ndarray:
        """(n_days,) local calendar dates, ``datetime64[D]``."""
        return self.day0 + np.arange(self.n_days)


def run_clock(start_epoch_s: float, rounds: int, round_s: float, utc_offset_s: float) -> RunClock:
    """The run's rounds on the local clock of a place ``utc_offset_s`` from UTC."""
    local_s = start_epoch_s + utc_offset_s
    day0_days = np.floor(local_s / DAY_S)
    first_s = local_s - day0_days * DAY_S
    return RunClock(
        day0=np.datetime64(int(day0_days), "D"),
        starts_s=first_s + np.arange(rounds) * round_s,
        round_s=round_s,
    )


def clock_for(cfg: Config, utc_offset_s: float) -> RunClock:
    """The run's clock for the config's start, rounds and round length."""
    return run_clock(cfg.time.start.timestamp(), cfg.rounds, cfg.time.round_s, utc_offset_s)


def village_utc_offset_s(cfg: Config) -> float:
    """The village's standard time: the weather file's for tmy/fitted, else
    ``container.utc_offset_h``, else the longitude's (longitude / 15, rounded)."""
    if cfg.weather.source in ("tmy", "fitted"):
        from lastwatt.readers.weather_year import read_weather_year, weather_year_path

        path = weather_year_path(cfg.weather.path, cfg.weather.station).resolve()
        return read_weather_year(path).utc_offset_h * 3600.0
    hours = cfg.container.utc_offset_h
    if hours is None:
        hours = round(cfg.container.longitude_deg / 15.0)
    return float(hours) * 3600.0


def is_leap(years: np.ndarray) -> np.ndarray:
    """Which of ``years`` are leap years."""
    return (years % 4 == 0) & ((years % 100 != 0) | (years % 400 == 0))


def weather_year_day(dates: np.ndarray) -> np.ndarray:
    """Day index 0..364 in a 365-day weather year; Feb 29 repeats Feb 28."""
    years = dates.astype("datetime64[Y]")
    doy = (dates - years).astype(int)
    leap = is_leap(years.astype(int) + 1970)
    return np.where(leap & (doy >= 59), doy - 1, doy)


def integrate(
    step_energy_wh: np.ndarray, step_s: float, starts_s: np.ndarray, round_s: float
) -> np.ndarray:
    """Energy per round ``[starts_s[k], starts_s[k] + round_s)`` from the energies of
    consecutive steps of ``step_s`` starting at 0; power is constant within a step.

    The steps must cover every round: ``len(step_energy_wh) * step_s >= starts_s[-1] + round_s``.
    """
    cum_wh = np.concatenate(([0.0], np.cumsum(step_energy_wh, dtype=float)))
    edges_s = np.arange(cum_wh.size) * step_s
    a = np.interp(starts_s, edges_s, cum_wh)
    b = np.interp(starts_s + round_s, edges_s, cum_wh)
    return np.maximum(b - a, 0.0)
