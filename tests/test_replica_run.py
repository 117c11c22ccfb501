"""A batch of seeds (lastwatt.replica_run) writes, per seed, the same table files byte for byte
as ``lastwatt run`` with that seed, and refuses what it cannot batch."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lastwatt.config import Config
from lastwatt.replica_run import batchable, run_replicas, vectorised
from lastwatt.simulation import run_simulation

# every mechanism feature of lastwatt.model.replica_economics at once, a Sybil, entry and exit
ECONOMICS = {"mechanism.reward_mode": "revenue", "adversaries.bribery.share": 0.5,
             "adversaries.bribery.business": 1, "mechanism.inflation_rate": 0.01,
             "mechanism.inflation_change": 0.002, "mechanism.surplus": "positive_expected",
             "mechanism.unbonding_rounds": 2, "mechanism.stake_weighting": "conviction",
             "world.quality_drift_sd": 0.5, "population.abstain_probability": 0.2,
             "adversaries.sybil.supply_share": 0.2, "adversaries.sybil.accounts": 5,
             "world.presence": [{"business": 1, "enters": 20}, {"business": 3, "exits": 40}]}
TABLES = ("rounds.parquet", "businesses.parquet", "policies.parquet", "devices.parquet",
          "stakers.parquet")


# quotas that bind and do not: the ramp draws 3/4 of its max power over a round, business
# load profiles cap the plan below it, noise 0.1 pushes draws over and under the quotas, and a
# 7-minute metering interval leaves a short last interval
PROFILES_NOISE = {"devices.profile": "ramp", "devices.noise_sd": 0.1,
                  "time.metering_interval_s": 420.0,
                  "demand.business_profiles": ["G0", "flat", "L0"]}


@pytest.mark.parametrize("overrides", [{}, {"world.quality_drift_sd": 0.2,
                                            "adversaries.collusion.share": 0.1},
                                       PROFILES_NOISE, {"devices.profile": "cycle"},
                                       {"output.meter_readings": True},
                                       {"devices.noise_sd": 0.2}, ECONOMICS,
                                       {"population.policies": {
                                           "ewa": 0.25, "q_learning": 0.25,
                                           "epsilon_greedy": 0.25, "random": 0.25},
                                        "population.consideration_set": 6},
                                       {"population.max_businesses_per_staker": 2}],
                         ids=["default", "drift_colluders", "ramp_profiles_noise", "cycle",
                              "per_minute_devices", "noise_above_gaussian_sum", "economics",
                              "drawing_and_learning_policies", "two_businesses_per_staker"])
def test_each_replica_writes_the_table_files_of_its_single_run(tmp_path: Path,
                                                                overrides: dict) -> None:
    cfg = Config().with_overrides(rounds=150, **overrides)  # winter: business energy from day 4
    seeds = [42, 43, 44]
    outs = run_replicas(cfg, seeds, tmp_path / "batch")
    for seed, out in zip(seeds, outs, strict=True):
        one = run_simulation(cfg.with_overrides(seed=seed), out_dir=tmp_path / "single")
        assert out.run_dir is not None and one.run_dir is not None
        assert out.run_dir.name == one.run_dir.name
        for name in TABLES:
            assert (out.run_dir / name).read_bytes() == (one.run_dir / name).read_bytes(), name
        summary = {k: v for k, v in out.summary.items() if k != "wall_time_s"}
        assert summary == {k: v for k, v in one.summary.items() if k != "wall_time_s"}


def test_the_profiles_config_has_device_rounds_cut_at_their_quota_and_others_under_it(
        tmp_path: Path) -> None:
    cfg = Config().with_overrides(rounds=150, **PROFILES_NOISE)
    assert vectorised(cfg)
    out = run_replicas(cfg, [42, 43], tmp_path)[0]
    assert out.run_dir is not None
    dev = pd.read_parquet(out.run_dir / "devices.parquet")
    on = dev[dev["quota_wh"] > 0]
    cut = on["metered_wh"] == on["quota_wh"]
    assert cut.sum() > 10 and (~cut).sum() > 10
    assert (on["metered_wh"] <= on["quota_wh"]).all()


def test_vectorised_runs_only_virtual_time_analytic_devices_on_the_gaussian_sum_path() -> None:
    cfg = Config()
    assert vectorised(cfg)
    assert not vectorised(cfg.with_overrides(**{"output.meter_readings": True}))
    assert not vectorised(cfg.with_overrides(**{"time.realtime": True}))
    assert not vectorised(cfg.with_overrides(**{"devices.noise_sd": 0.2}))
    assert not vectorised(cfg.with_overrides(**{"population.max_businesses_per_staker": 2,
                                                "mechanism.unbonding_rounds": 2}))


def test_summaries_over_weeks_equal_the_single_runs_without_run_folders() -> None:
    # 400 rounds: the column sums take numpy's pairwise path (more than 128 rounds) and the
    # late-turnover quarter has more than 8 daytime rounds
    cfg = Config().with_overrides(rounds=400, **{"adversaries.collusion.share": 0.1})
    seeds = [7, 8]
    for seed, out in zip(seeds, run_replicas(cfg, seeds), strict=True):
        assert out.run_dir is None
        one = run_simulation(cfg.with_overrides(seed=seed)).summary
        assert {k: v for k, v in out.summary.items() if k != "wall_time_s"} == {
            k: v for k, v in one.items() if k != "wall_time_s"}


def test_an_unbatchable_config_is_refused_by_name() -> None:
    cfg = Config().with_overrides(**{"population.max_businesses_per_staker": 2,
                                     "mechanism.unbonding_rounds": 2})  # not compared yet
    assert not batchable(cfg)
    with pytest.raises(ValueError, match=r"population\.max_businesses_per_staker"):
        run_replicas(cfg, [1, 2])
