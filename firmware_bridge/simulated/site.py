"""The fleet a LastWatt run config describes: the controller's own device table, simulated."""

from __future__ import annotations

from firmware_bridge.simulated.options import FleetDevice, FleetOptions
from lastwatt.config import Config
from lastwatt.config.base import validate
from lastwatt.site import site


def fleet_devices(cfg: Config, dialect: str | None = None,
                  count: int | None = None) -> list[FleetDevice]:
    """The run's devices with each business's max draw split over its devices.

    Without ``count`` these are exactly the controller's devices (``devices.map``, else
    ``per_business`` auto devices); ``dialect`` overrides the map's. With ``count``: that many
    devices ``sim-00000``.. spread over the businesses (load tests; the controller does not
    know them).
    """
    the_site = site(cfg)
    max_power_w = the_site.max_power_w
    if count is not None:
        n = cfg.businesses.count
        per_business = [len(range(b, count, n)) for b in range(n)]
        return [FleetDevice(f"sim-{i:05d}", dialect or "native", None,
                            float(max_power_w[i % n] / per_business[i % n]))
                for i in range(count)]
    devices = the_site.devices
    topic = {d.id: d.topic for d in cfg.devices.map}
    return [FleetDevice(d, dialect or devices.dialects[d], topic.get(d), float(p))
            for d, p in zip(devices.ids, devices.max_power_w.tolist(), strict=True)]


def fleet_options(cfg: Config, **overrides: object) -> FleetOptions:
    """Site, profile, noise, seed and the metering interval (in wall seconds) from the config;
    a bad override is a one-line ``ConfigError`` naming it."""
    speed = cfg.time.speed if cfg.time.realtime else 1.0  # devices live in wall time
    options: dict[str, object] = {
        "site": cfg.site, "profile": cfg.devices.profile, "noise_sd": cfg.devices.noise_sd,
        "seed": cfg.seed, "round_s": cfg.time.round_s / speed,
        "telemetry_s": cfg.time.metering_interval_s / speed,
    }
    options.update(overrides)
    return validate(FleetOptions, options, "fleet options")
