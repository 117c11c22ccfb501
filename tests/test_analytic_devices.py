"""Analytic headless devices (one integration per round) against today's per-minute metering
(``output.meter_readings``): equal within the metering-interval discretisation of
docs/architecture.md, "Analytic headless devices"."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import simpy

from lastwatt import simulation
from lastwatt.config import Config
from lastwatt.demand import business_load_factor
from lastwatt.devices import profile_fn, profile_integral_s
from lastwatt.messages import RoundInfo, Setpoint
from lastwatt.meters import MeterBatch
from lastwatt.simulation import run_simulation
from lastwatt.site import site
from lastwatt.storage.files import TABLES

# the bound's factor per profile: total variation of the load shape over a round (hand values:
# constant none; ramp 0.5 -> 1.0; cycle jumps at multiples of 300 s, all on 60 s ticks)
TOTAL_VARIATION = {"constant": 0.0, "ramp": 0.5, "cycle": 0.0}


def _per_minute(cfg: Config) -> Config:
    return cfg.with_overrides(**{"output.meter_readings": True})


def _bound_wh(cfg: Config, business_w: np.ndarray) -> np.ndarray:
    """Per business and round: full draw x one interval x the profile's variation."""
    return business_w * cfg.time.metering_interval_s / 3600.0 * TOTAL_VARIATION[
        cfg.devices.profile]


@pytest.mark.parametrize("name", ["constant", "ramp", "cycle"])
def test_profile_integral_equals_a_fine_midpoint_sum_of_the_profile(name):
    round_s = 3600.0
    f = profile_fn(name, round_s)
    dt = 0.01
    mid = np.arange(0.0, round_s, dt) + dt / 2
    cumulative = np.cumsum([f(t) for t in mid]) * dt
    for t in (0.0, 59.0, 300.0, 451.5, 1234.0, 3600.0):
        want = cumulative[round(t / dt) - 1] if t > 0 else 0.0
        assert float(profile_integral_s(name, round_s, np.array([t]))[0]) == pytest.approx(
            want, abs=1e-6 * round_s)


def test_default_year_meters_as_per_minute_metering_per_business_and_round():
    # noise off: the two runs' market stays on one path, so every round compares
    cfg = Config().with_overrides(**{"devices.noise_sd": 0.0})
    analytic = run_simulation(cfg)
    minute = run_simulation(_per_minute(cfg))
    assert analytic.summary["meter"]["booked"] < minute.summary["meter"]["booked"] / 3
    a, m = analytic.businesses, minute.businesses
    np.testing.assert_allclose(a["planned_wh"], m["planned_wh"], rtol=1e-9, atol=1e-6)
    np.testing.assert_array_equal(a["selected"], m["selected"])
    bound = _bound_wh(cfg, np.zeros(len(a)))  # constant load: no discretisation at all
    assert (np.abs(a["metered_wh"] - m["metered_wh"]) <= bound + 1e-6).all()
    assert m["metered_wh"].sum() > 0


def _replay(cfg: Config, minute: pd.DataFrame, rounds: int) -> np.ndarray:
    """The per-minute run's quotas, round by round, through the analytic devices: (R, D) Wh."""
    devices = site(cfg).devices
    env = simpy.Environment()
    t = simulation.analytic_transport(cfg, env, devices, np.random.default_rng(7),
                                      business_load_factor(cfg))
    batches: list[MeterBatch] = []
    t.start(batches.append, lambda status: None)  # type: ignore[arg-type]
    quota = minute.pivot(index="round", columns="device", values="quota_wh")[devices.ids]
    round_s = cfg.time.round_s
    for k in range(rounds):
        t.publish_round(RoundInfo(k, k * round_s, (k + 1) * round_s, 0.0, 0.0))
        for d, q in zip(devices.ids, quota.loc[k], strict=True):
            t.send_setpoint(Setpoint(d, k, bool(q > 0), 0.0, float(q), (k + 1) * round_s))
        env.run()
    return np.array([b.round_wh for b in batches])


@pytest.mark.parametrize("profile", ["ramp", "cycle"])
def test_binding_quotas_meter_as_per_minute_metering_within_the_bound(profile):
    # the plan assumes full draw; these loads draw less, so some quotas bind mid-round
    # (a switch-off inside the round) and others do not
    rounds = 400
    cfg = Config().with_overrides(rounds=rounds, **{"devices.profile": profile,
                                                    "devices.noise_sd": 0.0})
    minute = run_simulation(_per_minute(cfg)).tables["devices"]
    got = _replay(cfg, minute, rounds)
    want = minute.pivot(index="round", columns="device", values="metered_wh")
    devices = site(cfg).devices
    want = want[devices.ids].to_numpy()
    quota = minute.pivot(index="round", columns="device", values="quota_wh")[devices.ids]
    quota = quota.to_numpy()
    binds = (want >= quota - 1e-6) & (quota > 0)
    assert binds.any() and ((want < quota - 1) & (quota > 0)).any()  # both kinds occur
    np.testing.assert_allclose(got[binds], quota[binds], rtol=1e-12)  # switched off at quota
    load = business_load_factor(cfg)[:rounds][:, devices.business]
    bound = _bound_wh(cfg, devices.max_power_w * load) * (quota > 0)
    per_business = np.stack([np.bincount(devices.business, weights=r) for r in got - want])
    business_bound = np.stack([np.bincount(devices.business, weights=b) for b in bound])
    assert (np.abs(per_business) <= business_bound + 1e-6).all()
    if profile == "ramp":  # sampling each interval's start undercounts a rising load
        assert np.abs(per_business).max() > 0.4 * business_bound.max()


def test_noise_has_the_per_minute_distribution():
    # same quotas, noise on: the relative round energy of unbounded rounds has the same
    # mean (up to the ramp's discretisation, 1/180 here) and spread, sd x ||w|| / sum(w)
    rounds = 1500
    cfg = Config().with_overrides(rounds=rounds, **{"devices.profile": "ramp"})
    minute = run_simulation(_per_minute(cfg)).tables["devices"]
    devices = site(cfg).devices
    got = _replay(cfg, minute, rounds)
    want = minute.pivot(index="round", columns="device", values="metered_wh")[devices.ids]
    quota = minute.pivot(index="round", columns="device", values="quota_wh")[devices.ids]
    full_wh = devices.max_power_w * business_load_factor(cfg)[:rounds][:, devices.business]
    free = ((want.to_numpy() < quota.to_numpy() - 1) & (got < quota.to_numpy() - 1)
            & (quota.to_numpy() > 0))
    assert free.sum() > 500
    ratio_a = got[free] / (0.75 * full_wh[free])
    ratio_m = want.to_numpy()[free] / (0.75 * full_wh[free])
    n = 60
    sd = 0.02 * np.sqrt(np.sum((0.5 + 0.5 * (np.arange(n) + 0.5) / n) ** 2)) / (0.75 * n)
    se = sd / np.sqrt(free.sum())
    assert ratio_a.mean() == pytest.approx(1.0, abs=5 * se)
    assert ratio_m.mean() == pytest.approx(1.0 - 1 / 180, abs=5 * se + 1e-4)
    assert ratio_a.std() == pytest.approx(sd, rel=0.15)
    assert ratio_m.std() == pytest.approx(sd, rel=0.15)


def test_device_counters_are_what_the_run_metered(monkeypatch):
    made = []

    def keep(*args, **kwargs):
        made.append(make(*args, **kwargs))
        return made[-1]

    make = simulation.analytic_transport
    monkeypatch.setattr(simulation, "analytic_transport", keep)
    out = run_simulation(Config().with_overrides(rounds=120))
    (transport,) = made
    metered = out.tables["devices"].groupby("device", sort=False)["metered_wh"].sum()
    np.testing.assert_allclose(metered[transport.ids], transport.state.energy_wh, rtol=1e-12)
    assert transport.state.energy_wh.sum() > 0


def test_a_round_with_every_device_off_meters_nothing_and_draws_no_noise():
    cfg = Config()
    devices = site(cfg).devices
    env = simpy.Environment()
    t = simulation.analytic_transport(cfg, env, devices, np.random.default_rng(7),
                                      business_load_factor(cfg))
    batches: list[MeterBatch] = []
    t.start(batches.append, lambda status: None)  # type: ignore[arg-type]
    round_s = cfg.time.round_s
    for k, quota in enumerate((1e6, 0.0)):  # a lit round (no quota reached), then a dark one
        t.publish_round(RoundInfo(k, k * round_s, (k + 1) * round_s, 0.0, 0.0))
        for d in devices.ids:
            t.send_setpoint(Setpoint(d, k, quota > 0, 0.0, quota, (k + 1) * round_s))
        env.run()
    state = t.state.rng.bit_generator.state
    lit, dark = batches
    assert lit.round_wh.sum() > 0 and lit.power_w.sum() > 0  # a real round before it
    np.testing.assert_array_equal(dark.round_wh, 0.0)
    np.testing.assert_array_equal(dark.power_w, 0.0)
    assert not dark.on.any()
    np.testing.assert_array_equal(dark.energy_wh, lit.energy_wh)
    assert np.random.default_rng(7).bit_generator.state != state  # the lit round drew noise
    t.publish_round(RoundInfo(2, 2 * round_s, 3 * round_s, 0.0, 0.0))
    env.run()
    assert t.state.rng.bit_generator.state == state  # the dark ones draw none


def test_metering_interval_that_does_not_divide_the_round_keeps_whole_rounds():
    cfg = Config().with_overrides(rounds=48, **{"time.metering_interval_s": 70.0,
                                                "devices.noise_sd": 0.0})
    b = run_simulation(cfg).businesses
    # flat full draw: every quota is met exactly within its own round
    np.testing.assert_allclose(b["metered_wh"], b["planned_wh"], rtol=1e-9, atol=1e-6)


class Explodes:
    def open(self, meta):
        pass

    def record(self, result):
        if result.round == 130:
            raise RuntimeError("disk full")

    def close(self, summary, stakers):
        pass


def test_resume_after_a_failure_gives_the_uninterrupted_tables(tmp_path):
    cfg = Config().with_overrides(rounds=200, **{"output.checkpoint_rounds": 50})
    ref = run_simulation(cfg, tmp_path / "ref").run_dir
    with pytest.raises(RuntimeError, match="disk full"):
        run_simulation(cfg, tmp_path / "cut", recorders=[Explodes()])
    out = run_simulation(cfg, tmp_path / "cut", resume=True)
    assert out.summary["resumed_from_round"] == 100
    for name in TABLES:
        got = (out.run_dir / f"{name}.parquet").read_bytes()
        assert got == (ref / f"{name}.parquet").read_bytes(), name
