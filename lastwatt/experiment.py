"""``lastwatt experiment SUITE.toml``: scenarios x mechanisms x seeds -> a report folder.

A suite file names a base config, a run length, seeds, and two tables of dotted overrides:
``[scenarios.NAME]`` (the world: who stakes, how businesses behave) and ``[mechanisms.NAME]``
(the rules: reward, slashing, surplus...). Every scenario runs under every mechanism with the
same seeds ``seed .. seed + seeds - 1`` (common random numbers: paired comparisons). Runs go
through :func:`lastwatt.sweep.map_runs` (local processes or Dask) and each writes its run
folder under ``<out>/runs``; :mod:`lastwatt.experiment_report` writes the Markdown and PNGs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import Field

from lastwatt.config import Config, load_config
from lastwatt.config.base import Section, read_toml, validate
from lastwatt.errors import ConfigError, InputError
from lastwatt.replica_run import batchable, run_replicas
from lastwatt.simulation import run_simulation
from lastwatt.sweep import map_runs, seed_groups, summary_row

Overrides = dict[str, Any]


class SuiteConfig(Section):
    title: str = Field("Mechanism experiment", description="heading of the report")
    config: str | None = Field(None, description="base run config (TOML), relative to the suite")
    rounds: int = Field(1440, ge=1, description="rounds per run")
    seed: int = Field(42, ge=0, description="first seed")
    seeds: int = Field(10, ge=2, description="seeds per scenario x mechanism (>= 2 for a CI)")
    base: Overrides = Field(default_factory=dict, description="overrides applied to every run")
    scenarios: dict[str, Overrides] = Field(min_length=1)
    mechanisms: dict[str, Overrides] = Field(min_length=1)


def _flat(prefix: str, node: Any) -> Overrides:
    """Nested TOML tables -> dotted keys (``{"mechanism": {"surplus": x}}`` ->
    ``mechanism.surplus``); a mapping-valued field (a policy mix) stays whole."""
    if not isinstance(node, dict) or prefix.endswith(("policies", "abstain_by_policy")):
        return {prefix: node}
    out: Overrides = {}
    for key, value in node.items():
        out.update(_flat(f"{prefix}.{key}" if prefix else key, value))
    return out


def load_suite(path: Path) -> tuple[SuiteConfig, Config]:
    """Read and validate a suite; every scenario x mechanism must give a valid config."""
    path = Path(path)
    raw = read_toml(path, "suite")
    for table in ("base", "scenarios", "mechanisms"):
        if table in raw and not isinstance(raw[table], dict):
            raise ConfigError(f"{path}: {table}", "must be a table")
    raw["base"] = _flat("", raw.get("base", {}))
    for table in ("scenarios", "mechanisms"):
        raw[table] = {name: _flat("", v) for name, v in raw.get(table, {}).items()}
    suite = validate(SuiteConfig, raw, str(path))
    base_path = None if suite.config is None else path.parent / suite.config
    cfg = load_config(base_path).with_overrides(rounds=suite.rounds, seed=suite.seed)
    for scenario, mechanism, point in suite_points(suite):
        try:
            cfg.with_overrides(**point)
        except ConfigError as err:
            raise ConfigError(f"{path}: scenario {scenario!r} x mechanism {mechanism!r}",
                              f"{err.where.removeprefix('override: ')}: {err.problem}",
                              err.fix) from None
    return suite, cfg


def suite_points(suite: SuiteConfig) -> list[tuple[str, str, Overrides]]:
    return [
        (s, m, {**suite.base, **scenario, **mechanism, "scenario": s})
        for s, scenario in suite.scenarios.items()
        for m, mechanism in suite.mechanisms.items()
    ]


def run_point(cfg: Config, point: Overrides, seed: int, runs_dir: str) -> dict[str, Any]:
    """One run with its run folder; the summary row plus where the folder is."""
    run_cfg = cfg.with_overrides(**point, seed=seed)
    out = run_simulation(run_cfg, out_dir=Path(runs_dir))
    row = summary_row(run_cfg, {}, out)
    row["run_dir"] = str(Path(out.run_dir).relative_to(runs_dir)) if out.run_dir else ""
    return row


def run_points(cfg: Config, point: Overrides, seeds: list[int],
               runs_dir: str) -> list[dict[str, Any]]:
    """:func:`run_point` for ``seeds``: one replica batch when the point's config allows it
    (docs/replicas.md; the same run folders and rows), else one run per seed."""
    point_cfg = cfg.with_overrides(**point)
    if len(seeds) < 2 or not batchable(point_cfg):
        return [run_point(cfg, point, seed, runs_dir) for seed in seeds]
    rows = []
    for seed, out in zip(seeds, run_replicas(point_cfg, seeds, Path(runs_dir)), strict=True):
        row = summary_row(point_cfg.with_overrides(seed=seed), {}, out)
        row["run_dir"] = str(Path(out.run_dir).relative_to(runs_dir)) if out.run_dir else ""
        rows.append(row)
    return rows


def run_suite(path: Path, out: Path, workers: int | None = None,
              dask_address: str | None = None) -> tuple[pd.DataFrame, Path]:
    """Run every scenario x mechanism x seed; write ``<out>/runs.csv`` and the report."""
    from lastwatt.experiment_report import write_report

    suite, cfg = load_suite(path)
    out = Path(out)
    runs_dir = out / "runs"
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"--out {out}", f"cannot create the folder: {err.strerror}") from None
    t0 = time.perf_counter()
    tasks, labels = [], []
    points = suite_points(suite)
    groups = -(-(workers or os.cpu_count() or 1) // len(points))  # keep the workers busy
    seeds = [suite.seed + j for j in range(suite.seeds)]
    for scenario, mechanism, point in points:
        for group in seed_groups(cfg, point, seeds, groups):  # replica batches where possible
            tasks.append((cfg, point, group, str(runs_dir.resolve())))
            labels += [(scenario, mechanism)] * len(group)
    batches = map_runs(run_points, tasks, workers, dask_address, label="experiment")
    runs = pd.DataFrame([row for rows in batches for row in rows])
    runs.insert(0, "mechanism", [m for _, m in labels])
    runs.insert(0, "scenario", [s for s, _ in labels])
    runs.to_csv(out / "runs.csv", index=False)
    report = write_report(suite, cfg, runs, out, time.perf_counter() - t0)
    return runs, report
