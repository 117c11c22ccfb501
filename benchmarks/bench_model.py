"""Throughput of ``Market.plan`` + ``Market.settle`` alone (no engine, no devices).

Every round is a daytime round (a positive business pool, so settlement runs in full), with the
metered energy equal to the plan. Prints rounds per second per scale (wall clock) and the CPU
time per round (``time.process_time``, of all threads: steadier on a shared machine); the target
at 1M stakers x 10k businesses is >= 20 rounds/s, i.e. < 50 ms per plan + settle. Populations of
at least ``lastwatt.model.fastpath.THREADED_MIN_STAKERS`` use threads (one per CPU), so there
the wall time per round is below the CPU time when other cores are free (check ``uptime``).

The peak resident memory of the process (``peak MB``, from ``getrusage``) only grows: run one
scale (``--only``) for the figure of that scale. ``np.seterr(all="raise")`` is on throughout:
a run that underflows to subnormals (slow on x86) stops with a traceback instead.

    python benchmarks/bench_model.py [--rounds 50] [--only 100kx1k-all]
        [--set mechanism.stake_weighting='"conviction"' ...]
"""

from __future__ import annotations

import argparse
import resource
import time
import tomllib
from typing import Any

import numpy as np

from lastwatt.config import Config
from lastwatt.model.market import Market
from lastwatt.rng import streams

SCALES = {
    # name: (stakers, businesses, active set I, consideration set)
    "320x20": (320, 20, 5, 0),
    "100kx1k": (100_000, 1_000, 100, 8),
    "100kx1k-all": (100_000, 1_000, 100, 0),  # full personal ratings: 100M (staker, business)
    "1Mx10k": (1_000_000, 10_000, 500, 8),
}


def bench(stakers: int, businesses: int, active: int, consider: int, rounds: int,
          overrides: dict[str, Any] | None = None) -> dict:
    cfg = Config().with_overrides(
        **{
            "population.households": stakers,
            "population.consideration_set": consider,
            "businesses.count": businesses,
            "businesses.active_set": active,
            **(overrides or {}),
        }
    )
    t0 = time.perf_counter()
    market = Market(cfg, streams(cfg.seed))
    setup_s = time.perf_counter() - t0
    # a pool the active set can absorb: about 80 % of I average caps (1 h rounds)
    pool_wh = 0.8 * active * float(market.max_power_w.mean())
    for r in range(3):  # warm-up
        plan = market.plan(r, pool_wh, 3600.0)
        market.settle(plan, plan.planned_wh)
    plan_s = settle_s = 0.0
    cpu0 = time.process_time()
    for r in range(3, 3 + rounds):
        t0 = time.perf_counter()
        plan = market.plan(r, pool_wh, 3600.0)
        t1 = time.perf_counter()
        out = market.settle(plan, plan.planned_wh)
        t2 = time.perf_counter()
        plan_s += t1 - t0
        settle_s += t2 - t1
    cpu_s = time.process_time() - cpu0
    return {
        "setup_s": setup_s,
        "plan_ms": 1e3 * plan_s / rounds,
        "settle_ms": 1e3 * settle_s / rounds,
        "rounds_per_s": rounds / (plan_s + settle_s),
        "cpu_ms": 1e3 * cpu_s / rounds,
        "efficiency": out.scalars["efficiency"],
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux: KiB
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--only", choices=sorted(SCALES), help="run one scale only")
    parser.add_argument("--consider", type=int, help="override the consideration set size")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override, the value in TOML (repeatable)")
    args = parser.parse_args()
    overrides = {k: tomllib.loads(f"v = {v}")["v"] for k, v in
                 (item.split("=", 1) for item in args.set)}
    print(
        f"{'scale':>11} {'I':>4} {'consider':>8} {'setup s':>8} {'plan ms':>8} "
        f"{'settle ms':>9} {'rounds/s':>9} {'cpu ms':>7} {'eff.':>6} {'peak MB':>8}"
    )
    for name, (s, n, i, c) in SCALES.items():
        if args.only and name != args.only:
            continue
        c = c if args.consider is None else args.consider
        r = bench(s, n, i, c, args.rounds, overrides)
        print(
            f"{name:>11} {i:>4} {c or 'all':>8} {r['setup_s']:8.2f} {r['plan_ms']:8.2f} "
            f"{r['settle_ms']:9.2f} {r['rounds_per_s']:9.1f} {r['cpu_ms']:7.2f} "
            f"{r['efficiency']:6.3f} {r['peak_mb']:8.0f}"
        )


if __name__ == "__main__":
    np.seterr(all="raise")  # a benchmark that silently computes NaNs measures nothing
    main()
