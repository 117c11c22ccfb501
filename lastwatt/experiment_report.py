"""The report of an experiment suite: ``report.md`` (a table per scenario) and ``efficiency.png``.

Efficiency is total R / oracle R over the whole run (the run summary's figure), and against
the realistic ceiling (R / I-limited oracle knowing q_i). Differences to the baselines are
paired per seed (same draws), with 95 % t-intervals over seeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lastwatt.result import COMPARED
from lastwatt.summary import efficiency_interval

if TYPE_CHECKING:
    from lastwatt.config import Config
    from lastwatt.experiment import SuiteConfig

# label -> runs.csv column (efficiency against the per-round oracle)
BASELINES = {a.label: f"eff_{a.key}" for a in COMPARED if a.key != "lastwatt"}
# runs.csv column -> table header: daytime mean share of selected slots, shown when measured
CAPTURES = {"adversary_capture": "colluder capture", "sybil_capture": "Sybil capture",
            "entrant_capture": "entrant capture", "bribe_capture": "briber capture"}
KNOWS = {
    "oracle": "this round's p_i, no I limit",
    "I-limited q-oracle": "true q_i, at most I businesses (the realistic ceiling)",
    "equal split": "nothing",
    "random I": "nothing",
    "reweighted selection": "the stakers' selection and its published output",
    "self-proportional": "its own past outputs only (stake-free)",
    "UCB": "sigma and its own observations (no community)",
}


def ci(values: np.ndarray, pct: bool = True) -> str:
    mean, lo, hi = efficiency_interval(np.asarray(values, dtype=float))
    if pct:
        return f"{mean:.1%} [{lo:.1%}, {hi:.1%}]"
    return f"{mean:.3f} [{lo:.3f}, {hi:.3f}]"


def pp(values: np.ndarray) -> str:
    mean, lo, hi = efficiency_interval(np.asarray(values, dtype=float))
    return f"{100 * mean:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def verdict(values: np.ndarray) -> str:
    _, lo, hi = efficiency_interval(np.asarray(values, dtype=float))
    return "beats" if lo > 0 else "loses to" if hi < 0 else "is not distinguishable from"


def scenario_table(df: pd.DataFrame, mechanisms: list[str]) -> str:
    first = mechanisms[0]
    base = df[df["mechanism"] == first].set_index("seed")["eff_lastwatt"]
    head = ["mechanism", "eff. (R / oracle)", "R / q-oracle",
            *(f"minus {b} (pp)" for b in BASELINES), f"minus {first} (pp)", "stake Gini",
            "participation"]
    captures = [c for c in CAPTURES if c in df and df[c].notna().any()]
    head += [CAPTURES[c] for c in captures]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for mech in mechanisms:
        m = df[df["mechanism"] == mech].sort_values("seed")
        eff = m["eff_lastwatt"].to_numpy()
        cells = [mech, ci(eff), ci(m["effq_lastwatt"].to_numpy())]
        cells += [pp(eff - m[col].to_numpy()) for col in BASELINES.values()]
        cells.append("" if mech == first else pp((m.set_index("seed")["eff_lastwatt"]
                                                  - base).to_numpy()))
        cells += [ci(m["stake_gini_final"].to_numpy(), pct=False),
                  ci(m["participation_mean"].to_numpy())]
        cells += [ci(m[c].to_numpy()) for c in captures]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def baseline_table(df: pd.DataFrame) -> str:
    """The mechanism-free allocations of the scenario (the same under every mechanism, except
    reweighted selection, which follows the first mechanism's stakers)."""
    m = df[df["mechanism"] == df["mechanism"].iloc[0]]
    lines = ["| allocation | knows | eff. (R / oracle) |", "|---|---|---|",
             f"| oracle | {KNOWS['oracle']} | 100 % |",
             f"| I-limited q-oracle | {KNOWS['I-limited q-oracle']} | "
             f"{ci(m['eff_quality_oracle'].to_numpy())} |"]
    for label, col in BASELINES.items():
        lines.append(f"| {label} | {KNOWS[label]} | {ci(m[col].to_numpy())} |")
    return "\n".join(lines)


def findings(df: pd.DataFrame, mechanisms: list[str]) -> str:
    out = []
    means = df.groupby("mechanism")["eff_lastwatt"].mean()
    best = max(mechanisms, key=lambda m: means[m])
    out.append(f"- Best mechanism here: **{best}** ({means[best]:.1%} of the oracle).")
    for mech in mechanisms:
        m = df[df["mechanism"] == mech].sort_values("seed")
        parts = [f"{verdict(m['eff_lastwatt'].to_numpy() - m[col].to_numpy())} {label}"
                 for label, col in BASELINES.items()]
        out.append(f"- {mech}: " + "; ".join(parts) + ".")
    return "\n".join(out)


def draw(runs: pd.DataFrame, scenarios: list[str], mechanisms: list[str], path: Path) -> None:
    fig = Figure(figsize=(max(6.0, 3.2 * len(scenarios)), 4.5))
    axes = np.atleast_1d(fig.subplots(1, len(scenarios), sharey=True))
    for ax, scenario in zip(axes, scenarios, strict=True):
        df = runs[runs["scenario"] == scenario]
        stats = [efficiency_interval(df[df["mechanism"] == m]["eff_lastwatt"].to_numpy())
                 for m in mechanisms]
        mean = np.array([s[0] for s in stats])
        err = np.array([[s[0] - s[1] for s in stats], [s[2] - s[0] for s in stats]])
        ax.bar(range(len(mechanisms)), mean, yerr=err, color="#c44e52", alpha=0.8, capsize=3)
        for i, (label, col) in enumerate({"q-oracle": "eff_quality_oracle",
                                          **BASELINES}.items()):
            ax.axhline(df[col].mean(), color=f"C{i}", lw=1, ls="--", label=label)
        ax.set_xticks(range(len(mechanisms)), mechanisms, rotation=35, ha="right", fontsize=8)
        ax.set_title(scenario, fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("R / oracle R (mean, 95 % CI)")
    axes[-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write_report(suite: SuiteConfig, cfg: Config, runs: pd.DataFrame, out: Path,
                 wall_s: float) -> Path:
    scenarios, mechanisms = list(suite.scenarios), list(suite.mechanisms)
    draw(runs, scenarios, mechanisms, out / "efficiency.png")
    parts = [f"# {suite.title}", "",
             f"{len(scenarios)} scenarios x {len(mechanisms)} mechanisms x {suite.seeds} seeds "
             f"({suite.seed}..{suite.seed + suite.seeds - 1}, common random numbers), "
             f"{suite.rounds} rounds each; {len(runs)} runs in {wall_s / 60:.1f} min. "
             "Efficiency = total R / oracle R over the run; R / q-oracle = total R / the "
             "I-limited oracle knowing q_i (can exceed 100 % by luck). Differences are "
             "LastWatt minus the baseline in percentage points of the oracle, paired per seed, "
             "95 % t-intervals. Run folders: `runs/`, one row per run: `runs.csv`.", "",
             "![efficiency](efficiency.png)", ""]
    for scenario in scenarios:
        df = runs[runs["scenario"] == scenario]
        overrides = suite.scenarios[scenario]
        shown = ", ".join(f"`{k} = {v}`" for k, v in overrides.items()) or "the base config"
        parts += [f"## Scenario `{scenario}`", "", f"Overrides: {shown}.", "",
                  baseline_table(df), "", scenario_table(df, mechanisms), "",
                  findings(df, mechanisms), ""]
    parts += ["## Mechanisms", ""]
    for mech, overrides in suite.mechanisms.items():
        shown = ", ".join(f"`{k} = {v}`" for k, v in overrides.items()) or "the base config"
        parts.append(f"- **{mech}**: {shown}")
    path = out / "report.md"
    path.write_text("\n".join(parts) + "\n")
    return path
