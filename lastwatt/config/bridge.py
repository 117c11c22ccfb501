"""The bridge's TOML config: which vendor devices it serves and how their firmware is set up.

Unknown keys are errors and every error is one line naming the field (``ConfigError``).
``[mqtt]`` is the shared :class:`MqttConfig` (URL, credentials, TLS); ``[[devices]]`` are
the same entries as ``devices.map`` in the LastWatt config, so one list can serve both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from lastwatt.config.base import Section, read_toml, validate
from lastwatt.config.homeassistant import HomeAssistantOptions
from lastwatt.config.modbus import ModbusOptions
from lastwatt.config.mqtt import MqttConfig
from lastwatt.config.run import Config, DeviceEntry


def _full_topic(ft: str) -> str:
    if "%prefix%" not in ft or "%topic%" not in ft or not ft.endswith("/"):
        raise ValueError("must contain %prefix% and %topic% and end with '/'")
    return ft


# Tasmota's FullTopic: the bridge's option, and the simulated fleet's
FullTopic = Annotated[str, AfterValidator(_full_topic)]


class TasmotaOptions(Section):
    """How the bridge's Tasmota devices are set up: topic layout and telemetry period."""
    full_topic: FullTopic = Field(
        "%prefix%/%topic%/", description="the devices' FullTopic; %prefix% and %topic% required"
    )
    prefixes: tuple[str, str, str] = Field(
        ("cmnd", "stat", "tele"), description="Prefix1..3: commands, answers, telemetry"
    )
    tele_period_s: int | None = Field(
        None, ge=0, le=3600, description="sent as TelePeriod when a device comes online; "
        "0 disables, 1..9 mean 10 (firmware rule); omitted: leave the device's own setting",
    )
    energy_res: int | None = Field(
        5, ge=0, le=5, description="sent as EnergyRes when a device comes online: decimals "
        "of its kWh values (firmware default 3 = 1 Wh; 5 = 0.01 Wh); omitted: leave it",
    )


class ShellyOptions(Section):
    """How the bridge talks to Shelly Gen2 devices: its RPC source name."""
    src: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="RPC source; answers come on <src>/rpc. Default lastwatt-bridge-<site>",
    )


class BridgeConfig(Section):
    """The bridge's TOML file: site, broker, failsafe and polling, vendor options, devices."""
    site: str = Field("village", pattern=r"^[A-Za-z0-9_-]{1,64}$",
                      description="the controller's site (MQTT topic level)")
    client_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="default lastwatt-bridge-<site>"
    )
    failsafe: bool = Field(
        True, description="arm PulseTime / toggle_after at the predicted time to quota, capped "
        "at valid_until, so a relay turns off by itself even when the bridge is gone",
    )
    poll_s: float = Field(
        30.0, ge=0, description="ask a device for its state when silent this long; 0 = never"
    )
    jitter_wh: float = Field(
        1.0, ge=0, description="a register drop up to this is a late reading, not a reset"
    )
    on_poll_s: float = Field(
        1.0, gt=0, description="read a plug this long after switching it on while its power "
        "is not known yet (the off-timer's prediction needs it)",
    )
    mqtt: MqttConfig = MqttConfig()
    tasmota: TasmotaOptions = TasmotaOptions()
    shelly: ShellyOptions = ShellyOptions()
    modbus: ModbusOptions = ModbusOptions()
    homeassistant: HomeAssistantOptions = HomeAssistantOptions()
    devices: list[DeviceEntry] = Field(
        default_factory=list, description="the device map; the bridge serves the vendor ones"
    )

    @model_validator(mode="after")
    def _unique_devices(self) -> BridgeConfig:
        seen_ids: set[str] = set()
        seen_topics: set[tuple[str, str]] = set()
        for i, d in enumerate(self.devices):
            key = (d.dialect, d.topic or d.id)
            if d.id in seen_ids or key in seen_topics:
                raise ValueError(f"devices[{i}] ({d.id}) repeats an id or a {d.dialect} topic")
            seen_ids.add(d.id)
            seen_topics.add(key)
            if d.dialect == "modbus" and d.id not in self.modbus.devices:
                raise ValueError(f"devices[{i}] ({d.id}) is a modbus device without "
                                 f"[modbus.devices.{d.id}] (host, port, unit_id, coil, meter)")
        modbus_ids = {d.id for d in self.devices if d.dialect == "modbus"}
        for name in self.modbus.devices:
            if name not in modbus_ids:
                raise ValueError(f"modbus.devices.{name} names no [[devices]] entry with "
                                 "dialect = \"modbus\"")
        return self

    @property
    def vendor_devices(self) -> list[DeviceEntry]:
        """The devices the bridge translates for (native devices speak for themselves)."""
        return [d for d in self.devices if d.dialect != "native"]

    def resolved_client_id(self) -> str:
        """The MQTT client id: ``client_id``, else ``lastwatt-bridge-<site>``."""
        return self.client_id or f"lastwatt-bridge-{self.site}"

    def resolved_src(self) -> str:
        """The Shelly RPC source: ``shelly.src``, else ``lastwatt-bridge-<site>``."""
        return self.shelly.src or f"lastwatt-bridge-{self.site}"

    @classmethod
    def from_lastwatt(cls, cfg: Config, **options: Any) -> BridgeConfig:
        """The bridge for a LastWatt run config: its site, broker settings and device map."""
        return cls(site=cfg.site, mqtt=cfg.mqtt, devices=list(cfg.devices.map), **options)


def load_bridge_config(path: str | Path) -> BridgeConfig:
    """Read and validate a bridge TOML file; errors are one line naming the field."""
    path = Path(path)
    return validate(BridgeConfig, read_toml(path, "bridge config"), str(path))
