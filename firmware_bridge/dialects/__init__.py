"""Vendor dialects, bridge side. Add a vendor: one module, one entry in ``DIALECTS``."""

from firmware_bridge.dialects.base import (
    Capability,
    Counter,
    Dialect,
    DialectError,
    Event,
    Online,
    Switched,
)
from firmware_bridge.dialects.modbus import ModbusDialect
from firmware_bridge.dialects.shelly import ShellyDialect
from firmware_bridge.dialects.tasmota import TasmotaDialect

# device entry's ``dialect`` -> the class the bridge builds for those devices
DIALECTS: dict[str, type[Dialect]] = {
    "tasmota": TasmotaDialect, "shelly": ShellyDialect, "modbus": ModbusDialect,
}

__all__ = [
    "DIALECTS",
    "Capability",
    "Counter",
    "Dialect",
    "DialectError",
    "Event",
    "ModbusDialect",
    "Online",
    "ShellyDialect",
    "Switched",
    "TasmotaDialect",
]
