"""``lastwatt sweep``: a parameter grid x Monte Carlo seeds, one summary row per run.

A run is a pure function (config, seed) -> row (:func:`run_row`); the backends only schedule it:
local processes (``concurrent.futures``) or a Dask distributed cluster (``Client.map``).
Repetition j uses seed ``cfg.seed + j`` at every grid point (common random numbers), so
differences between grid points are paired and not blurred by different weather or draws.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import sys
import tomllib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lastwatt.config import Config
from lastwatt.errors import ConfigError, InputError
from lastwatt.replica_run import batchable, run_replicas, vectorised
from lastwatt.simulation import RunOutput, run_simulation
from lastwatt.summary import RESULT_COLUMNS, efficiency_interval, top_quality_share

MIN_BATCH = 32  # seeds: below it a replica batch's per-round numpy overhead outweighs its savings
MIN_VECTOR_BATCH = 6  # the same for the vectorised batch engine, which pays off sooner
# Summarised per grid point; gain_* are paired differences (LastWatt minus a baseline, same seed).
KEY_METRICS = (
    "eff_lastwatt", "eff_equal_split", "eff_random_i", "eff_reweighted_selection",
    "eff_self_proportional", "eff_ucb", "eff_quality_oracle", "effq_lastwatt",
    "gain_vs_random_i", "gain_vs_equal_split", "turnover_last_quarter", "top_quality_share",
    "participation_mean", "stake_gini_final",
)


def _field_value(cfg: Config, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def _split_values(text: str) -> list[Any]:
    """TOML values (``3,5``, ``true,false``, ``{softmax=1.0},{herding=1.0}``), else plain text."""
    try:
        return list(tomllib.loads(f"v = [{text}]")["v"])
    except tomllib.TOMLDecodeError:
        return [v.strip() for v in text.split(",")]


def parse_params(params: Sequence[str], cfg: Config) -> dict[str, list]:
    """``["NAME=v1,v2", ...]`` -> ``{NAME: [v1, v2]}`` with values of the field's type."""
    grid: dict[str, list] = {}
    for item in params:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InputError(f"--param {item!r}", "expected NAME=v1,v2,...",
                             "e.g. --param businesses.active_set=3,5,8")
        if name == "seed":
            raise InputError("--param seed", "the seed is set per repetition",
                             "set the base seed in the config and the count with --seeds")
        if name in grid:
            raise InputError(f"--param {name}", "given twice", "list all values in one --param")
        values = _split_values(text)
        bare = text.strip()
        if not bare or bare[0] == "," or bare[-1] == "," or any(v == "" for v in values):
            raise InputError(f"--param {name}", f"empty value in {text!r}",
                             "give comma-separated values")
        parsed = []
        for value in values:
            try:
                parsed.append(_field_value(cfg.with_overrides(**{name: value}), name))
            except ConfigError as err:
                raise InputError(f"--param {name}", f"value {value!r}: {err.problem}",
                                 err.fix or "see docs/config.md") from None
        grid[name] = parsed
    return grid


def grid_points(grid: dict[str, list]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, as dicts of dotted name -> value."""
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


def run_row(cfg: Config, point: dict[str, Any], seed: int) -> dict[str, Any]:
    """One run, headless and in memory: the summary row (tables stay in the worker)."""
    run_cfg = cfg.with_overrides(**point, seed=seed)
    return summary_row(run_cfg, point, run_simulation(run_cfg, out_dir=None))


def run_rows(cfg: Config, point: dict[str, Any], seeds: list[int]) -> list[dict[str, Any]]:
    """The rows of ``seeds`` at one grid point: one replica batch when the point's config
    allows it (docs/replicas.md; the same rows as one run per seed), else one run per seed."""
    point_cfg = cfg.with_overrides(**point)
    if len(seeds) < 2 or not batchable(point_cfg):
        return [run_row(cfg, point, seed) for seed in seeds]
    outs = run_replicas(point_cfg, seeds)
    return [summary_row(point_cfg.with_overrides(seed=seed), point, out)
            for seed, out in zip(seeds, outs, strict=True)]


def seed_groups(cfg: Config, point: dict[str, Any], seeds: list[int],
                groups: int) -> list[list[int]]:
    """``seeds`` in at most ``groups`` batches of at least ``MIN_BATCH`` (``MIN_VECTOR_BATCH``
    for the vectorised engine) when the point batches, else one by one (a smaller batch costs
    more than it saves: docs/replicas.md)."""
    point_cfg = cfg.with_overrides(**point)
    groups = min(groups, len(seeds) // (MIN_VECTOR_BATCH if vectorised(point_cfg) else MIN_BATCH))
    if groups < 1 or not batchable(point_cfg):
        return [[seed] for seed in seeds]
    size = -(-len(seeds) // groups)
    return [seeds[i:i + size] for i in range(0, len(seeds), size)]


def summary_row(run_cfg: Config, point: dict[str, Any], out: RunOutput) -> dict[str, Any]:
    """One row of the runs table: the grid point, the seed and the run's key metrics."""
    s = out.summary
    eff = {k: (np.nan if v is None else v) for k, v in s["efficiency"].items()}
    row: dict[str, Any] = {**point, "seed": run_cfg.seed}
    row.update({f"eff_{k}": eff[k] for k in RESULT_COLUMNS})
    q_eff = s["efficiency_vs_quality_oracle"]["lastwatt"]
    row["effq_lastwatt"] = np.nan if q_eff is None else q_eff
    row["gain_vs_random_i"] = eff["lastwatt"] - eff["random_i"]
    row["gain_vs_equal_split"] = eff["lastwatt"] - eff["equal_split"]
    row.update({f"result_{k}": v for k, v in s["result"].items()})
    row.update({f"{k}_kwh": v for k, v in s["energy_kwh"].items()})
    for k in ("turnover_last_quarter", "participation_mean", "stake_gini_final",
              "token_supply_final", "adversary_capture", "sybil_capture", "entrant_capture",
              "bribe_capture"):
        row[k] = np.nan if s.get(k) is None else s[k]
    row["top_quality_share"] = (
        top_quality_share(out.tables["businesses"], out.rounds, run_cfg.businesses.active_set)
        if out.top_quality_share is None else out.top_quality_share)
    row["rounds_completed"] = s["rounds_completed"]
    row["wall_time_s"] = s["wall_time_s"]
    return row


def _progress(total: int, label: str) -> Progress:
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=True,
                    disable=not sys.stderr.isatty())


def map_runs(fn: Callable[..., Any], tasks: Sequence[tuple], workers: int | None = None,
             dask_address: str | None = None, label: str = "runs") -> list[Any]:
    """``[fn(*t) for t in tasks]`` in parallel, results in task order, with a progress bar.

    ``fn`` must be importable by the workers (a module-level function).
    """
    results: list[Any] = [None] * len(tasks)
    with _progress(len(tasks), label) as bar:
        task_id = bar.add_task(label, total=len(tasks))
        for index, value in _completed(fn, tasks, workers, dask_address):
            results[index] = value
            bar.advance(task_id)
    return results


def _completed(fn: Callable[..., Any], tasks: Sequence[tuple], workers: int | None,
               dask_address: str | None) -> Iterator[tuple[int, Any]]:
    if dask_address:
        yield from _dask(fn, tasks, dask_address)
        return
    workers = min(workers or os.cpu_count() or 1, len(tasks))
    if workers <= 1:  # no pool to start for one worker (and tracebacks stay readable)
        for i, t in enumerate(tasks):
            yield i, fn(*t)
        return
    # spawn, not fork: the parent may hold threads (rich, Dask) that fork would copy mid-lock
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {pool.submit(fn, *t): i for i, t in enumerate(tasks)}
        for future in as_completed(futures):
            yield futures[future], future.result()


def _dask(fn: Callable[..., Any], tasks: Sequence[tuple],
          address: str) -> Iterator[tuple[int, Any]]:
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:
        raise InputError("--dask", "needs the optional dask extra, which is not installed",
                         "pip install 'lastwatt[dask]'") from None
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as err:
        raise InputError(f"--dask {address}", f"cannot reach the scheduler: {err}",
                         "start one with `dask scheduler` or check the address") from None
    with client:
        futures = client.map(fn, *zip(*tasks, strict=True), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        for future in dask_completed(futures):
            yield index[future.key], future.result()


def summarise_points(runs: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """One row per grid point: n runs, mean and 95 % t-interval of each key metric."""
    rows = []
    groups = runs.groupby(list(names), sort=False, dropna=False) if names else [((), runs)]
    for key, df in groups:
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(names, key, strict=True))
        row["runs"] = len(df)
        for metric in KEY_METRICS:
            mean, lo, hi = efficiency_interval(df[metric].to_numpy(dtype=float))
            row.update({metric: mean, f"{metric}_lo": lo, f"{metric}_hi": hi})
        rows.append(row)
    return pd.DataFrame(rows)


def run_sweep(cfg: Config, grid: dict[str, list], seeds: int, workers: int | None = None,
              dask_address: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every grid point x ``seeds`` repetitions -> (runs table, points table)."""
    points = grid_points(grid)
    for point in points:  # a combination can be invalid though each value is fine alone
        try:
            cfg.with_overrides(**point)
        except ConfigError as err:
            raise InputError("--param", f"grid point {point}: {err}",
                             "drop the combination's values from the grid") from None
    # the seeds of a grid point run as replica batches; enough batches to keep workers busy
    groups = -(-(workers or os.cpu_count() or 1) // len(points))
    tasks = [(cfg, point, group) for point in points
             for group in seed_groups(cfg, point, [cfg.seed + j for j in range(seeds)], groups)]
    batches = map_runs(run_rows, tasks, workers, dask_address, label="batches")
    runs = pd.DataFrame([row for rows in batches for row in rows])
    return runs, summarise_points(runs, list(grid))


def points_table(points: pd.DataFrame, names: Sequence[str]) -> Table:
    """The grid points for the terminal: key metrics as mean ± 95 % half-width."""
    shown = {"eff_lastwatt": "LastWatt eff.", "gain_vs_random_i": "- random I",
             "gain_vs_equal_split": "- equal split", "top_quality_share": "top-I share",
             "turnover_last_quarter": "turnover"}
    table = Table(title="grid points: mean ± 95 % half-width over seeds")
    for name in names:
        table.add_column(name.rsplit(".", 1)[-1])
    for col in ["runs", *shown.values()]:
        table.add_column(col, justify="right")
    for p in points.to_dict("records"):  # not iterrows: it casts ints to float
        cells = [str(p[n]) for n in names] + [str(p["runs"])]
        cells += [f"{p[m]:.3f} ± {(p[f'{m}_hi'] - p[f'{m}_lo']) / 2:.3f}" for m in shown]
        table.add_row(*cells)
    return table


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Dict / list cells (a policy mix) as text, so CSV and Parquet both take them."""
    out = df.copy()
    for col in out.columns:
        if out[col].map(lambda v: isinstance(v, dict | list)).any():
            out[col] = out[col].map(str)
    return out


def write_table(runs: pd.DataFrame, points: pd.DataFrame, out: Path) -> list[Path]:
    """``out`` gets the runs; ``<stem>_points<suffix>`` beside it gets the grid points."""
    out = Path(out)
    if out.suffix not in (".csv", ".parquet"):
        raise InputError(f"--out {out}", "unknown table format", "end the name in .csv or .parquet")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"--out {out}", f"cannot create the folder: {err.strerror}") from None
    paths = [out, out.with_name(f"{out.stem}_points{out.suffix}")]
    for df, path in zip((runs, points), paths, strict=True):
        if out.suffix == ".csv":
            _plain(df).to_csv(path, index=False)
        else:
            _plain(df).to_parquet(path, index=False)
    return paths
