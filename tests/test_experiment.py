"""``lastwatt experiment``: a small suite end to end, its report checked against the run
folders; bad suites are one-line errors with exit code 2."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lastwatt.errors import ConfigError
from lastwatt.experiment import load_suite
from lastwatt.storage.files import read_table
from tests.experiment_helpers import run_experiment

SUITE = """
title = "tiny"
rounds = 60
seed = 7
seeds = 2

[base]
"population.households" = 40
"businesses.count" = 6
"businesses.active_set" = 2

[scenarios.default]
[scenarios.noisy]
"population.rating_noise_sd" = 8.0
[scenarios.learners.population]
policies = { q_learning = 0.5, ewa = 0.5 }

[mechanisms.staking]
[mechanisms.no_stakes_at_risk]
"mechanism.reward_share" = 0.0
"mechanism.slash_fraction" = 0.0
"""


def test_suite_report_numbers_match_the_run_folders(tmp_path: Path):
    out, runs, text = run_experiment(tmp_path, SUITE)
    assert len(runs) == 3 * 2 * 2
    assert (out / "efficiency.png").stat().st_size > 0
    for (scenario, mech), df in runs.groupby(["scenario", "mechanism"]):
        effs = []
        for run_dir in df["run_dir"]:
            rounds = read_table(out / "runs" / run_dir, "rounds")
            effs.append(rounds["total_result"].sum() / rounds["oracle_result"].sum())
        section = text.split(f"## Scenario `{scenario}`")[1].split("## ")[0]
        row = next(line for line in section.splitlines() if line.startswith(f"| {mech} |"))
        shown = float(re.match(r"\| \S+ \| (-?[\d.]+)%", row).group(1)) / 100
        assert shown == pytest.approx(np.mean(effs), abs=6e-4)  # one decimal of a percent


def test_same_suite_twice_gives_identical_runs_tables(tmp_path: Path):
    from lastwatt.experiment import run_suite

    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE.split("[scenarios.noisy]")[0] + "[mechanisms.staking]\n")
    a, _ = run_suite(suite, tmp_path / "a", workers=1)
    b, _ = run_suite(suite, tmp_path / "b", workers=1)
    cols = [c for c in a.columns if c not in ("wall_time_s",)]
    pd.testing.assert_frame_equal(a[cols], b[cols])


@pytest.mark.parametrize("body, where", [
    ("seeds = 1\n[scenarios.a]\n[mechanisms.b]\n", "seeds"),
    ("[scenarios.a]\n\"population.rating_noise_sd\" = -1.0\n[mechanisms.b]\n",
     "population.rating_noise_sd"),
    ("[scenarios.a]\n[mechanisms.b]\n\"mechanism.slash_fraction\" = 1.5\n",
     "mechanism.slash_fraction"),
    ("[scenarios.a]\n[mechanisms.b]\n\"mechanism.nonsense\" = 1\n", "mechanism.nonsense"),
    ("[mechanisms.b]\n", "scenarios"),
])
def test_bad_suites_are_one_line_errors_naming_the_field(tmp_path: Path, body: str, where: str):
    suite = tmp_path / "bad.toml"
    suite.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_suite(suite)
    assert where in str(err.value) and "\n" not in str(err.value)
    done = subprocess.run([sys.executable, "-m", "lastwatt.cli", "experiment", str(suite),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and where in done.stderr
