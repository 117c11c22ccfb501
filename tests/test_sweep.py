"""``lastwatt sweep``: parameter parsing, grid x seeds, local processes and Dask give one table."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from lastwatt.config import Config
from lastwatt.errors import InputError
from lastwatt.sweep import grid_points, parse_params, points_table, run_sweep, write_table

# Two days of hourly rounds with a small village: seconds per run, daytime rounds included.
TINY = Config().with_overrides(**{"rounds": 48, "population.households": 40,
                                  "businesses.count": 8, "businesses.active_set": 3})


def test_parse_params_gives_values_of_the_field_type():
    grid = parse_params(["businesses.active_set=2,3", "mechanism.slash_unselected=true,false",
                         "mechanism.slash_fraction=0,0.1"], Config())
    assert grid == {"businesses.active_set": [2, 3],
                    "mechanism.slash_unselected": [True, False],
                    "mechanism.slash_fraction": [0.0, 0.1]}
    assert isinstance(grid["mechanism.slash_fraction"][0], float)


def test_parse_params_reads_policy_mixes_as_tables():
    grid = parse_params(["population.policies={softmax=1.0},{herding=0.5,loyal=0.5}"], Config())
    assert grid["population.policies"] == [{"softmax": 1.0}, {"herding": 0.5, "loyal": 0.5}]


def test_parse_params_accepts_unquoted_text_values():
    assert parse_params(["devices.profile=ramp,cycle"], Config()) == {
        "devices.profile": ["ramp", "cycle"]}


@pytest.mark.parametrize(("param", "named"), [
    ("businesses.activeset=3", "businesses.activeset"),  # typo in the name
    ("nosuch.field=1", "nosuch.field"),
    ("businesses.active_set=three", "businesses.active_set"),  # wrong type
    ("businesses.active_set=0", "businesses.active_set"),  # out of range
    ("businesses.active_set=99", "businesses.active_set"),  # exceeds count
    ("mechanism.slash_fraction=0.1,", "mechanism.slash_fraction"),  # empty value
    ("businesses.active_set", "businesses.active_set"),  # no '='
])
def test_parse_params_rejects_bad_input_naming_param_and_field(param, named):
    with pytest.raises(InputError) as err:
        parse_params([param], Config())
    message = str(err.value)
    assert message.startswith("--param") and named in message and "\n" not in message


def test_parse_params_rejects_a_name_given_twice():
    with pytest.raises(InputError, match="given twice"):
        parse_params(["rounds=24", "rounds=48"], Config())


def test_parse_params_rejects_seed_which_the_repetitions_set():
    with pytest.raises(InputError, match="--seeds"):
        parse_params(["seed=1,2"], Config())


def test_grid_points_is_the_cartesian_product_in_order():
    points = grid_points({"a": [1, 2], "b": [True, False]})
    assert points == [{"a": 1, "b": True}, {"a": 1, "b": False},
                      {"a": 2, "b": True}, {"a": 2, "b": False}]
    assert grid_points({}) == [{}]


def test_run_sweep_rejects_an_invalid_combination_before_running():
    cfg = TINY.with_overrides(**{"businesses.active_set": 2})
    grid = {"businesses.count": [2, 8], "businesses.active_set": [3]}
    with pytest.raises(InputError, match="grid point"):
        run_sweep(cfg, grid, seeds=1, workers=1)


@pytest.fixture(scope="module")
def local_sweep():
    grid = {"mechanism.slash_fraction": [0.0, 0.2]}
    return grid, run_sweep(TINY, grid, seeds=2, workers=2)


def test_local_sweep_has_one_row_per_run_with_common_seeds(local_sweep):
    _, (runs, _) = local_sweep
    assert len(runs) == 4
    assert list(runs["mechanism.slash_fraction"]) == [0.0, 0.0, 0.2, 0.2]
    assert list(runs["seed"]) == [TINY.seed, TINY.seed + 1] * 2
    assert (runs["rounds_completed"] == 48).all()
    for col in ("eff_lastwatt", "eff_random_i", "eff_equal_split", "eff_reweighted_selection"):
        assert runs[col].between(-1.0001, 1.0001).all(), col


def test_common_random_numbers_share_weather_and_oracle_across_grid_points(local_sweep):
    _, (runs, _) = local_sweep
    # slash_fraction changes no weather or performance draw: same seed, same oracle
    a, b = runs.iloc[:2].reset_index(), runs.iloc[2:].reset_index()
    assert np.array_equal(a["production_kwh"], b["production_kwh"])
    assert np.allclose(a["result_oracle"], b["result_oracle"])
    assert not np.allclose(a["production_kwh"].iloc[0], a["production_kwh"].iloc[1])


def test_points_table_has_means_and_intervals_per_grid_point(local_sweep):
    _, (runs, points) = local_sweep
    assert list(points["mechanism.slash_fraction"]) == [0.0, 0.2]
    assert (points["runs"] == 2).all()
    first = runs[runs["mechanism.slash_fraction"] == 0.0]["eff_lastwatt"]
    assert points.loc[0, "eff_lastwatt"] == pytest.approx(first.mean())
    assert (points["eff_lastwatt_lo"] <= points["eff_lastwatt"]).all()
    assert (points["eff_lastwatt"] <= points["eff_lastwatt_hi"]).all()
    gain = points["gain_vs_random_i"]
    assert list(gain) == pytest.approx(list(points["eff_lastwatt"] - points["eff_random_i"]))


def test_dask_cluster_gives_the_same_rows_as_local_processes(local_sweep):
    from distributed import LocalCluster

    grid, (local_runs, _) = local_sweep
    with LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                      dashboard_address=None) as cluster:
        dask_runs, dask_points = run_sweep(TINY, grid, seeds=2, workers=None,
                                           dask_address=cluster.scheduler_address)
    compare = [c for c in local_runs.columns if c != "wall_time_s"]
    pd.testing.assert_frame_equal(dask_runs[compare], local_runs[compare])
    assert len(dask_points) == 2


def test_unreachable_dask_scheduler_is_an_input_error():
    with pytest.raises(InputError, match="--dask"):
        run_sweep(TINY, {}, seeds=1, workers=None, dask_address="tcp://127.0.0.1")  # no port


def test_dask_without_the_extra_is_one_line_naming_the_extra(tmp_path):
    # None in sys.modules makes `import distributed` fail as if the extra were not installed
    code = ("import sys; sys.modules['distributed'] = None; from lastwatt.cli import main; "
            "main()")
    proc = subprocess.run(
        [sys.executable, "-c", code, "sweep", "--dask", "tcp://127.0.0.1:8786", "--seeds", "1",
         "--rounds", "2", "--out", str(tmp_path / "sweep.csv")],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "lastwatt[dask]" in lines[0] and "--dask" in lines[0]
    assert not (tmp_path / "sweep.csv").exists()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_table_writes_runs_and_points_side_by_side(tmp_path, suffix):
    runs = pd.DataFrame({"population.policies": [{"softmax": 1.0}], "seed": [1],
                         "eff_lastwatt": [0.5]})
    points = pd.DataFrame({"population.policies": [{"softmax": 1.0}], "runs": [1]})
    paths = write_table(runs, points, tmp_path / "sub" / f"sweep{suffix}")
    assert [p.name for p in paths] == [f"sweep{suffix}", f"sweep_points{suffix}"]
    read = pd.read_csv if suffix == ".csv" else pd.read_parquet
    back = read(paths[0])
    assert back["population.policies"].iloc[0] == "{'softmax': 1.0}"
    assert back["eff_lastwatt"].iloc[0] == 0.5


def test_write_table_rejects_an_unknown_format(tmp_path):
    with pytest.raises(InputError, match=r"\.csv or \.parquet"):
        write_table(pd.DataFrame(), pd.DataFrame(), tmp_path / "sweep.xlsx")


def test_cli_sweep_bad_param_is_one_line_and_exit_code_2():
    proc = subprocess.run(
        [sys.executable, "-m", "lastwatt.cli", "sweep", "--param", "businesses.nope=1"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--param businesses.nope" in lines[0]


def test_points_table_shows_one_row_per_grid_point(local_sweep):
    grid, (_, points) = local_sweep
    table = points_table(points, list(grid))
    assert table.row_count == 2 and table.columns[0].header == "slash_fraction"
