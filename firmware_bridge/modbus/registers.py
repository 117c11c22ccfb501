"""Meter register maps and their decoding.

Eastron SDM120 / SDM630 (the vendors' "Modbus Protocol" documents): every measured value is
an IEEE-754 float32 held in two consecutive *input* registers (function code 04), high word
first; register numbers 3xxxx map to wire address number - 30001. Eastron meters answer
only even register counts and at most 30 values (60 registers) per request, so the power and
the energy register, far apart, are read with two requests of two registers each.

| meter  | active power                      | total active energy          |
|--------|-----------------------------------|------------------------------|
| SDM120 | 30013, address 0x000C, W          | 30343, address 0x0156, kWh   |
| SDM630 | 30053 total system power, 0x0034  | 30343, address 0x0156, kWh   |

A generic map names, per value, the table (``input`` FC04 / ``holding`` FC03), the type, a
scale to W / Wh, and the word order, for meters documented otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pymodbus.client import AsyncModbusTcpClient

from lastwatt.config.modbus import MeterConfig, RegisterConfig, RegisterType, Table, WordOrder

DATATYPE = AsyncModbusTcpClient.DATATYPE
_TYPES = {
    "float32": DATATYPE.FLOAT32, "float64": DATATYPE.FLOAT64, "uint16": DATATYPE.UINT16,
    "int16": DATATYPE.INT16, "uint32": DATATYPE.UINT32, "int32": DATATYPE.INT32,
    "uint64": DATATYPE.UINT64, "int64": DATATYPE.INT64,
}
WIDTH = {t: dt.value[1] for t, dt in _TYPES.items()}  # registers per value


@dataclass(frozen=True, slots=True)
class Register:
    address: int
    type: RegisterType = "float32"
    table: Table = "input"
    scale: float = 1.0  # multiply the raw value by this to get W (power) or Wh (energy)
    word_order: WordOrder = "big"

    @property
    def count(self) -> int:
        return WIDTH[self.type]

    def span(self) -> range:
        return range(self.address, self.address + self.count)

    def decode(self, registers: list[int], word_order: WordOrder | None = None) -> float:
        value = AsyncModbusTcpClient.convert_from_registers(
            registers, _TYPES[self.type], word_order or self.word_order)
        return float(value) * self.scale  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class MeterMap:
    energy: Register  # a total that only grows, in Wh after scaling
    power: Register | None  # present active power, W after scaling
    max_power_w: float  # the meter's rating: a register growing faster is garbage


KWH = 1000.0  # Eastron energy registers are kWh
METERS: dict[str, MeterMap] = {
    # SDM120: single phase, 45 A max current
    "sdm120": MeterMap(Register(0x0156, scale=KWH), Register(0x000C), max_power_w=45 * 276.0),
    # SDM630: three phase, 100 A per phase
    "sdm630": MeterMap(Register(0x0156, scale=KWH), Register(0x0034),
                       max_power_w=3 * 100 * 276.0),
}


def register(cfg: RegisterConfig) -> Register:
    return Register(cfg.address, cfg.type, cfg.table, cfg.scale, cfg.word_order)


def meter_map(cfg: MeterConfig) -> MeterMap:
    """The map a meter config stands for; ``max_power_w`` overrides a model's rating."""
    if cfg.model != "generic":
        m = METERS[cfg.model]
        return m if cfg.max_power_w is None else MeterMap(m.energy, m.power, cfg.max_power_w)
    assert cfg.energy is not None and cfg.max_power_w is not None  # the config checks
    power = register(cfg.power) if cfg.power is not None else None
    return MeterMap(register(cfg.energy), power, cfg.max_power_w)


class Garbage(ValueError):
    """A register value that cannot be a reading; ``kind`` names the counter."""

    def __init__(self, kind: str, detail: str) -> None:
        self.kind = kind
        super().__init__(f"{kind}: {detail}")


MAX_ENERGY_WH = 1e13  # beyond any meter's display (Eastron: 9999999.9 kWh)


def check_energy(reg: Register, registers: list[int]) -> float:
    """The energy in Wh, or :class:`Garbage` (not finite, negative, beyond any meter; a
    value that decodes sanely only with the other word order says so)."""
    wh = reg.decode(registers)
    if _sane(wh):
        return wh
    other: WordOrder = "little" if reg.word_order == "big" else "big"
    alt = reg.decode(registers, other) if reg.count > 1 else math.nan
    if _sane(alt) and (alt == 0 or alt >= 1e-3):  # not a denormal: those are bit noise
        raise Garbage("word_order", f"{wh!r} Wh; the registers read sanely as word_order="
                      f"{other!r}: check the meter's word order")
    raise Garbage("garbage", f"energy register reads {wh!r} Wh")


def check_power(reg: Register, registers: list[int], max_power_w: float) -> float:
    w = abs(reg.decode(registers))  # some meters sign the power by direction
    if not math.isfinite(w) or w > 10 * max_power_w:
        raise Garbage("garbage", f"power register reads {w!r} W")
    return w


def _sane(wh: float) -> bool:
    return math.isfinite(wh) and 0 <= wh <= MAX_ENERGY_WH
