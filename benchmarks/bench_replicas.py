"""Throughput of the replica axis: ``ReplicaMarket`` (R seeds at once) against one ``Market``
per seed, at the default village (320 stakers x 20 businesses, I = 5).

Every round has business energy (the pool the active set can absorb, as
``bench_model.py``), metered energy = plan. Prints seed-rounds per second (wall clock) and the
CPU time per seed-round; the issue 11 target is >= 100,000 seed-rounds/s at 1,000 seeds.
Check ``uptime``: the figures move with the machine's load.

    python benchmarks/bench_replicas.py [--replicas 1000] [--rounds 50] [--economics]
        [--policies ewa=0.3,q_learning=0.3,epsilon_greedy=0.2,random=0.2]
        [--consideration-set 5] [--max-businesses 3]

``--economics``: with every mechanism and world feature of the batch on (``ECONOMICS``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lastwatt.config import Config
from lastwatt.model.market import Market
from lastwatt.model.replicas import ReplicaMarket
from lastwatt.rng import streams

# revenue mode, bribery, inflation, surplus, unbonding, conviction, a Sybil, entry and exit
ECONOMICS = {
    "mechanism.reward_mode": "revenue", "adversaries.bribery.share": 0.5,
    "mechanism.inflation_rate": 0.001, "mechanism.inflation_change": 0.0001,
    "mechanism.surplus": "positive_expected", "mechanism.unbonding_rounds": 2,
    "mechanism.stake_weighting": "conviction", "adversaries.sybil.supply_share": 0.2,
    "adversaries.sybil.accounts": 10, "population.abstain_probability": 0.1,
    "world.presence": [{"business": 1, "enters": 10}, {"business": 3, "exits": 20}],
}


def bench_batch(cfg: Config, replicas: int, rounds: int) -> dict:
    t0 = time.perf_counter()
    batch = ReplicaMarket(cfg, [cfg.seed + j for j in range(replicas)])
    setup_s = time.perf_counter() - t0
    pool = np.full(replicas, 0.8 * cfg.businesses.active_set * 9_500.0)
    for r in range(3):  # warm-up
        plan = batch.plan(r, pool, 3600.0)
        batch.settle(plan, plan.planned_wh)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for r in range(3, 3 + rounds):
        plan = batch.plan(r, pool, 3600.0)
        out = batch.settle(plan, plan.planned_wh)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {"setup_s": setup_s, "wall_s": wall, "cpu_s": cpu,
            "efficiency": float(np.mean(out.scalars["efficiency"]))}


def bench_single(cfg: Config, seeds: int, rounds: int) -> dict:
    """One Market per seed over the same rounds as the batch (late rounds cost more: the
    beliefs' float32 decay turns subnormal after a few hundred observations)."""
    wall = cpu = 0.0
    pool = 0.8 * cfg.businesses.active_set * 9_500.0
    for seed in range(cfg.seed, cfg.seed + seeds):
        market = Market(cfg, streams(seed))
        for r in range(3):
            plan = market.plan(r, pool, 3600.0)
            market.settle(plan, plan.planned_wh)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for r in range(3, 3 + rounds):
            plan = market.plan(r, pool, 3600.0)
            market.settle(plan, plan.planned_wh)
        wall, cpu = wall + time.perf_counter() - wall0, cpu + time.process_time() - cpu0
    return {"wall_s": wall, "cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--economics", action="store_true", help="every feature on")
    parser.add_argument("--policies", default=None,
                        help="policy mix as name=share,... (default: the config's)")
    parser.add_argument("--consideration-set", type=int, default=0,
                        help="businesses each staker considers (0: all)")
    parser.add_argument("--max-businesses", type=int, default=1,
                        help="max_businesses_per_staker: k slots per staker")
    args = parser.parse_args()
    cfg = Config().with_overrides(**ECONOMICS) if args.economics else Config()
    cfg = cfg.with_overrides(**{"population.consideration_set": args.consideration_set,
                                "population.max_businesses_per_staker": args.max_businesses})
    if args.policies:
        mix = {name: float(share) for name, share in
               (item.split("=") for item in args.policies.split(","))}
        cfg = cfg.with_overrides(**{"population.policies": mix})
    single = bench_single(cfg, 10, args.rounds)
    n_single = 10 * args.rounds
    print(f"{'how':>22} {'setup s':>8} {'seed-rounds/s':>14} {'cpu us/seed-round':>18}")
    print(f"{'one Market per seed':>22} {'':>8} {n_single / single['wall_s']:14,.0f} "
          f"{1e6 * single['cpu_s'] / n_single:18.1f}")
    r = bench_batch(cfg, args.replicas, args.rounds)
    n = args.replicas * args.rounds
    print(f"{f'ReplicaMarket R={args.replicas}':>22} {r['setup_s']:8.2f} "
          f"{n / r['wall_s']:14,.0f} {1e6 * r['cpu_s'] / n:18.1f}   "
          f"(mean efficiency {r['efficiency']:.3f})")


if __name__ == "__main__":
    # a benchmark that silently computes NaNs measures nothing; float32 underflow of the
    # belief decay is issue 11's separate fix (the batch repeats the single run's arithmetic)
    np.seterr(all="raise", under="ignore")
    main()
