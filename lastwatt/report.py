"""``lastwatt report``: PNG figures of one run folder (matplotlib ``Figure``, Agg canvas).

Five figures, each a file in the run folder (or ``out``): where the energy went, stake share
per business, the selected set, efficiency against the oracle and the baselines, and staker
wealth by policy. Runs longer than ``DAILY_AFTER_S`` are drawn per day, shorter ones per round.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure  # no pyplot: no backend, no global state, thread-safe

from lastwatt.errors import InputError
from lastwatt.result import ALLOCATIONS, COMPARED
from lastwatt.storage.files import read_table

DAILY_AFTER_S = 3 * 86_400.0
MAX_BUSINESS_ROWS = 40  # raster / legend beyond this gets unreadable: show the most staked
DPI = 110
COLORS = {  # by allocation key (lastwatt.result.ALLOCATIONS)
    "lastwatt": "#c44e52", "reweighted_selection": "#8172b2", "self_proportional": "#937860",
    "ucb": "#da8bc3", "random_i": "#55a868", "equal_split": "#4c72b0",
}
REQUIRED = {
    "rounds": ("ts", "production_wh", "community_wh", "household_wh", "reserve_wh",
               "planned_wh", "unserved_community_wh", "unserved_household_wh",
               *(a.column for a in ALLOCATIONS)),
    "businesses": ("round", "ts", "business", "stake_tokens", "selected", "performance"),
    "policies": ("round", "ts", "policy", "stakers", "wealth_tokens"),
}


@dataclass(slots=True)
class RunTables:
    """A run folder's tables, read for the figures."""
    name: str
    rounds: pd.DataFrame
    businesses: pd.DataFrame
    policies: pd.DataFrame
    daily: bool  # aggregate per day (long runs) instead of per round

    @property
    def period(self) -> str:
        """The figures' time step: ``day`` for long runs, else ``round``."""
        return "day" if self.daily else "round"


def load_run(run_dir: Path) -> RunTables:
    """Read and check the tables the figures need; a bad folder is one InputError."""
    run_dir = Path(run_dir)
    fix = "give a run folder written by `lastwatt run`"
    if not run_dir.is_dir():
        raise InputError(str(run_dir), "no such run folder", fix)
    tables: dict[str, pd.DataFrame] = {}
    for name, columns in REQUIRED.items():
        try:
            df = read_table(run_dir, name)
        except FileNotFoundError:
            raise InputError(str(run_dir), f"missing {name}.parquet or {name}.csv", fix) from None
        except Exception as err:  # pyarrow / pandas raise many kinds on a damaged file
            raise InputError(str(run_dir), f"cannot read {name} table: {err}", fix) from None
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise InputError(str(run_dir), f"{name} table lacks columns {', '.join(missing)}",
                             "was it written by another LastWatt version?")
        tables[name] = df
    if tables["rounds"].empty:
        raise InputError(str(run_dir), "the run has no rounds", "run at least one round")
    ts = tables["rounds"]["ts"]
    return RunTables(run_dir.name, tables["rounds"], tables["businesses"], tables["policies"],
                     daily=float(ts.max() - ts.min()) > DAILY_AFTER_S)


def _time(df: pd.DataFrame, daily: bool) -> pd.Series:
    t = pd.to_datetime(df["ts"], unit="s", utc=True)
    return t.dt.floor("D") if daily else t


def _by_period(df: pd.DataFrame, daily: bool, columns: list[str], how: str = "sum",
               key: str | None = None) -> pd.DataFrame:
    """Per period (and ``key``) aggregate of ``columns``; index = period start (UTC)."""
    keys = [_time(df, daily).rename("t")] + ([df[key]] if key else [])
    return df.groupby(keys, sort=True)[columns].agg(how)


def _finish(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return path


def _periods(run: RunTables) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(_time(run.rounds, run.daily).unique())


def _step(run: RunTables) -> pd.Timedelta:
    return pd.Timedelta(days=1) if run.daily else pd.Timedelta(seconds=_round_s(run))


def _to_end(df: pd.DataFrame, run: RunTables) -> pd.DataFrame:
    """Repeat the last period at its end, so step plots draw the last period too."""
    last = df.iloc[[-1]].copy()
    last.index = last.index + _step(run)
    return pd.concat([df, last])


def _date_ticks(ax: Axes) -> None:
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _time_axis(ax: Axes, run: RunTables, legend: bool = True) -> None:
    """Same time span on every figure (night-only tails included); legend outside the data."""
    t = _periods(run)
    ax.set_xlim(t[0], t[-1] + _step(run))
    _date_ticks(ax)
    ax.set_xlabel(f"time (UTC), per {run.period}")
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def _round_s(run: RunTables) -> float:
    ts = run.rounds["ts"].to_numpy()
    return float(np.median(np.diff(ts))) if len(ts) > 1 else 3600.0


def energy_split(run: RunTables, path: Path) -> Path:
    """Figure: where the energy went (split, allocation, unserved load) over time."""
    cols = {"community": "community_wh", "households": "household_wh",
            "reserve (incl. unplaced)": "reserve_wh", "businesses (allocated)": "planned_wh"}
    unserved = {"unserved community": "unserved_community_wh",
                "unserved households": "unserved_household_wh"}
    agg = _by_period(run.rounds, run.daily, [*cols.values(), *unserved.values(),
                                             "production_wh"]) / 1000.0
    agg = _to_end(agg, run)
    fig = Figure(figsize=(11, 5))
    ax = fig.subplots()
    colors = ["#4c72b0", "#55a868", "#8c8c8c", "#dd8452"]
    ax.stackplot(agg.index, *(agg[c] for c in cols.values()), labels=list(cols),
                 colors=colors, alpha=0.85, step="post")
    low = np.zeros(len(agg))
    for (label, col), color in zip(unserved.items(), ["#c44e52", "#f28e8e"], strict=True):
        ax.fill_between(agg.index, low, low - agg[col].to_numpy(), step="post", color=color,
                        label=label)
        low = low - agg[col].to_numpy()
    ax.step(agg.index, agg["production_wh"], where="post", color="black", lw=0.8,
            label="production")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_ylabel(f"energy per {run.period}, kWh (unserved below 0)")
    ax.set_title(f"Where the energy went — {run.name}")
    _time_axis(ax, run)
    return _finish(fig, path)


def _business_order(run: RunTables) -> pd.DataFrame:
    """Businesses by realised mean performance (best first): the quality the run revealed."""
    b = run.businesses.groupby("business", sort=False).agg(
        performance=("performance", "mean"), stake=("stake_tokens", "mean"),
        selected=("selected", "sum"))
    return b.sort_values("performance", ascending=False)


def stake_share(run: RunTables, path: Path) -> Path:
    """Figure: each business's share of bonded stake over time."""
    b = run.businesses
    stake = _by_period(b, run.daily, ["stake_tokens"], "mean", key="business")["stake_tokens"]
    share = stake.unstack("business").fillna(0.0)
    share = _to_end(share.div(share.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0), run)
    order = _business_order(run)
    shown = [n for n in order.index if n in share.columns]
    if len(shown) > MAX_BUSINESS_ROWS - 1:
        top = set(order["stake"].nlargest(MAX_BUSINESS_ROWS - 1).index)
        rest = [n for n in shown if n not in top]
        shown = [n for n in shown if n in top]
        share["others"] = share[rest].sum(axis=1)
        shown.append("others")
    cmap = colormaps["RdYlGn"]
    perf = order["performance"].reindex(shown).fillna(0.0).to_numpy()
    colors = cmap((np.clip(perf, -10, 10) + 10) / 20)  # green = high realised performance
    fig = Figure(figsize=(11, 5.5))
    ax = fig.subplots()
    ax.stackplot(share.index, *(share[n] for n in shown), colors=colors, step="post",
                 edgecolor="white", linewidth=0.3)
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"share of bonded stake (mean per {run.period})")
    ax.set_title("Stake share per business (colour: realised mean performance, "
                 "red -10 … green +10; best at the bottom)")
    sm = ScalarMappable(cmap=cmap, norm=Normalize(-10, 10))
    fig.colorbar(sm, ax=ax, label="mean performance p_i", pad=0.01)
    _time_axis(ax, run, legend=False)
    return _finish(fig, path)


def selected_set(run: RunTables, path: Path) -> Path:
    """Figure: which businesses were selected, over time."""
    b = run.businesses
    sel = _by_period(b, run.daily, ["selected"], "mean", key="business")["selected"]
    if run.daily:  # share of the day's settling rounds in which the business was selected
        day_rounds = run.rounds.loc[run.rounds["business_pool_wh"] > 0, "round"] \
            if "business_pool_wh" in run.rounds else run.rounds["round"]
        lit = b[b["round"].isin(day_rounds)]
        sel = _by_period(lit, True, ["selected"], "mean", key="business")["selected"]
    grid = sel.unstack("business").reindex(_periods(run)).fillna(0.0)
    order = _business_order(run)
    rows = [n for n in order.index if n in grid.columns]
    if len(rows) > MAX_BUSINESS_ROWS:
        keep = set(order["selected"].nlargest(MAX_BUSINESS_ROWS).index)
        rows = [n for n in rows if n in keep]
    image = grid[rows].to_numpy().T
    t = grid.index
    fig = Figure(figsize=(11, 1.5 + 0.22 * len(rows)))
    ax = fig.subplots()
    x0, x1 = mdates.date2num(t[0]), mdates.date2num(t[-1])
    step = (x1 - x0) / max(len(t) - 1, 1) or 1 / 24
    ax.imshow(image, aspect="auto", interpolation="nearest", cmap="Greys", vmin=0, vmax=1,
              extent=(x0, x1 + step, len(rows) - 0.5, -0.5))
    _date_ticks(ax)
    labels = [f"{n}  p̄={order.loc[n, 'performance']:+.1f}" for n in rows]
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    what = "share of daytime rounds selected" if run.daily else "selected (black)"
    ax.set_title(f"Selected set over time — {what}; businesses by realised performance, "
                 "best at the top")
    ax.set_xlabel(f"time (UTC), per {run.period}")
    return _finish(fig, path)


def efficiency(run: RunTables, path: Path) -> Path:
    """Figure: total result of LastWatt and the baselines relative to the oracle."""
    cols = [a.column for a in ALLOCATIONS]
    agg = _by_period(run.rounds, run.daily, cols)
    if not run.daily:  # per-round ratios are noisy: a 6-round rolling sum
        agg = agg.rolling(6, min_periods=1).sum()
    agg = _to_end(agg, run)
    oracle = agg["oracle_result"].where(agg["oracle_result"] > 0)
    total_oracle = float(run.rounds["oracle_result"].sum())
    fig = Figure(figsize=(11, 5))
    ax = fig.subplots()
    for a in COMPARED:
        whole = run.rounds[a.column].sum() / total_oracle if total_oracle > 0 else float("nan")
        ax.plot(agg.index, agg[a.column] / oracle, color=COLORS[a.key],
                lw=2.0 if a.key == "lastwatt" else 1.0,
                label=f"{a.label} (whole run {whole:.1%})", drawstyle="steps-post")
    ax.axhline(1.0, color="black", lw=0.8, ls="--", label="oracle")
    ax.axhline(0.0, color="black", lw=0.5)
    ax.set_ylabel("total result R / oracle R" + (" (per day)" if run.daily
                                                 else " (6-round rolling)"))
    ax.set_title("Efficiency against the oracle and the baselines (same draws)")
    _time_axis(ax, run)
    return _finish(fig, path)


def wealth_by_policy(run: RunTables, path: Path) -> Path:
    """Figure: mean tokens per staker of each policy over time."""
    p = run.policies
    last = p.groupby([_time(p, run.daily).rename("t"), p["policy"]], sort=True)[
        ["wealth_tokens", "stakers"]].last()
    per_staker = (last["wealth_tokens"] / last["stakers"].replace(0, np.nan)).unstack("policy")
    fig = Figure(figsize=(11, 4.5))
    ax = fig.subplots()
    for policy in per_staker.columns:
        n = int(last["stakers"].xs(policy, level="policy").iloc[-1])
        ax.plot(per_staker.index, per_staker[policy], lw=1.5, label=f"{policy} ({n} stakers)")
    ax.set_ylabel("mean tokens per staker (end of period)")
    ax.set_title("Staker wealth by policy")
    _time_axis(ax, run)
    return _finish(fig, path)


FIGURES = {
    "energy_split": energy_split,
    "stake_share": stake_share,
    "selected_set": selected_set,
    "efficiency": efficiency,
    "wealth_by_policy": wealth_by_policy,
}


def make_report(run_dir: Path, out: Path | None = None) -> list[Path]:
    """Write the figures of ``run_dir`` as PNGs into ``out`` (default: the run folder)."""
    run = load_run(Path(run_dir))
    out = Path(out) if out is not None else Path(run_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"--out {out}", f"cannot create the folder: {err.strerror}") from None
    return [draw(run, out / f"{name}.png") for name, draw in FIGURES.items()]
