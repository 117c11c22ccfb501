"""A Monte Carlo of the default year: N seeds (default 1,000) of the default config, model and
headless devices, through the sweep path (``lastwatt sweep``'s code: seed batches on worker
processes) or ``run_replicas`` in this process. The issue 11 target is <= 120 s wall for
1,000 seeds x 8,760 rounds on this 2-core machine.

Prints the wall time, seed-rounds per second and the load (``uptime``: the machine is
shared, figures move with it). ``--rounds`` runs a shorter horizon and extrapolates linearly
to the year (setup, weather included, scales with the rounds too). ``--check K`` also runs
the first K seeds one at a time (``run_simulation``) and compares their summaries.
``--profile`` runs ``direct`` under cProfile and prints the top functions. The CPU time of
all processes over the workers is printed too: what 2 idle cores would take (the machine is
shared, and a loaded one stretches the wall time, not the CPU time).

    python benchmarks/bench_montecarlo.py [--seeds 1000] [--rounds 8760] [--workers 2]
        [--mode sweep|direct] [--check 2] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import time

from lastwatt.config import Config
from lastwatt.replica_run import run_replicas, vectorised
from lastwatt.simulation import run_simulation
from lastwatt.sweep import run_sweep

YEAR = 8760


def load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_s() -> float:
    """CPU seconds of this process and its finished workers."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(cfg: Config, args: argparse.Namespace) -> float:
    t0 = time.perf_counter()
    if args.mode == "sweep":
        runs, _ = run_sweep(cfg, {}, args.seeds, workers=args.workers)
        assert len(runs) == args.seeds
    else:
        outs = run_replicas(cfg, [cfg.seed + j for j in range(args.seeds)])
        assert len(outs) == args.seeds
    return time.perf_counter() - t0


def check(cfg: Config, k: int) -> None:
    """The first ``k`` seeds' batch summaries against one run per seed (not timed)."""
    seeds = [cfg.seed + j for j in range(k)]
    for seed, out in zip(seeds, run_replicas(cfg, seeds), strict=True):
        one = run_simulation(cfg.with_overrides(seed=seed)).summary
        same = all(out.summary[key] == one[key] for key in one if key != "wall_time_s")
        print(f"  seed {seed}: summary {'equals' if same else 'DIFFERS from'} its single run")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=YEAR)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--mode", choices=("sweep", "direct"), default="sweep")
    ap.add_argument("--check", type=int, default=0)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    cfg = Config().with_overrides(rounds=args.rounds)
    print(f"{args.seeds} seeds x {args.rounds} rounds, {args.mode}"
          f"{f', {args.workers} workers' if args.mode == 'sweep' else ''}, "
          f"vectorised={vectorised(cfg)}, before: {load()}")
    cpu0 = cpu_s()
    if args.profile:
        args.mode = "direct"
        prof = cProfile.Profile()
        wall = prof.runcall(run, cfg, args)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    else:
        wall = run(cfg, args)
    cpu = cpu_s() - cpu0
    cores = args.workers if args.mode == "sweep" else 1
    seed_rounds = args.seeds * args.rounds
    print(f"wall {wall:.1f} s, {seed_rounds / wall:,.0f} seed-rounds/s, after: {load()}")
    # the machine is shared: CPU time over the cores used is what an idle machine would take
    print(f"CPU {cpu:.1f} s in all processes: {cpu / cores:.1f} s per core "
          f"(the wall time on {cores} idle cores, perfectly balanced)")
    if args.rounds != YEAR or args.seeds != 1000:
        scale = (1000 * YEAR) / seed_rounds
        print(f"extrapolated to 1,000 seeds x {YEAR} rounds (linear): wall {wall * scale:.0f} s,"
              f" CPU per core {cpu * scale / cores:.0f} s (fixed costs scaled too: use large runs)")
    if args.check:
        check(cfg, args.check)


if __name__ == "__main__":
    main()
