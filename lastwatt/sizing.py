"""Will it fit? The memory a run (or a simulated fleet) needs, estimated before allocating.

A huge ``rounds`` or ``businesses.count`` used to end in a multi-TiB allocation traceback;
now the estimate is compared with the memory available and a too-large size is one line
naming the fields. The estimate counts the arrays that grow with the sizes (per-round x
business tables and load factors, per-round x device tables, per-staker state) at 8 bytes a
value with generous column counts: it errs on the large side by design.
"""

from __future__ import annotations

import os

from lastwatt.errors import ConfigError, InputError

BYTES_PER_ROUND_BUSINESS = 8 * 30  # load factor, business table rows, model arrays
BYTES_PER_ROUND_DEVICE = 8 * 16  # device table rows
BYTES_PER_STAKER_SLOT = 8 * 40  # bonds, beliefs, wealth, decisions (x businesses per staker)
BYTES_PER_ROUND = 8 * 64
BYTES_PER_FLEET_DEVICE = 64 * 1024  # a simulated device: firmware, model, MQTT session state


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo; elsewhere the free physical pages."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def run_bytes(rounds: int, businesses: int, devices: int, stakers: int, k: int) -> int:
    return (rounds * businesses * BYTES_PER_ROUND_BUSINESS + rounds * devices
            * BYTES_PER_ROUND_DEVICE + stakers * k * BYTES_PER_STAKER_SLOT
            + rounds * BYTES_PER_ROUND)


def check_run_size(cfg, available: int | None = None) -> None:  # cfg: lastwatt.config.Config
    devices = len(cfg.devices.map) or cfg.businesses.count * cfg.devices.per_business
    need = run_bytes(cfg.rounds, cfg.businesses.count, devices, cfg.population.households,
                     cfg.population.max_businesses_per_staker)
    have = available_bytes() if available is None else available
    if need > have:
        raise ConfigError(
            "rounds / businesses.count / population.households / devices",
            f"the run needs about {_gib(need)} of memory, {_gib(have)} is available",
            "lower rounds, businesses.count, population.households or devices.per_business")


def check_fleet_size(count: int, available: int | None = None) -> None:
    need = count * BYTES_PER_FLEET_DEVICE
    have = available_bytes() if available is None else available
    if need > have // 2:  # the broker and the controller need the rest
        most = have // 2 // BYTES_PER_FLEET_DEVICE
        raise InputError("--count", f"{count:,} devices need about {_gib(need)} of memory, "
                         f"{_gib(have)} is available", f"use at most {most:,}")
