"""Weather source ``fitted``: stochastic weather with a real year's statistics.

Fit (once per file and container, cached): each day of the weather year gets a sky state from
the rank of its AC energy among the days of its seasonal window (+/- ``fit_window_days``), so
every season has all states; the day-to-day transition matrix of these states is counted.
Generate: a Markov path of states, one per simulated day, and for each day a real day drawn
from the same state within the seasonal window of its date (a Markov day-bootstrap). The daily
energy distribution, its season and its day-to-day persistence follow the real year.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from lastwatt.config import Config
from lastwatt.weather.markov import markov_states
from lastwatt.weather.pv_chain import PvYear, pv_key, pv_year_for
from lastwatt.weather.timebase import weather_year_day
from lastwatt.weather.tmy import energy_of_days, weather_clock

DAYS = 365


@dataclass(frozen=True, slots=True)
class FittedWeather:
    """A Markov chain over daily energy states fitted to a weather year, and its days to draw."""
    pv: PvYear
    states: np.ndarray  # (365,) state of each weather-year day, 0 = darkest
    transition: np.ndarray  # (S, S) day-to-day probabilities
    candidates: tuple[tuple[np.ndarray, ...], ...]  # [day][state] -> days to draw from


def seasonal_windows(window_days: int) -> np.ndarray:
    """(365, 2w+1) day indices of each day's circular seasonal window."""
    return (np.arange(DAYS)[:, None] + np.arange(-window_days, window_days + 1)[None, :]) % DAYS


def fit(cfg: Config) -> FittedWeather:
    """The chain fitted to the config's weather year (cached)."""
    return _fit(pv_key(cfg), cfg.weather.fit_states, cfg.weather.fit_window_days)


@lru_cache(maxsize=16)
def _fit(key: tuple, n_states: int, window_days: int) -> FittedWeather:
    pv = pv_year_for(*key)
    daily_wh = pv.ac_wh.sum(axis=1)
    windows = seasonal_windows(window_days)
    neighbours = daily_wh[windows]
    own = daily_wh[:, None]
    mid_rank = ((neighbours < own).sum(axis=1) + 0.5 * (neighbours == own).sum(axis=1)) / (
        windows.shape[1]
    )
    states = np.minimum((mid_rank * n_states).astype(np.int64), n_states - 1)
    counts = np.zeros((n_states, n_states))
    np.add.at(counts, (states, np.roll(states, -1)), 1.0)
    rows = counts.sum(axis=1, keepdims=True)
    transition = np.where(rows > 0, counts / np.where(rows > 0, rows, 1.0), 1.0 / n_states)
    candidates = tuple(
        tuple(_days_of_state(windows[d], states, s) for s in range(n_states)) for d in range(DAYS)
    )
    return FittedWeather(pv, states, transition, candidates)


def _days_of_state(window: np.ndarray, states: np.ndarray, state: int) -> np.ndarray:
    inside = window[states[window] == state]
    return inside if inside.size else np.flatnonzero(states == state)


def draw_days(fitted: FittedWeather, dates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n_days,) weather-year day replayed on each simulated date."""
    path = markov_states(fitted.transition, dates.size, rng)
    u = rng.random(dates.size)
    days = np.empty(dates.size, dtype=np.int64)
    for i, (d, s) in enumerate(zip(weather_year_day(dates), path, strict=True)):
        pool = fitted.candidates[d][s]
        days[i] = pool[int(u[i] * pool.size)]
    return days


def production(cfg: Config, rng: np.random.Generator) -> np.ndarray:
    """Energy per round: days drawn from the fitted chain, replayed through the PV chain."""
    fitted = fit(cfg)
    clock = weather_clock(cfg, fitted.pv)
    return energy_of_days(fitted.pv, draw_days(fitted, clock.dates(), rng), clock)
