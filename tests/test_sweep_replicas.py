"""Sweeps and experiments run a grid point's seeds as one replica batch: the same rows (and run
folders) as one run per seed; small or unbatchable groups run one seed at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lastwatt.config import Config
from lastwatt.experiment import run_point, run_points
from lastwatt.sweep import MIN_BATCH, MIN_VECTOR_BATCH, run_row, run_rows, seed_groups


def _without_wall_time(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "wall_time_s"}


def _same_rows(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        x, y = _without_wall_time(x), _without_wall_time(y)
        assert x.keys() == y.keys()
        for key in x:
            assert x[key] == y[key] or (x[key] != x[key] and y[key] != y[key]), key  # NaN


def test_a_batched_grid_point_gives_the_rows_of_one_run_per_seed() -> None:
    cfg = Config().with_overrides(rounds=48)
    point = {"mechanism.slash_fraction": 0.1}
    seeds = [42, 43, 44]
    _same_rows(run_rows(cfg, point, seeds), [run_row(cfg, point, s) for s in seeds])


def test_a_batched_grid_point_with_colluders_and_drift_gives_the_rows_of_one_run_per_seed(
        ) -> None:
    cfg = Config().with_overrides(rounds=300)  # > 128 rounds: numpy's pairwise column sums
    point = {"adversaries.collusion.share": 0.1, "world.quality_drift_sd": 0.1}
    seeds = [5, 6, 7]
    rows = run_rows(cfg, point, seeds)
    assert all(row["adversary_capture"] == row["adversary_capture"] for row in rows)  # not NaN
    _same_rows(rows, [run_row(cfg, point, s) for s in seeds])


def test_a_batched_experiment_point_writes_the_folders_of_one_run_per_seed(
        tmp_path: Path) -> None:
    cfg = Config().with_overrides(rounds=48)
    point = {"world.quality_drift_sd": 0.1, "scenario": "drift"}
    batch_dir, single_dir = tmp_path / "batch", tmp_path / "single"
    batch_dir.mkdir(), single_dir.mkdir()
    batched = run_points(cfg, point, [42, 43], str(batch_dir))
    single = [run_point(cfg, point, s, str(single_dir)) for s in (42, 43)]
    _same_rows(batched, single)
    for row in batched:
        table = Path(row["run_dir"]) / "rounds.parquet"
        assert (batch_dir / table).read_bytes() == (single_dir / table).read_bytes()


def test_seeds_group_into_batches_of_at_least_min_vector_batch_for_vectorised_points(
        ) -> None:
    cfg = Config()
    seeds = list(range(2 * MIN_VECTOR_BATCH + 3))
    groups = seed_groups(cfg, {}, seeds, groups=4)
    assert [len(g) for g in groups] == [MIN_VECTOR_BATCH + 2, MIN_VECTOR_BATCH + 1]
    assert np.concatenate(groups).tolist() == seeds
    assert len(seed_groups(cfg, {}, seeds[:MIN_VECTOR_BATCH], groups=1)) == 1
    assert seed_groups(cfg, {}, seeds[: MIN_VECTOR_BATCH - 1], groups=1) == [
        [s] for s in seeds[: MIN_VECTOR_BATCH - 1]]


def test_seeds_group_into_batches_of_at_least_min_batch_for_per_seed_engine_points() -> None:
    cfg = Config().with_overrides(**{"output.meter_readings": True})
    seeds = list(range(2 * MIN_BATCH + 3))
    groups = seed_groups(cfg, {}, seeds, groups=4)
    assert [len(g) for g in groups] == [MIN_BATCH + 2, MIN_BATCH + 1]
    assert np.concatenate(groups).tolist() == seeds
    assert seed_groups(cfg, {}, seeds[: MIN_BATCH - 1], groups=1) == [[s] for s in
                                                                       seeds[: MIN_BATCH - 1]]
    unbatchable = {"population.max_businesses_per_staker": 2, "mechanism.unbonding_rounds": 2}
    assert seed_groups(cfg, unbatchable, seeds, groups=1) == [[s] for s in seeds]
