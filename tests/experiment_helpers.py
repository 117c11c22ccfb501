"""Run a scenario suite through the CLI, as the experiment end-to-end tests do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd


def run_experiment(tmp_path: Path, suite_toml: str) -> tuple[Path, pd.DataFrame, str]:
    """``lastwatt experiment`` on ``suite_toml``: its report folder, runs table and report."""
    suite = tmp_path / "suite.toml"
    suite.write_text(suite_toml)
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "lastwatt.cli", "experiment", str(suite),
                           "--out", str(out), "--workers", "1"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out, pd.read_csv(out / "runs.csv"), (out / "report.md").read_text()
