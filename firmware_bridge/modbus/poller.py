"""Polls Modbus TCP relays and meters with pymodbus's asyncio client, in a thread of its own.

One client per endpoint (host, port): devices behind one gateway share its connection, and
pymodbus runs their requests one after another; endpoints run in parallel. Every device is
polled once per metering interval (phases spread over it): coil (function 01), then the
meter's energy and power registers (04 or 03). What comes back goes to the bridge as the
same events as the MQTT dialects' (``Switched``, ``Counter``, ``Online``); what fails -
timeouts, Modbus exceptions (illegal address, device busy, ...), lost connections, garbage
registers - goes to the bridge's ``rejected`` counts and never stops a loop.

Relays have no ``valid_until`` and usually no timer, so the off-timer the bridge arms is kept
here, on the bridge's clock: it writes the coil off when due. It dies with the bridge; the
relay then keeps its state (docs/modbus.md says what closes that gap).

After a (re)start the poller reads every device first; until the bridge has sent a device a
command (its retained setpoint arrived) or ``startup_grace_s`` passed, it reports only the
meter, not the relay: the bridge would otherwise switch off a relay that its setpoint keeps on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from firmware_bridge.dialects.base import Counter, Event, Online, Switched
from firmware_bridge.modbus.registers import (
    Garbage,
    MeterMap,
    Register,
    check_energy,
    check_power,
    meter_map,
)
from lastwatt.config.modbus import ModbusDevice, ModbusOptions
from lastwatt.errors import ConfigError

log = logging.getLogger(__name__)
# pymodbus logs every timeout and exception response at ERROR with a frame dump; the bridge
# counts and rate-limits them itself
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

JUMP_SLACK = 1.5  # growth allowed beyond rating x elapsed time (clock jitter, float32 steps)
JUMP_SLACK_WH = 1.0
REBASE_AFTER = 5  # implausible jumps that agree among themselves: the register moved for good
CYCLES_KEPT = 100_000

Sink = Callable[[str, list[Event]], None]
Reject = Callable[[str, str], None]


class PollFailed(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        self.kind = kind
        super().__init__(detail)


@dataclass(slots=True)
class Polled:
    """One device as the poller sees it (loop thread only)."""

    key: str  # the device's topic in the bridge (its id unless the entry sets a topic)
    cfg: ModbusDevice
    meter: MeterMap
    client: AsyncModbusTcpClient
    held: bool = True  # startup: relay state not reported until commanded or grace over
    coil: bool | None = None
    online: bool | None = None
    fails: int = 0
    offset_wh: float = 0.0  # moves the series by rejected-then-confirmed register jumps
    last_wh: float | None = None
    good_mono: float = 0.0  # when last_wh was read
    jumps: list[float] = field(default_factory=list)
    off_timer: asyncio.TimerHandle | None = None
    poll_task: asyncio.Task | None = None


class ModbusPoller:
    def __init__(self, devices: dict[str, ModbusDevice], options: ModbusOptions,
                 names: dict[str, str] | None = None) -> None:
        self.options = options
        self.configs = devices
        self.names = names or {k: k for k in devices}  # key -> config name, for errors
        self.devices: dict[str, Polled] = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="modbus-poller",
                                       daemon=True)
        self.sink: Sink = lambda key, events: None
        self.reject: Reject = lambda kind, detail: None
        self.cycles_s: deque[float] = deque(maxlen=CYCLES_KEPT)  # one device's poll, s
        self.late_s: deque[float] = deque(maxlen=CYCLES_KEPT)  # poll end - its due time, s
        self._tasks: set[asyncio.Task] = set()

    # --- lifecycle (any thread) ---------------------------------------------------------

    def start(self, sink: Sink, reject: Reject) -> None:
        """Connect to every endpoint and read every device once; ``ConfigError`` naming the
        device's host when an endpoint cannot be reached (a typo, not an outage, at start)."""
        self.sink, self.reject = sink, reject
        self.thread.start()
        try:
            self._run(self._begin(), timeout_s=60 + 2 * self.options.timeout_s * len(
                self.configs))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if not self.thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._run(self._end(), timeout_s=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def command(self, key: str, on: bool, off_after_s: float | None) -> None:
        self._soon(lambda: self._spawn(self._switch(self.devices[key], on, off_after_s)))

    def rearm(self, key: str, off_after_s: float) -> None:
        self._soon(lambda: self._arm(self.devices[key], off_after_s))

    def poll_now(self, key: str) -> None:
        self._soon(lambda: self._spawn(self._poll(self.devices[key])))

    def _soon(self, fn: Callable[[], object]) -> None:
        self.loop.call_soon_threadsafe(fn)

    def _run(self, coro, timeout_s: float):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def _spawn(self, coro) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- loop thread ----------------------------------------------------------------------

    async def _begin(self) -> None:
        o = self.options
        clients: dict[tuple[str, int], AsyncModbusTcpClient] = {}
        for key, cfg in self.configs.items():
            client = clients.get(cfg.endpoint)
            if client is None:
                client = AsyncModbusTcpClient(cfg.host, port=cfg.port, timeout=o.timeout_s,
                                              retries=0, reconnect_delay=0.1,
                                              reconnect_delay_max=max(1.0, o.interval_s))
                if not await client.connect():
                    client.close()
                    raise ConfigError(
                        f"modbus.devices.{self.names[key]}.host",
                        f"cannot connect to Modbus TCP {cfg.host}:{cfg.port}",
                        "check host and port, and that the module is powered and reachable")
                clients[cfg.endpoint] = client
            self.devices[key] = Polled(key, cfg, meter_map(cfg.meter), client)
        # read everything once before anything is switched: the relays as found, the baseline
        await asyncio.gather(*(self._poll(d) for d in self.devices.values()))
        found_on = [k for k, d in self.devices.items() if d.coil]
        if found_on:
            log.info("modbus relays found on at start: %s", ", ".join(found_on))
        self.loop.call_later(o.startup_grace_s, self._grace_over)
        n = max(len(self.devices), 1)
        t0 = time.monotonic()
        for i, d in enumerate(self.devices.values()):
            d.poll_task = self.loop.create_task(self._poll_every(d, t0 + o.interval_s * i / n))

    async def _end(self) -> None:
        tasks = [*self._tasks, *(d.poll_task for d in self.devices.values() if d.poll_task)]
        for d in self.devices.values():
            if d.off_timer is not None:
                d.off_timer.cancel()
        for t in tasks:
            t.cancel()
        for client in {id(d.client): d.client for d in self.devices.values()}.values():
            client.close()
        if tasks:  # a request cut off by close() may take its timeout to notice
            await asyncio.wait(tasks, timeout=2 * self.options.timeout_s)

    def _grace_over(self) -> None:
        for d in self.devices.values():
            self._release(d)

    def _release(self, d: Polled) -> None:
        """End the startup hold: from now on the bridge sees the relay and the device's
        availability (and reasserts its wanted state on the Online)."""
        if d.held:
            d.held = False
            events: list[Event] = []
            if d.online is not None:
                events.append(Online(d.online))
            if d.coil is not None:
                events.append(Switched(d.coil))
            if events:
                self.sink(d.key, events)

    async def _poll_every(self, d: Polled, due: float) -> None:
        interval = self.options.interval_s
        while True:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            t0 = time.monotonic()
            await self._poll(d)
            end = time.monotonic()
            self.cycles_s.append(end - t0)
            self.late_s.append(end - due)
            due += interval
            if due < end:  # fell a whole interval behind: skip rather than burst
                due = end + interval

    async def _poll(self, d: Polled) -> None:
        try:
            bits = await self._call(d, lambda: d.client.read_coils(
                d.cfg.coil, count=1, device_id=d.cfg.unit_id))
            coil = bool(bits.bits[0])
            energy = await self._read(d, d.meter.energy)
            total_wh = check_energy(d.meter.energy, energy)
            power_w = None
            if d.meter.power is not None:
                power_w = check_power(d.meter.power, await self._read(d, d.meter.power),
                                      d.meter.max_power_w)
            total_wh = self._plausible(d, total_wh)
        except (PollFailed, Garbage) as err:
            self._failed(d, err.kind, str(err))
            return
        d.fails = 0
        events: list[Event] = []
        if d.online is not True:
            d.online = True
            if not d.held:
                events.append(Online(True))
        d.coil = coil
        if not d.held:
            events.append(Switched(coil))
        events.append(Counter(total_wh, power_w))
        self.sink(d.key, events)

    def _plausible(self, d: Polled, raw_wh: float) -> float:
        """``raw_wh`` moved onto the device's series. Accepted: a rise no faster than the
        meter's rating since the last good reading. Anything else - a faster rise, a drop - is
        garbage (a misread, swapped words) until REBASE_AFTER such readings agree (they do not
        go down): then the register really moved. A drop is then a reset (meter replaced or
        cleared) that the bridge's counter carries over; a rise continues the series without
        the jump (meter swapped, register preset)."""
        now = time.monotonic()
        last = d.last_wh
        allowed = d.meter.max_power_w * (now - d.good_mono) / 3600.0 * JUMP_SLACK + JUMP_SLACK_WH
        if last is None or 0 <= raw_wh - last <= allowed:
            d.last_wh, d.good_mono, d.jumps = raw_wh, now, []
            return raw_wh + d.offset_wh
        d.jumps.append(raw_wh)
        if len(d.jumps) >= REBASE_AFTER and all(b >= a for a, b in itertools.pairwise(d.jumps)):
            if raw_wh > last:
                d.offset_wh -= d.jumps[0] - last
            d.last_wh, d.good_mono, d.jumps = raw_wh, now, []
            self.reject("modbus_rebased", f"{d.key}: energy register moved {last:.1f} -> "
                        f"{raw_wh:.1f} Wh and stayed there: continuing from it")
            return raw_wh + d.offset_wh
        raise Garbage("implausible", f"{d.key}: energy register went {last:.1f} -> "
                      f"{raw_wh:.1f} Wh, not what {d.meter.max_power_w:g} W can draw since the "
                      "last good reading")

    async def _read(self, d: Polled, reg: Register) -> list[int]:
        read = (d.client.read_input_registers if reg.table == "input"
                else d.client.read_holding_registers)
        rr = await self._call(d, lambda: read(reg.address, count=reg.count,
                                              device_id=d.cfg.unit_id))
        return list(rr.registers)

    async def _call(self, d: Polled, request: Callable[[], Awaitable[Any]]) -> Any:
        try:  # pymodbus raises "not connected" at the call, other failures at the await
            rr = await request()
        except ModbusIOException as err:
            raise PollFailed("timeout", f"{d.key}: no answer within "
                             f"{self.options.timeout_s} s ({err})") from None
        except ConnectionException:
            raise PollFailed("connection", f"{d.key}: not connected to "
                             f"{d.cfg.host}:{d.cfg.port}") from None
        except ModbusException as err:
            raise PollFailed("modbus_error", f"{d.key}: {err}") from None
        if rr.isError():
            code = getattr(rr, "exception_code", 0)
            try:
                name = ExcCodes(code).name.lower()
            except ValueError:
                name = f"code_{code}"
            raise PollFailed(name, f"{d.key}: Modbus exception {code} ({name})")
        return rr

    def _failed(self, d: Polled, kind: str, detail: str) -> None:
        d.fails += 1
        self.reject(f"modbus_{kind}", detail)
        if d.fails >= self.options.offline_after and d.online is not False:
            d.online = False
            if not d.held:
                self.sink(d.key, [Online(False)])

    async def _switch(self, d: Polled, on: bool, off_after_s: float | None) -> None:
        self._release(d)  # the bridge has decided on this relay: its setpoint came
        if d.off_timer is not None:
            d.off_timer.cancel()
            d.off_timer = None
        try:
            await self._call(d, lambda: d.client.write_coil(d.cfg.coil, on,
                                                            device_id=d.cfg.unit_id))
        except PollFailed as err:
            self._failed(d, err.kind, f"switching {'on' if on else 'off'}: {err}")
            return
        d.coil = on
        self.sink(d.key, [Switched(on)])
        if on and off_after_s is not None:
            self._arm(d, off_after_s)

    def _arm(self, d: Polled, off_after_s: float) -> None:
        if d.off_timer is not None:
            d.off_timer.cancel()
        d.off_timer = self.loop.call_later(off_after_s, lambda: self._spawn(self._expire(d)))

    async def _expire(self, d: Polled) -> None:
        """The off-timer is due: switch off, then read the meter at once (the bridge decides
        on that reading whether the quota is met or the relay goes on again)."""
        d.off_timer = None
        await self._switch(d, False, None)
        await self._poll(d)
