"""Demand from BDEW standard load profiles, and the business load factor."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import numpy as np
import pytest

from lastwatt.config import Config
from lastwatt.demand import (
    business_load_factor,
    business_profile_names,
    demand_series,
    weekday_of,
    year_shares,
)
from lastwatt.rng import streams


def test_bdew_lookup_equals_demandlibs_elecslp():
    from demandlib import bdew

    # ElecSlp turns all warnings into errors and then fails on a pandas 3 deprecation;
    # neutralised here only to get the reference
    with warnings.catch_warnings(), pytest.MonkeyPatch.context() as mp:
        mp.setattr(warnings, "simplefilter", lambda *a, **k: None)
        warnings.filterwarnings("ignore")
        reference = bdew.ElecSlp(year=2026).get_profiles()
    for name in ("G0", "G1", "G2", "G3", "G4", "G5", "G6", "L0", "L1", "L2"):
        np.testing.assert_allclose(year_shares(name, 2026).ravel(), reference[name.lower()],
                                   rtol=1e-9)
    h0_dyn = reference["h0_dyn"].to_numpy()
    np.testing.assert_allclose(year_shares("H0", 2026).ravel(), h0_dyn / h0_dyn.sum(), rtol=1e-9)


@pytest.mark.parametrize("start", [datetime(2026, 1, 1, tzinfo=UTC),
                                   datetime(2028, 1, 1, tzinfo=UTC)])  # 2028 is a leap year
def test_annual_household_demand_equals_configured_kwh(start):
    hours = 8784 if start.year == 2028 else 8760
    cfg = Config.model_validate({
        "rounds": hours, "time": {"start": start.isoformat()},
        "container": {"utc_offset_h": 0},
        "demand": {"household_profile": "H0", "household_kwh_per_year": 1500.0},
    })
    household_wh = demand_series(cfg, streams(0).demand).household_wh
    assert household_wh.sum() / 320 / 1000 == pytest.approx(1500.0, rel=0.005)


def test_community_is_base_load_plus_its_profile():
    cfg = Config.model_validate({"container": {"utc_offset_h": 0}, "demand": {
        "community_profile": "G1", "community_profile_kwh_per_year": 30_000.0}})
    community_wh = demand_series(cfg, streams(0).demand).community_wh
    assert community_wh.min() >= 6000.0
    assert (community_wh.sum() - 6000.0 * 8760) / 1000 == pytest.approx(30_000, rel=0.005)


def test_default_demand_is_flat_320_households_of_60_w_and_6_kw_community():
    d = demand_series(Config(), streams(0).demand)
    np.testing.assert_allclose(d.household_wh, 320 * 60.0)
    np.testing.assert_allclose(d.community_wh, 6000.0)
    np.testing.assert_array_equal(business_load_factor(Config()), 1.0)


def daily_energy_by_weekday(profile: str) -> np.ndarray:
    shares = year_shares(profile, 2026).sum(axis=1)
    dates = np.arange("2026-01-01", "2027-01-01", dtype="datetime64[D]")
    return np.array([shares[weekday_of(dates) == w].mean() for w in range(7)])


def test_profiles_keep_bdews_weekday_weekend_distinction():
    g1 = daily_energy_by_weekday("G1")  # weekday-only business: closed on Sunday
    assert g1[6] < 0.3 * g1[2]
    h0 = daily_energy_by_weekday("H0")  # households use more at the weekend
    assert h0[5] > h0[2] and h0[6] > h0[2]
    wednesday, sunday = (year_shares("G1", 2026)[d] for d in (6, 3))  # Jan 7, Jan 4
    assert wednesday.max() > 2 * sunday.max()


def test_business_load_factor_follows_each_business_profile_in_local_time():
    cfg = Config.model_validate({
        "rounds": 24 * 7, "time": {"start": "2026-01-05T00:00:00Z"},  # Monday, UTC = local
        "container": {"utc_offset_h": 0},
        "demand": {"business_profiles": ["G1", "flat", "L0"]},
    })
    assert business_profile_names(cfg)[:4] == ["G1", "flat", "L0", "G1"]
    factor = business_load_factor(cfg)
    assert factor.shape == (24 * 7, 20)
    assert factor.min() >= 0 and factor.max() <= 1
    np.testing.assert_array_equal(factor[:, 1], 1.0)
    np.testing.assert_array_equal(factor[:, 0], factor[:, 3])
    g1_day = factor[:24, 0]
    assert g1_day[3] < 0.5 * g1_day[10]  # 03:00 vs 10:00 on a Monday
    assert factor[24 * 6 + 10, 0] < 0.5 * g1_day[10]  # Sunday 10:00


def test_household_noise_is_seeded_and_mean_preserving():
    cfg = Config.model_validate({"demand": {"household_noise_sd": 0.1}})
    a = demand_series(cfg, streams(5).demand).household_wh
    np.testing.assert_array_equal(a, demand_series(cfg, streams(5).demand).household_wh)
    assert a.std() > 0
    assert a.mean() == pytest.approx(320 * 60.0, rel=0.01)
