"""``lastwatt devices --dialect modbus``: simulated Modbus TCP relays + SDM120 meters on
pymodbus servers (loopback), with the bridge config that serves them."""

from __future__ import annotations

import logging
from pathlib import Path

from firmware_bridge.service import serve_until_signalled
from firmware_bridge.simulated.site import fleet_devices, fleet_options
from lastwatt.config import load_config
from lastwatt.errors import InputError
from lastwatt.site import site

STATS_EVERY_S = 10.0


def modbus_devices(config: Path | None, count: int | None, base_port: int,
                   units_per_server: int, bridge_config: Path | None) -> None:
    from firmware_bridge.simulated.modbus import ModbusFleet, ModbusFleetOptions

    if not 1 <= units_per_server <= 247:
        raise InputError("--units-per-server", f"must be 1..247, got {units_per_server}")
    if not 0 <= base_port <= 65535:
        raise InputError("--modbus-port", f"must be a TCP port (0: free ports), got {base_port}")
    cfg = load_config(config)
    fo = fleet_options(cfg)
    options = ModbusFleetOptions(base_port=base_port, units_per_server=units_per_server,
                                 profile=fo.profile, round_s=fo.round_s, noise_sd=fo.noise_sd,
                                 seed=cfg.seed)
    devs = fleet_devices(cfg, None, count)
    if base_port and base_port + len(devs) // units_per_server > 65535:
        raise InputError("--modbus-port", "too few ports above it for this many servers")
    if count is None:  # the controller's own devices: each one's business from its table
        table = site(cfg).devices
        business = dict(zip(table.ids, table.business.tolist(), strict=True))
    else:  # load-test devices, spread over the businesses as fleet_devices does
        business = {d.id: i % cfg.businesses.count for i, d in enumerate(devs)}
    fleet = ModbusFleet([(d.id, d.max_power_w) for d in devs], options).start()
    if bridge_config is not None:
        bridge_config.write_text(bridge_toml(fleet, cfg.site, fo.telemetry_s, business))
    log = logging.getLogger("lastwatt.devices")
    log.warning("%d simulated Modbus devices up on 127.0.0.1:%d..%d", len(devs), fleet.ports[0],
                fleet.ports[-1])
    serve_until_signalled(lambda: f"modbus requests {fleet.requests}", fleet.stop, log,
                          STATS_EVERY_S)


def bridge_toml(fleet, site: str, interval_s: float, business: dict[str, int]) -> str:
    """The bridge config serving ``fleet`` (ids are [A-Za-z0-9_.-]: no TOML escaping)."""
    entries, modbus = fleet.bridge_devices()
    lines = [f'site = "{site}"', "", "[modbus]", f"interval_s = {interval_s:g}", ""]
    for e in entries:
        lines += ["[[devices]]", f'id = "{e.id}"', f"business = {business.get(e.id, 0)}",
                  'dialect = "modbus"', ""]
    for dev_id, m in modbus.items():
        lines += [f"[modbus.devices.{dev_id}]", f'host = "{m.host}"', f"port = {m.port}",
                  f"unit_id = {m.unit_id}", f"coil = {m.coil}", "",
                  f"[modbus.devices.{dev_id}.meter]", f'model = "{m.meter.model}"',
                  f"max_power_w = {m.meter.max_power_w:g}", ""]
    return "\n".join(lines)
