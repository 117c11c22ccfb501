"""Wall time of the default scenario: one simulated year of hourly rounds, mock devices.

Target (issue 3): <= 5 s. Prints the median of several runs and the split between the model
and the engine with its devices.  Usage: python benchmarks/bench_year.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from lastwatt.config import Config
from lastwatt.simulation import run_simulation


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
    walls = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        out = run_simulation(cfg)
        walls.append(time.perf_counter() - t0)
    s = out.summary
    print(f"default year ({cfg.rounds} rounds x {cfg.businesses.count} businesses, "
          f"{cfg.population.households} stakers, weather {args.source}, mock devices metering "
          f"every {cfg.time.metering_interval_s:g} s)")
    print(f"  wall time median {statistics.median(walls):.2f} s "
          f"(runs: {', '.join(f'{w:.2f}' for w in walls)}); target <= 5 s")
    print(f"  meter readings booked {s['meter']['booked']:,}, "
          f"efficiency vs oracle {s['efficiency']['lastwatt']:.3f}")


if __name__ == "__main__":
    main()
