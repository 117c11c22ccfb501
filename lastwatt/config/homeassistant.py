"""``[homeassistant]`` in the bridge config: Home Assistant MQTT discovery (docs/modbus.md)."""

from __future__ import annotations

from pydantic import Field

from lastwatt.config.base import Section


class HomeAssistantOptions(Section):
    """Opt-in discovery: announce every device (energy sensor, relay switch) to HA."""

    discovery: bool = Field(False, description="announce devices to Home Assistant")
    prefix: str = Field("homeassistant", pattern=r"^[A-Za-z0-9_-]{1,64}$",
                        description="HA's discovery prefix")
    allow_override: bool = Field(
        False, description="let HA's switch hold a bridged relay off (default: read-only)")
