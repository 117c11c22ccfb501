"""Wall time of the default scenario: one simulated year of hourly rounds, in process and as a
command, with the analytic headless devices (the default) and with per-minute mock devices
(``--meter-readings``).

Targets: <= 5 s in process (issue 3); one default year as a command (`lastwatt run --quiet`)
<= 1.5 s (issue 11). Prints medians of several runs and the machine's load (`uptime`), which
on a shared machine moves every figure.
Usage: python benchmarks/bench_year.py [--repeat 3] [--source markov]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lastwatt.config import Config
from lastwatt.simulation import run_simulation

MODES = {"analytic": False, "--meter-readings": True}


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} / {five:.2f} (1 / 5 min, {os.cpu_count()} cores)"


def _fmt(walls: list[float], cpus: list[float]) -> str:
    return (f"wall median {statistics.median(walls):.2f} s "
            f"(runs: {', '.join(f'{w:.2f}' for w in walls)}), "
            f"CPU median {statistics.median(cpus):.2f} s")


def _children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def in_process(cfg: Config, repeat: int) -> tuple[list[float], list[float], dict]:
    """Wall and CPU seconds (CPU: less moved by other jobs on a shared machine)."""
    walls, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = run_simulation(cfg)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return walls, cpus, out.summary


def as_command(args: list[str], repeat: int) -> tuple[list[float], list[float]]:
    """`lastwatt run --quiet` in a fresh interpreter, the way a user types it."""
    exe = Path(sys.executable).with_name("lastwatt")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "lastwatt.cli"]
    walls, cpus = [], []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), _children_cpu_s()
            subprocess.run([*cmd, "run", "--quiet", "--overwrite", "--out", out, *args],
                           check=True, stdout=subprocess.DEVNULL)
            walls.append(time.perf_counter() - t0)
            cpus.append(_children_cpu_s() - c0)
    return walls, cpus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--source", default="markov", help="weather.source (markov, tmy, fitted)")
    args = ap.parse_args()
    overrides = {"weather.source": args.source}
    if args.source in ("tmy", "fitted"):
        overrides["weather.station"] = "greensboro"
    cfg = Config().with_overrides(**overrides)
    run_simulation(cfg.with_overrides(rounds=24))  # warm imports and caches
    print(f"default year ({cfg.rounds} rounds x {cfg.businesses.count} businesses, "
          f"{cfg.population.households} stakers, weather {args.source}); before: {_load()}")
    for mode, per_minute in MODES.items():
        walls, cpus, s = in_process(
            cfg.with_overrides(**{"output.meter_readings": per_minute}), args.repeat)
        print(f"  in process, {mode:16s} {_fmt(walls, cpus)}; meter readings booked "
              f"{s['meter']['booked']:,}, efficiency vs oracle {s['efficiency']['lastwatt']:.3f}")
    if args.source == "markov":  # the command runs the default config
        for mode, per_minute in MODES.items():
            walls, cpus = as_command(["--meter-readings"] if per_minute else [], args.repeat)
            print(f"  as a command, {mode:16s} {_fmt(walls, cpus)}")
    print(f"  targets: in process <= 5 s, as a command (analytic) <= 1.5 s; after: {_load()}")


if __name__ == "__main__":
    main()
