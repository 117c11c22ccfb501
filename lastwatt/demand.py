"""Demand per round from BDEW standard load profiles (H0 households, G0-G6 trade, L0-L2 farms).

The profile data is the BDEW table demandlib ships (``demandlib/bdew/bdew_data/selp_series.csv``:
winter / summer / transition x Monday..Sunday x 96 quarter-hours). It is looked up here with
numpy, by the same rules as ``demandlib.bdew.ElecSlp`` (seasons by date, normalised to 1 per
calendar year, H0 with demandlib's ``dynamisation_function``), because ElecSlp itself cannot
run under pandas 3: it switches every warning into an error, process-wide, and then trips over
a pandas deprecation warning. ``tests/test_demand_profiles.py`` checks the lookup against
ElecSlp. Profiles are in the village's local standard time; no public holidays.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from lastwatt.config import Config
from lastwatt.weather.timebase import RunClock, clock_for, integrate, village_utc_offset_s

QUARTER_S = 900.0
PERIODS = ("winter", "summer", "transition")


@dataclass(frozen=True, slots=True)
class DemandSeries:
    """Community and household energy asked for in each round of the run."""
    community_wh: np.ndarray  # (R,) community energy asked for in each round
    household_wh: np.ndarray  # (R,) all households together


@lru_cache(maxsize=1)
def bdew_table() -> dict[str, np.ndarray]:
    """Profile name ("H0", "G0", ...) -> (3 periods, 7 weekdays Mon..Sun, 96 quarter-hours)."""
    import demandlib.bdew
    import pandas as pd

    path = Path(demandlib.bdew.__file__).parent / "bdew_data" / "selp_series.csv"
    frame = pd.read_csv(path)
    period = frame["period"].map({p: i for i, p in enumerate(PERIODS)}).to_numpy()
    weekday = frame["weekday"].to_numpy() - 1
    quarter = np.arange(len(frame)) % 96  # rows run through the day in quarter-hours
    table = {}
    for name in ("h0", "g0", "g1", "g2", "g3", "g4", "g5", "g6", "l0", "l1", "l2"):
        values = np.zeros((len(PERIODS), 7, 96))
        values[period, weekday, quarter] = frame[name].to_numpy(dtype=float)
        table[name.upper()] = values
    return table


def _period_of(dates: np.ndarray) -> np.ndarray:
    """BDEW seasons: summer 15 May-14 Sep, transition 21 Mar-14 May and 15 Sep-31 Oct."""
    months = dates.astype("datetime64[M]")
    month_day = (months.astype(int) % 12 + 1) * 100 + (dates - months).astype(int) + 1
    summer = (month_day >= 515) & (month_day <= 914)
    transition = ((month_day >= 321) & (month_day <= 514)) | (
        (month_day >= 915) & (month_day <= 1031)
    )
    return np.where(summer, 1, np.where(transition, 2, 0))


def weekday_of(dates: np.ndarray) -> np.ndarray:
    """0 = Monday .. 6 = Sunday (1970-01-01 was a Thursday)."""
    return (dates.astype(np.int64) + 3) % 7


@lru_cache(maxsize=64)
def year_shares(profile: str, year: int) -> np.ndarray:
    """(days in year, 96) share of the calendar year's energy in each quarter-hour; sums to 1."""
    dates = np.arange(f"{year}-01-01", f"{year + 1}-01-01", dtype="datetime64[D]")
    if profile == "flat":
        return np.full((dates.size, 96), 1.0 / (dates.size * 96))
    values = bdew_table()[profile][_period_of(dates), weekday_of(dates)]
    values = values / values.sum()
    if profile == "H0":
        import pandas as pd
        from demandlib.bdew.elec_slp import dynamisation_function

        index = pd.date_range(f"{year}-01-01", periods=values.size, freq="15min")
        values = values * dynamisation_function(index).to_numpy().reshape(values.shape)
        values /= values.sum()  # demandlib's dynamised H0 sums to 1.000013; annual kWh hold
    return values


def run_shares(profile: str, clock: RunClock) -> np.ndarray:
    """(n_days * 96,) quarter-hour shares of annual energy over the run's local days."""
    dates = clock.dates()
    years = dates.astype("datetime64[Y]").astype(int) + 1970
    doy = (dates - dates.astype("datetime64[Y]")).astype(int)
    rows = [year_shares(profile, int(y))[d] for y, d in zip(years, doy, strict=True)]
    return np.concatenate(rows)


def profile_energy(profile: str, annual_wh: float, clock: RunClock) -> np.ndarray:
    """(R,) energy per round of a load drawing ``annual_wh`` per calendar year in this shape."""
    return integrate(run_shares(profile, clock) * annual_wh, QUARTER_S, clock.starts_s,
                     clock.round_s)


def demand_series(cfg: Config, rng: np.random.Generator) -> DemandSeries:
    """The run's demand per round from ``[demand]``, on the village's local clock."""
    d = cfg.demand
    clock = clock_for(cfg, village_utc_offset_s(cfg))
    hours_per_round = cfg.time.round_s / 3600.0
    community_wh = np.full(cfg.rounds, d.community_w * hours_per_round)
    if d.community_profile_kwh_per_year > 0:
        community_wh += profile_energy(
            d.community_profile, d.community_profile_kwh_per_year * 1000.0, clock
        )
    households = cfg.population.households
    if d.household_profile == "flat" and d.household_kwh_per_year is None:
        household_wh = np.full(cfg.rounds, households * d.household_w * hours_per_round)
    else:
        kwh = d.household_kwh_per_year
        annual_wh = (d.household_w * 8.76 if kwh is None else kwh) * 1000.0
        household_wh = profile_energy(d.household_profile, households * annual_wh, clock)
    noise = np.clip(1.0 + d.household_noise_sd * rng.standard_normal(cfg.rounds), 0.0, None)
    return DemandSeries(community_wh=community_wh, household_wh=household_wh * noise)


def business_profile_names(cfg: Config) -> list[str]:
    """Profile of each business: ``demand.business_profiles`` repeated in order."""
    names = cfg.demand.business_profiles
    return [names[i % len(names)] for i in range(cfg.businesses.count)]


def business_load_factor(cfg: Config) -> np.ndarray:
    """(R, N) in [0, 1]: the share of its max power a business draws when switched on, per
    round; its profile's peak quarter-hour of the year is its max power. Ones for "flat"."""
    names = business_profile_names(cfg)
    factor = np.ones((cfg.rounds, len(names)))
    if all(n == "flat" for n in names):
        return factor
    clock = clock_for(cfg, village_utc_offset_s(cfg))
    years = np.unique(clock.dates().astype("datetime64[Y]").astype(int) + 1970)
    for name in sorted(set(names) - {"flat"}):
        peak_share = max(float(year_shares(name, int(y)).max()) for y in years)
        mean_share = profile_energy(name, 1.0, clock) * QUARTER_S / clock.round_s
        columns = [i for i, n in enumerate(names) if n == name]
        factor[:, columns] = np.clip(mean_share / peak_share, 0.0, 1.0)[:, None]
    return factor
