"""The default weather: a daily Markov chain over sky states (clear / cloudy / overcast) times a
clear-sky day-night profile from the sun's elevation, a seasonal factor and per-round noise.

The sun's position uses Spencer's (1971) declination and equation of time, the same formulas
as ``pvlib.solarposition.declination_spencer71`` / ``equation_of_time_spencer71``: written out
here so that the default source does not pay pvlib's 0.7 s import.
"""

from __future__ import annotations

from bisect import bisect_right
from functools import lru_cache

import numpy as np

from lastwatt.config import Config
from lastwatt.weather.timebase import DAY_S, clock_for, village_utc_offset_s

SUBSAMPLE_S = 600.0  # the sun moves little in 10 min: enough to average elevation in a round
MAX_SUBSAMPLES = 12


def sin_elevation(epoch_s: np.ndarray, latitude_deg: float, longitude_deg: float) -> np.ndarray:
    """Sine of the sun's elevation at UTC epoch seconds (negative at night)."""
    days = np.floor(epoch_s / DAY_S)
    dates = days.astype("datetime64[D]")
    doy = (dates - dates.astype("datetime64[Y]")).astype(float) + 1.0
    g = 2.0 * np.pi * (doy - 1.0) / 365.0
    decl = (0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g) - 0.006758 * np.cos(2 * g)
            + 0.000907 * np.sin(2 * g) - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g))
    eot_min = 229.18 * (0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g)
                        - 0.014615 * np.cos(2 * g) - 0.040849 * np.sin(2 * g))
    solar_h = (epoch_s - days * DAY_S) / 3600.0 + longitude_deg / 15.0 + eot_min / 60.0
    hour_angle = np.deg2rad(15.0 * (solar_h - 12.0))
    lat = np.deg2rad(latitude_deg)
    return np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)


def clear_sky_fraction(cfg: Config) -> np.ndarray:
    """(R,) mean of max(sin elevation, 0) over each round: the clear-sky share of peak power.
    The same for every seed, so computed once per site and horizon (read-only)."""
    return _clear_sky_fraction(cfg.time.start.timestamp(), cfg.rounds, cfg.time.round_s,
                               cfg.container.latitude_deg, cfg.container.longitude_deg)


@lru_cache(maxsize=4)  # a batch or sweep of many seeds pays it once (~30 ms for a year)
def _clear_sky_fraction(start_s: float, rounds: int, round_s: float, latitude_deg: float,
                        longitude_deg: float) -> np.ndarray:
    n_sub = int(np.clip(np.ceil(round_s / SUBSAMPLE_S), 1, MAX_SUBSAMPLES))
    offsets_s = (np.arange(n_sub) + 0.5) * round_s / n_sub
    starts = start_s + np.arange(rounds) * round_s
    s = sin_elevation(starts[:, None] + offsets_s[None, :], latitude_deg, longitude_deg)
    out = np.clip(s, 0.0, None).mean(axis=1)
    out.flags.writeable = False
    return out


def markov_states(transition: np.ndarray, n_steps: int, rng: np.random.Generator) -> np.ndarray:
    """A path of the chain, starting from its stationary distribution."""
    values, vectors = np.linalg.eig(transition.T)
    stationary = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    stationary /= stationary.sum()
    u = rng.random(n_steps).tolist()
    cum = np.cumsum(transition, axis=1).tolist()  # bisect on lists: np.searchsorted's answer
    last = len(cum) - 1
    states = [min(bisect_right(np.cumsum(stationary).tolist(), u[0]), last)]
    for d in range(1, n_steps):  # one step per day: a short loop, not per round
        states.append(min(bisect_right(cum[states[-1]], u[d]), last))
    return np.array(states, dtype=np.int64)


def seasonal_factor(cfg: Config) -> np.ndarray:
    """(R,) 1 + amplitude x cos(day of year from the local summer solstice)."""
    starts = cfg.time.start.timestamp() + np.arange(cfg.rounds) * cfg.time.round_s
    dates = np.floor(starts / DAY_S).astype("datetime64[D]")
    doy = (dates - dates.astype("datetime64[Y]")).astype(float) + 1.0
    solstice = 172.0 if cfg.container.latitude_deg >= 0 else 355.0
    return 1.0 + cfg.weather.seasonal_amplitude * np.cos(2 * np.pi * (doy - solstice) / 365.25)


def production(cfg: Config, rng: np.random.Generator) -> np.ndarray:
    """Energy per round from daily Markov sky states, the sun's path and noise."""
    w = cfg.weather
    clock = clock_for(cfg, village_utc_offset_s(cfg))
    day_of_round = np.floor(clock.starts_s / DAY_S).astype(np.int64)
    states = markov_states(np.asarray(w.transition), clock.n_days, rng)
    clearness = np.asarray(w.clearness)[states[day_of_round]]
    noise = np.clip(1.0 + w.noise_sd * rng.standard_normal(cfg.rounds), 0.0, None)
    peak_wh = cfg.container.peak_power_w * cfg.time.round_s / 3600.0
    energy_wh = peak_wh * clear_sky_fraction(cfg) * seasonal_factor(cfg) * clearness * noise
    return np.minimum(energy_wh, peak_wh)  # never above the container's peak
