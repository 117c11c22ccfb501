"""``lastwatt report``: the run's figures as PNGs; a bad run folder is one clear error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lastwatt.config import Config
from lastwatt.errors import InputError
from lastwatt.report import FIGURES, load_run, make_report
from lastwatt.simulation import run_simulation

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SMALL = {"population.households": 40, "businesses.count": 8, "businesses.active_set": 3}


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """Two days of hourly rounds: drawn per round."""
    cfg = Config().with_overrides(rounds=48, **SMALL)
    return run_simulation(cfg, tmp_path_factory.mktemp("runs")).run_dir


@pytest.fixture(scope="module")
def week_run_csv(tmp_path_factory):
    """A week written as CSV: long enough to be drawn per day."""
    cfg = Config().with_overrides(rounds=24 * 7, **{**SMALL, "output.format": "csv"})
    return run_simulation(cfg, tmp_path_factory.mktemp("runs")).run_dir


def _assert_pngs(paths, folder):
    assert [p.name for p in paths] == [f"{name}.png" for name in FIGURES]
    for p in paths:
        assert p.parent == folder
        data = p.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000, p.name


def test_report_writes_every_figure_into_the_run_folder(short_run):
    assert not load_run(short_run).daily
    _assert_pngs(make_report(short_run), short_run)


def test_report_of_a_long_csv_run_is_drawn_per_day_into_out(week_run_csv, tmp_path):
    assert load_run(week_run_csv).daily
    out = tmp_path / "figures"
    _assert_pngs(make_report(week_run_csv, out), out)


def test_missing_run_folder_is_an_input_error_naming_it(tmp_path):
    missing = tmp_path / "no-such-run"
    with pytest.raises(InputError, match="no such run folder") as err:
        make_report(missing)
    assert str(missing) in str(err.value)


def test_folder_without_tables_names_the_missing_table(tmp_path):
    with pytest.raises(InputError, match=r"missing rounds\.parquet or rounds\.csv"):
        make_report(tmp_path)


def test_damaged_table_is_an_input_error(short_run, tmp_path):
    for name in ("businesses", "policies"):
        (tmp_path / f"{name}.parquet").write_bytes((short_run / f"{name}.parquet").read_bytes())
    (tmp_path / "rounds.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="cannot read rounds table"):
        make_report(tmp_path)


def test_table_without_needed_columns_names_them(short_run, tmp_path):
    import pandas as pd

    for name in ("businesses", "policies"):
        (tmp_path / f"{name}.parquet").write_bytes((short_run / f"{name}.parquet").read_bytes())
    rounds = pd.read_parquet(short_run / "rounds.parquet").drop(columns=["oracle_result"])
    rounds.to_parquet(tmp_path / "rounds.parquet")
    with pytest.raises(InputError, match="lacks columns oracle_result"):
        make_report(tmp_path)


def test_cli_report_of_a_missing_folder_is_one_line_and_exit_code_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lastwatt.cli", "report", str(tmp_path / "x")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no such run folder" in lines[0]
