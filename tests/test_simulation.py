"""Whole runs through the SimPy engine with mock devices."""

import json

import numpy as np
import pandas as pd
import pytest

from lastwatt import simulation
from lastwatt.config import Config
from lastwatt.simulation import run_simulation
from lastwatt.storage.files import TABLES

SHORT = {"rounds": 120}  # five days: seed 42 starts under clouds, then sun


def test_same_config_and_seed_give_identical_output_files(tmp_path):
    cfg = Config().with_overrides(**SHORT)
    a = run_simulation(cfg, tmp_path / "a").run_dir
    b = run_simulation(cfg, tmp_path / "b").run_dir
    for name in TABLES:
        assert (a / f"{name}.parquet").read_bytes() == (b / f"{name}.parquet").read_bytes(), name
    ja, jb = (json.loads((d / "run.json").read_text()) for d in (a, b))
    for j in (ja, jb):
        j["summary"].pop("wall_time_s")
    assert ja == jb


def test_different_seeds_give_different_results():
    a = run_simulation(Config().with_overrides(seed=1, **SHORT))
    b = run_simulation(Config().with_overrides(seed=2, **SHORT))
    assert not a.rounds["total_result"].equals(b.rounds["total_result"])


@pytest.mark.parametrize("profile", ["constant", "cycle"])
def test_metered_energy_is_what_the_mock_devices_integrated(monkeypatch, profile):
    # the devices' own energy counters are the truth; the meter book only sees their readings
    transports = []

    def keep(*args, **kwargs):
        transports.append(make_mocks(*args, **kwargs))
        return transports[-1]

    make_mocks = simulation.mock_transport
    monkeypatch.setattr(simulation, "mock_transport", keep)
    out = run_simulation(Config().with_overrides(**SHORT, **{"devices.profile": profile,
                                                             "output.meter_readings": True}))
    (transport,) = transports
    integrated = {d: mock.model.energy_wh for d, mock in transport.devices.items()}
    metered = out.tables["devices"].groupby("device")["metered_wh"].sum().to_dict()
    assert metered == pytest.approx(integrated, rel=1e-12, abs=1e-9)
    assert sum(integrated.values()) > 0
    per_business = out.businesses.groupby("round")["metered_wh"].sum()
    assert out.tables["devices"].groupby("round")["metered_wh"].sum().to_numpy() == \
        pytest.approx(per_business.to_numpy())


def test_devices_never_draw_more_than_their_quota():
    out = run_simulation(Config().with_overrides(**SHORT))
    d = out.tables["devices"]
    assert (d["metered_wh"] <= d["quota_wh"] + 1e-6).all()


def test_flat_load_at_full_draw_meters_what_was_planned():
    cfg = Config().with_overrides(**SHORT, **{"devices.noise_sd": 0.0})
    b = run_simulation(cfg).businesses
    assert b["metered_wh"].to_numpy() == pytest.approx(b["planned_wh"].to_numpy(), rel=1e-9,
                                                       abs=1e-6)


def test_cycling_load_meters_less_than_planned_and_the_model_uses_the_meter():
    cfg = Config().with_overrides(**SHORT, **{"devices.profile": "cycle"})
    out = run_simulation(cfg)
    b = out.businesses
    assert b["metered_wh"].sum() < 0.9 * b["planned_wh"].sum()
    selected = b[b["selected"] == 1]
    assert selected["result"].to_numpy() == pytest.approx(
        (selected["metered_wh"] * selected["performance"]).to_numpy())


def test_night_rounds_have_no_business_energy_and_settle_nothing():
    r = run_simulation(Config().with_overrides(**SHORT)).rounds
    night = r[r["business_pool_wh"] == 0]
    assert len(night) > 0
    assert (night[["metered_wh", "rewards_tokens", "slashed_tokens"]] == 0).all().all()


def test_csv_format_writes_csv_tables(tmp_path):
    cfg = Config().with_overrides(rounds=24, **{"output.format": "csv"})
    run_dir = run_simulation(cfg, tmp_path).run_dir
    rounds = pd.read_csv(run_dir / "rounds.csv")
    assert len(rounds) == 24 and not (run_dir / "rounds.parquet").exists()


def test_realtime_engine_gives_the_headless_results():
    # the same per-minute devices on both clocks (in real time they always are)
    base = {"rounds": 4, "time.round_s": 60.0, "time.metering_interval_s": 10.0,
            "output.meter_readings": True}
    headless = run_simulation(Config().with_overrides(**base)).rounds
    rt = run_simulation(
        Config().with_overrides(**base, **{"time.realtime": True, "time.speed": 600.0})
    ).rounds
    cols = ["production_wh", "planned_wh", "metered_wh", "total_result"]
    assert rt[cols].to_numpy() == pytest.approx(headless[cols].to_numpy())
    assert (rt["lag_s"] >= 0).all()


class Explodes:
    def open(self, meta):
        pass

    def record(self, result):
        if result.round == 5:
            raise RuntimeError("disk full")

    def close(self, summary, stakers):
        self.summary = summary


def test_a_run_that_fails_midway_keeps_the_rounds_already_recorded(tmp_path):
    sink = Explodes()
    with pytest.raises(RuntimeError, match="disk full"):
        run_simulation(Config().with_overrides(**SHORT), tmp_path, recorders=[sink])
    (run_dir,) = tmp_path.iterdir()
    rounds = pd.read_parquet(run_dir / "rounds.parquet")
    assert list(rounds["round"]) == [0, 1, 2, 3, 4, 5]
    assert sink.summary["error"] == "RuntimeError: disk full"


def test_round_timestamps_follow_the_configured_start():
    r = run_simulation(Config().with_overrides(rounds=3)).rounds
    start = Config().time.start.timestamp()
    assert np.allclose(r["ts"], start + 3600.0 * np.arange(3))


def test_businesses_are_planned_no_more_than_their_load_profile_can_draw():
    from lastwatt.demand import business_load_factor
    from lastwatt.site import site

    cfg = Config().with_overrides(**SHORT, **{"demand.business_profiles": ["G1", "L0"]})
    b = run_simulation(cfg).businesses
    planned = b.pivot(index="round", columns="business", values="planned_wh").to_numpy()
    load = business_load_factor(cfg)
    cap = site(cfg).max_power_w * load  # Wh in a 1 h round
    assert (planned <= cap + 1e-6).all()
    assert (load < 1).any() and planned.sum() > 0
