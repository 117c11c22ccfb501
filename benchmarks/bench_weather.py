"""Precomputation time of the weather and demand series for one year of hourly rounds.

    python benchmarks/bench_weather.py

Cold = first call in the process (reads the file, runs pvlib, includes the pvlib import);
warm = repeated call with the in-process cache. Target: warm well under 0.5 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from lastwatt.config import Config
from lastwatt.demand import business_load_factor, demand_series
from lastwatt.rng import streams
from lastwatt.weather import production_series


def timed(label: str, fn: Callable[[], object]) -> None:
    t0 = time.perf_counter()
    fn()
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    fn()
    print(f"{label:<40} cold {cold:6.3f} s   warm {time.perf_counter() - t0:6.3f} s")


def main() -> None:
    for source in ("markov", "tmy", "fitted"):
        cfg = Config.model_validate({"weather": {"source": source}})
        timed(f"production_series {source}", lambda c=cfg: production_series(c, streams(1).weather))
    cfg = Config.model_validate({"demand": {"household_profile": "H0", "business_profiles": [
        "G0", "G1", "G2", "G3", "G4", "G5", "G6", "L0", "L1", "L2"]}})
    timed("demand_series H0", lambda: demand_series(cfg, streams(1).demand))
    timed("business_load_factor G0..L2", lambda: business_load_factor(cfg))


if __name__ == "__main__":
    main()
