"""``lastwatt experiment`` with a briber and the economics variants: the report's briber
capture is the run folders' daytime share of selected slots held by the briber."""

import re
from pathlib import Path

import numpy as np
import pytest

from lastwatt.storage.files import read_table
from tests.experiment_helpers import run_experiment

SUITE = """
title = "bribes"
rounds = 60
seed = 3
seeds = 2

[base]
"population.households" = 40
"businesses.count" = 6
"businesses.active_set" = 2
"businesses.qualities" = [9.0, 6.0, 2.0, -3.0, -8.0, 4.0]

[scenarios.bribery]
"population.policies" = { q_learning = 0.5, softmax = 0.5 }
"adversaries.bribery.share" = 1.0
"adversaries.bribery.business" = 2
"adversaries.bribery.value_per_kwh" = 0.5

[mechanisms.revenue]
"mechanism.reward_mode" = "revenue"
[mechanisms.conviction_scaled]
"mechanism.stake_weighting" = "conviction"
"mechanism.slash_unselected" = 0.5
"""


def test_report_shows_the_bribers_capture_of_the_run_folders(tmp_path: Path):
    out, runs, text = run_experiment(tmp_path, SUITE)
    assert "briber capture" in text and "colluder capture" not in text  # no colluders here
    seen = []
    for mech, df in runs.groupby("mechanism"):
        captured = []
        for run_dir in df["run_dir"]:
            # from the per-business table, not the market's own figure
            rounds = read_table(out / "runs" / run_dir, "rounds")
            biz = read_table(out / "runs" / run_dir, "businesses")
            day = set(rounds.loc[rounds["business_pool_wh"] > 0, "round"])
            chosen = biz[biz["round"].isin(day) & (biz["selected"] > 0)]
            per_round = chosen.groupby("round")["business"].apply(lambda b: (b == "b02").mean())
            captured.append(per_round.mean())
        row = next(line for line in text.splitlines() if line.startswith(f"| {mech} |"))
        shown = float(re.match(r"(-?[\d.]+)%", row.split("|")[-2].strip()).group(1)) / 100
        assert shown == pytest.approx(np.mean(captured), abs=6e-4)
        seen.append(shown)
    assert max(seen) > 0  # the briber (business 2, "b02") held slots: the check compared something
