"""``[modbus]`` in the bridge config: how to reach each Modbus device and read its meter.

``[modbus.devices.<id>]`` holds, for each ``[[devices]]`` entry with ``dialect = "modbus"``,
host, port, unit id (1..247: 0 is broadcast, 248..255 reserved), the relay's coil and the
meter's register map. Every error is one line naming the field (``ConfigError``, exit 2).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lastwatt.config.base import Section

RegisterType = Literal["float32", "float64", "uint16", "int16", "uint32", "int32", "uint64",
                       "int64"]
Table = Literal["input", "holding"]
WordOrder = Literal["big", "little"]
WIDTH = {"float32": 2, "float64": 4, "uint16": 1, "int16": 1, "uint32": 2, "int32": 2,
         "uint64": 4, "int64": 4}  # registers per value


class RegisterConfig(Section):
    """One value of a generic meter map: where it is and how to read it."""

    address: int = Field(ge=0, le=65535, description="wire address (register number - 30001)")
    type: RegisterType = Field("float32", description="float32/64, (u)int16/32/64")
    table: Table = Field("input", description="input (function 04) or holding (03)")
    scale: float = Field(1.0, gt=0, description="raw value x scale = W or Wh")
    word_order: WordOrder = Field("big", description="big: high word first")

    def span(self) -> set[int]:
        return set(range(self.address, self.address + WIDTH[self.type]))


class MeterConfig(Section):
    """The meter: an Eastron model's fixed map, or a generic one (firmware_bridge.modbus)."""

    model: Literal["sdm120", "sdm630", "generic"] = Field(
        "sdm120", description="Eastron map, or generic with energy/power given")
    energy: RegisterConfig | None = Field(None, description="generic: total energy register")
    power: RegisterConfig | None = Field(None, description="generic: active power register")
    max_power_w: float | None = Field(
        None, gt=0, description="the load's maximum (default: the meter's rating); an "
        "energy register growing faster is garbage")

    @model_validator(mode="after")
    def _complete(self) -> MeterConfig:
        if self.model == "generic":
            if self.energy is None:
                raise ValueError("model = \"generic\" needs an energy register")
            if self.max_power_w is None:
                raise ValueError("model = \"generic\" needs max_power_w (the meter's rating)")
        elif self.energy is not None or self.power is not None:
            raise ValueError(f"model = {self.model!r} has a fixed map: set model = \"generic\" "
                             "to give registers")
        p, e = self.power, self.energy
        if p is not None and e is not None and p.table == e.table and p.span() & e.span():
            raise ValueError(f"power registers {sorted(p.span())} overlap energy registers "
                             f"{sorted(e.span())}")
        return self


class ModbusDevice(Section):
    """How to reach one Modbus device: endpoint, unit id, relay coil, meter."""

    host: str = Field("127.0.0.1", min_length=1, description="Modbus TCP host or gateway")
    port: int = Field(502, ge=1, le=65535)
    unit_id: int = Field(1, ge=1, le=247, description="Modbus unit (slave) id")
    coil: int = Field(0, ge=0, le=65535, description="the relay's coil address")
    meter: MeterConfig = MeterConfig()

    @property
    def endpoint(self) -> tuple[str, int]:
        return (self.host, self.port)


class ModbusOptions(Section):
    """``[modbus]``: polling, timeouts, the startup hold, and the devices by id."""

    interval_s: float = Field(60.0, gt=0, description="metering interval: poll every device")
    timeout_s: float = Field(1.0, gt=0, description="answer timeout per request")
    offline_after: int = Field(3, ge=1, description="failed polls in a row -> offline")
    startup_grace_s: float = Field(
        2.0, ge=0, description="after a (re)start: keep a relay as found this long while the "
        "retained setpoints arrive, then switch it as they say")
    devices: dict[str, ModbusDevice] = Field(
        default_factory=dict, description="by device id: host, port, unit_id, coil, meter")

    @model_validator(mode="after")
    def _no_shared_coils(self) -> ModbusOptions:
        seen: dict[tuple[str, int, int, int], str] = {}
        for dev_id, d in self.devices.items():
            key = (d.host, d.port, d.unit_id, d.coil)
            if key in seen:
                raise ValueError(f"devices.{dev_id} uses the coil of devices.{seen[key]} "
                                 f"({d.host}:{d.port} unit {d.unit_id} coil {d.coil})")
            seen[key] = dev_id
        return self
