"""``lastwatt devices``: a fleet of simulated relays / plugs against a real broker.

It lives here, not in ``lastwatt``, because the fleet is firmware_bridge's: ``firmware_bridge``
uses ``lastwatt``, never the reverse. The ``lastwatt`` CLI finds :func:`devices` through the
``lastwatt.commands`` entry point declared in ``pyproject.toml``.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from firmware_bridge.service import serve_until_signalled
from lastwatt.config import load_config
from lastwatt.config.mqtt import parse_broker_url
from lastwatt.errors import InputError

STATS_EVERY_S = 10.0
SETTLE_S = 1.0


def devices(
    mqtt: Annotated[str | None, typer.Option(help="broker URL mqtt://host:port (not modbus)")]
    = None,
    config: Annotated[Path | None, typer.Option(help="LastWatt TOML; default scenario if omitted")]
    = None,
    dialect: Annotated[str | None, typer.Option(
        help="native, tasmota, shelly or modbus (all devices)")] = None,
    count: Annotated[int | None, typer.Option(help="N load-test devices sim-00000..")] = None,
    telemetry_s: Annotated[float | None, typer.Option(help="report period, wall seconds")] = None,
    latency_s: Annotated[float, typer.Option(help="command latency, seconds")] = 0.0,
    connections: Annotated[int | None, typer.Option(help="0: one per device; N: shared")] = None,
    modbus_port: Annotated[int, typer.Option(help="modbus: first port; 0: free ports")] = 5020,
    units_per_server: Annotated[int, typer.Option(help="modbus: unit ids per server")] = 1,
    bridge_config: Annotated[Path | None, typer.Option(
        help="modbus: write the bridge TOML for these devices here")] = None,
) -> None:
    """Run simulated device firmware until Ctrl-C (see docs/devices.md, docs/modbus.md)."""
    # the fleet, its dialects (pymodbus) and paho only when the command runs: every
    # `lastwatt` invocation loads this module for its signature
    from firmware_bridge.simulated.fleet import FIRMWARE, Fleet
    from firmware_bridge.simulated.site import fleet_devices, fleet_options

    if dialect is not None and dialect not in (*FIRMWARE, "modbus"):
        raise InputError("--dialect", f"{dialect!r} is not a dialect",
                         f"use one of {', '.join((*FIRMWARE, 'modbus'))}")
    if dialect == "modbus":  # Modbus TCP on loopback, no broker
        from firmware_bridge.modbus_cli import modbus_devices

        modbus_devices(config, count, modbus_port, units_per_server, bridge_config)
        return
    if mqtt is None:
        raise InputError("--mqtt", "no broker given", "pass --mqtt mqtt://host:port")
    for name, value in (("count", count), ("telemetry-s", telemetry_s)):
        if value is not None and value <= 0:
            raise InputError(f"--{name}", f"must be > 0, got {value}")
    if latency_s < 0 or (connections is not None and connections < 0):
        raise InputError("--latency-s/--connections", "must be >= 0")
    parse_broker_url(mqtt)
    if count is not None:
        from lastwatt.sizing import check_fleet_size

        check_fleet_size(count)
    cfg = load_config(config)
    overrides: dict[str, object] = {"latency_s": latency_s, "connections": connections}
    if telemetry_s is not None:
        overrides["telemetry_s"] = telemetry_s
    fleet = Fleet(mqtt, fleet_devices(cfg, dialect, count), fleet_options(cfg, **overrides),
                  cfg.mqtt).start()
    log = logging.getLogger("lastwatt.devices")

    def stop() -> None:
        # what each simulated load really drew, in simulated Wh (devices live in wall time)
        scale = cfg.time.speed if cfg.time.realtime else 1.0
        energy = {d: wh * scale for d, wh in fleet.true_energy_wh().items()}
        fleet.stop()
        log.info("energy drawn (Wh): %s", json.dumps(energy, sort_keys=True))

    if _settled_or_signalled():
        stop()
        return
    if denied := fleet.denied():
        log.error("%d simulated devices on %s, but the broker DENIED %d publishes (%s): check "
                  "this account's ACL", len(fleet.firmware), mqtt, sum(denied.values()),
                  ", ".join(denied))
    else:
        log.warning("%d simulated devices up on %s", len(fleet.firmware), mqtt)

    def counters() -> str:
        denied = fleet.denied()
        if denied:
            log.error("broker denied publishes so far: %s", dict(denied))
        return f"counts {dict(fleet.counts)} rejected {dict(fleet.rejected)}"

    serve_until_signalled(counters, stop, log, STATS_EVERY_S)


def _settled_or_signalled() -> bool:
    """Give the devices' first (QoS 1) publishes SETTLE_S to be acknowledged or refused;
    True when SIGINT / SIGTERM came meanwhile (then the fleet stops at once)."""
    got = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: got.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return got.wait(SETTLE_S)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
