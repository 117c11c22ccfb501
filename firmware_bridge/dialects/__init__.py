"""Vendor dialects, bridge side. Add a vendor: one module, one entry here."""

from firmware_bridge.dialects.base import Counter, Dialect, DialectError, Event, Online, Publish
from firmware_bridge.dialects.shelly import ShellyDialect
from firmware_bridge.dialects.tasmota import TasmotaDialect

DIALECTS: dict[str, type[Dialect]] = {"tasmota": TasmotaDialect, "shelly": ShellyDialect}

__all__ = [
    "DIALECTS",
    "Counter",
    "Dialect",
    "DialectError",
    "Event",
    "Online",
    "Publish",
    "ShellyDialect",
    "TasmotaDialect",
]
