"""A batch of seeds (lastwatt.replica_run) writes, per seed, the same table files byte for byte
as ``lastwatt run`` with that seed, and refuses what it cannot batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from lastwatt.config import Config
from lastwatt.replica_run import batchable, run_replicas
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


@pytest.mark.parametrize("overrides", [{}, {"world.quality_drift_sd": 0.2,
                                            "adversaries.collusion.share": 0.1},
                                       {"output.meter_readings": True}, ECONOMICS,
                                       {"population.policies": {
                                           "ewa": 0.25, "q_learning": 0.25,
                                           "epsilon_greedy": 0.25, "random": 0.25},
                                        "population.consideration_set": 6},
                                       {"population.max_businesses_per_staker": 2}],
                         ids=["default", "drift_colluders", "per_minute_devices", "economics",
                              "drawing_and_learning_policies", "two_businesses_per_staker"])
def test_each_replica_writes_the_table_files_of_its_single_run(tmp_path: Path,
                                                                overrides: dict) -> None:
    cfg = Config().with_overrides(rounds=60, **overrides)  # nights and days
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


def test_an_unbatchable_config_is_refused_by_name() -> None:
    cfg = Config().with_overrides(**{"population.max_businesses_per_staker": 2,
                                     "mechanism.unbonding_rounds": 2})  # not compared yet
    assert not batchable(cfg)
    with pytest.raises(ValueError, match=r"population\.max_businesses_per_staker"):
        run_replicas(cfg, [1, 2])
