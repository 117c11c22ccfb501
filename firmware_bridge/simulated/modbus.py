"""Simulated Modbus TCP relay modules with Eastron SDM120 meters, on pymodbus's own server.

Each device is a relay (coil 0) and an SDM120 register map (power at 0x000C, total active
energy at 0x0156, float32 kWh, high word first) in front of the shared ``DeviceModel``: the
same physics as the simulated Tasmota / Shelly / native firmware. ``units_per_server``
devices share one server (an RS485 gateway with unit ids 1..n); servers listen on loopback
ports from ``base_port`` (0: free ports). Register values are computed when read, by the
SimDevice ``action`` hook. Faults for tests: ``garbage`` (NaN energy), ``word_order``
(swapped words), ``illegal_address`` and ``device_busy`` (exception answers), ``timeout``
(answers too late).
"""

from __future__ import annotations

import asyncio
import functools
import math
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from lastwatt.config import DeviceEntry
from lastwatt.config.modbus import MeterConfig, ModbusDevice
from lastwatt.devices import DeviceModel, profile_fn
from lastwatt.rng import streams

Fault = Literal["garbage", "word_order", "illegal_address", "device_busy", "timeout"]
ENERGY_ADDR, POWER_ADDR, COIL = 0x0156, 0x000C, 0
INPUT_REGISTERS = 0x0160
LATE_S = 3.0  # a "timeout" fault answers this late: later than any client timeout used here


@dataclass(frozen=True, slots=True)
class ModbusFleetOptions:
    base_port: int = 0  # 0: a free loopback port per server
    units_per_server: int = 1
    profile: str = "constant"
    round_s: float = 3600.0
    noise_sd: float = 0.0
    seed: int = 0
    host: str = "127.0.0.1"


@dataclass(slots=True)
class SimModbusDevice:
    id: str
    model: DeviceModel
    port: int
    unit_id: int
    fault: Fault | None = None


def _float_words(value: float, swap: bool = False) -> list[int]:
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [lo, hi] if swap else [hi, lo]


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ModbusFleet:
    """``ModbusFleet([(id, max_power_w), ...]).start()`` serves them; ``stop()`` ends it."""

    def __init__(self, devices: list[tuple[str, float]],
                 options: ModbusFleetOptions = ModbusFleetOptions(),
                 clock: Callable[[], float] = time.time) -> None:
        self.options = options
        self.clock = clock
        self.lock = threading.Lock()  # device models: server loop vs the in-process API
        rng = streams(options.seed).devices
        profile = profile_fn(options.profile, options.round_s)
        n_servers = math.ceil(len(devices) / options.units_per_server)
        self.ports = [options.base_port + k if options.base_port else _free_port(options.host)
                      for k in range(n_servers)]
        self.devices: dict[str, SimModbusDevice] = {}
        for i, (dev_id, max_w) in enumerate(devices):
            model = DeviceModel(dev_id, max_w, profile, rng, options.noise_sd,
                                enforce_quota=False)
            k, unit = divmod(i, options.units_per_server)
            self.devices[dev_id] = SimModbusDevice(dev_id, model, self.ports[k], unit + 1)
        self.requests = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="modbus-fleet",
                                       daemon=True)
        self.servers: list[ModbusTcpServer] = []

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> ModbusFleet:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(30)
        return self

    def stop(self) -> None:
        if not self.thread.is_alive():
            return

        async def shutdown() -> None:
            for srv in self.servers:
                await srv.shutdown()
        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _serve(self) -> None:
        by_port: dict[int, list[SimDevice]] = {}
        for d in self.devices.values():
            by_port.setdefault(d.port, []).append(SimDevice(
                d.unit_id,
                simdata=([SimData(0, count=16, values=False, datatype=DataType.BITS)],
                         [SimData(0, values=False, datatype=DataType.BITS)],
                         [SimData(0, values=0, datatype=DataType.REGISTERS)],
                         [SimData(0, count=INPUT_REGISTERS, values=0,
                                  datatype=DataType.REGISTERS)]),
                action=functools.partial(self._action, d)))
        for port, sim in by_port.items():
            srv = ModbusTcpServer(sim, address=(self.options.host, port))
            await srv.serve_forever(background=True)
            self.servers.append(srv)

    # --- the device, as the server sees it ----------------------------------------------

    async def _action(self, d: SimModbusDevice, fc: int, start: int, address: int, count: int,
                      registers: list[int], values: list[int] | list[bool] | None
                      ) -> ExcCodes | None:
        self.requests += 1
        if d.fault == "device_busy":
            return ExcCodes.DEVICE_BUSY
        if d.fault == "illegal_address":
            return ExcCodes.ILLEGAL_ADDRESS
        if d.fault == "timeout":
            await asyncio.sleep(LATE_S)
        with self.lock:
            now = self.clock()
            if fc in (5, 15) and values is not None and address == COIL:
                d.model.advance(now)
                d.model.switch(bool(values[0]))
            reading = d.model.advance(now)
            on = d.model.on
        if fc == 1:
            registers[0] = int(on)  # coil 0 is bit 0 of the first coil register
        elif fc == 4:
            kwh = math.nan if d.fault == "garbage" else reading.energy_wh / 1000.0
            swap = d.fault == "word_order"
            registers[ENERGY_ADDR - start:ENERGY_ADDR - start + 2] = _float_words(kwh, swap)
            registers[POWER_ADDR - start:POWER_ADDR - start + 2] = _float_words(
                reading.power_w if on else 0.0, swap)
        return None

    # --- in-process API (tests, benchmarks, the CLI) ------------------------------------

    def true_energy_wh(self) -> dict[str, float]:
        with self.lock:
            now = self.clock()
            return {k: d.model.advance(now).energy_wh for k, d in self.devices.items()}

    def is_on(self, device_id: str) -> bool:
        with self.lock:
            return self.devices[device_id].model.on

    def press(self, device_id: str, on: bool) -> None:
        """Someone at the DIN rail switches the relay by hand."""
        with self.lock:
            m = self.devices[device_id].model
            m.advance(self.clock())
            m.switch(on)

    def set_fault(self, device_id: str, fault: Fault | None) -> None:
        self.devices[device_id].fault = fault

    def bridge_devices(self, business: Callable[[int], int] = lambda i: 0
                       ) -> tuple[list[DeviceEntry], dict[str, ModbusDevice]]:
        """The bridge config for this fleet: ``[[devices]]`` and ``[modbus.devices]``. Each
        meter's ``max_power_w`` is its load's: simulated loads (accelerated time) exceed an
        SDM120's 45 A."""
        entries, modbus = [], {}
        for i, d in enumerate(self.devices.values()):
            entries.append(DeviceEntry(id=d.id, business=business(i), dialect="modbus"))
            modbus[d.id] = ModbusDevice(host=self.options.host, port=d.port, unit_id=d.unit_id,
                                        coil=COIL, meter=MeterConfig(
                                            model="sdm120", max_power_w=d.model.max_power_w))
        return entries, modbus
