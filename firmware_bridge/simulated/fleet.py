"""A fleet of simulated relays and plugs in one process, against a real broker.

Each device is a :class:`Firmware` (native, Tasmota or Shelly) around the shared
``DeviceModel``. All device state lives in one worker thread (``firmware_bridge.worker``);
MQTT connections only carry bytes.

Connections are the trade-off. A real device has its own connection and Last Will, which is
what small fleets get (``connections=None`` and at most ``PER_DEVICE_MAX`` devices, or
``connections=0``): killing a device closes its socket without DISCONNECT and the *broker*
publishes its Will. Ten thousand connections (and threads) in one Python process are too
many, so a large fleet shares ``connections`` connections; a device's Will is then published
by the fleet on its behalf when it is killed or drops out, and a crash of the whole process
leaves the devices' retained status at online (the bridge/controller then see silence, not
a Will).

One injected clock (epoch seconds) stamps the readings and runs every timer: telemetry,
command latency, dropouts and the firmware's off-timers, which are scheduled for the very
instant the firmware checks against. ``connect`` makes the MQTT connections (``MqttClient``;
the unit tests pass an in-memory fake and drive the worker themselves, see :meth:`connect`).
A new firmware is one module and one line in ``FIRMWARE``.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections import Counter as Tally

import numpy as np
from paho.mqtt.enums import MQTTErrorCode

from firmware_bridge.connection import Connect, Connection, PublishInfo
from firmware_bridge.dialects.base import DialectError
from firmware_bridge.simulated.firmware import Firmware
from firmware_bridge.simulated.native import NativeFirmware
from firmware_bridge.simulated.options import FleetDevice, FleetOptions
from firmware_bridge.simulated.shelly import ShellyFirmware
from firmware_bridge.simulated.tasmota import TasmotaFirmware
from firmware_bridge.worker import Clock, Worker
from lastwatt.config.mqtt import MqttConfig
from lastwatt.devices import DeviceModel, Profile, profile_fn
from lastwatt.errors import ConfigError
from lastwatt.messages import MessageError
from lastwatt.rng import streams
from lastwatt.transport import topics
from lastwatt.transport.mqtt_client import Inbound, MqttClient
from lastwatt.transport.publish import Publish

log = logging.getLogger(__name__)

PER_DEVICE_MAX = 200  # auto mode: one connection per device up to this many devices
DEVICES_PER_CONNECTION = 1000  # auto mode beyond that
SWEEP_S = 0.01  # telemetry timer resolution
SWEEP_SLICE_S = 0.005  # longest stretch of telemetry before queued commands get their turn
SWEEP_CHECK = 32  # telemetry ticks between checks of the slice and of the connections' backlog
BACKLOG_PAUSE_S = 0.001  # a connection still writes the previous batch: let it, then go on
BACKLOG_WAIT_MAX_S = 0.2  # ... but not longer than this for one batch
FLUSH_TIMEOUT_S = 10.0  # stop(): wait this long for the goodbyes to be acknowledged

# a device's ``dialect`` -> its firmware class
FIRMWARE: dict[str, type[Firmware]] = {
    "native": NativeFirmware, "tasmota": TasmotaFirmware, "shelly": ShellyFirmware,
}
__all__ = ["FIRMWARE", "Fleet", "FleetDevice", "FleetOptions"]


class Fleet:
    """``Fleet(url, devices).start()`` runs the devices in threads; ``stop()`` ends them."""

    def __init__(self, mqtt_url: str, devices: list[FleetDevice],
                 options: FleetOptions | None = None, mqtt: MqttConfig | None = None,
                 clock: Clock = time.time, connect: Connect = MqttClient) -> None:
        self.url = mqtt_url
        self.options = options = options or FleetOptions()
        self.mqtt = mqtt or MqttConfig()
        self.clock = clock
        self._connect = connect
        rng = streams(options.seed).devices
        profile = profile_fn(options.profile, options.round_s)
        self.firmware: list[Firmware] = [self._make(d, profile, rng) for d in devices]
        self.index = {fw.device_id: i for i, fw in enumerate(self.firmware)}
        self.routes = {fw.command_base: i for i, fw in enumerate(self.firmware)}
        self.worker = Worker(self._on_message, "fleet", clock)
        self.dead: set[int] = set()
        self.silent_until: dict[int, float] = {}  # dropouts: when each ends
        self.missed: dict[int, tuple[str, bytes]] = {}  # native setpoint that came in a dropout
        self.counts: Tally[str] = Tally()
        self.rejected: Tally[str] = Tally()
        self.clients: list[Connection] = []
        self.conn_of: list[int] = [0] * len(self.firmware)
        self.per_device = False
        self._due: list[tuple[float, int]] = []  # telemetry heap: (due, device index)
        self._last_sent: list[PublishInfo | None] = []  # per connection, newest publish
        self._marks: list[PublishInfo | None] = []  # the same at the last sweep check
        self._marks_ts = -math.inf

    def _make(self, d: FleetDevice, profile: Profile, rng: np.random.Generator) -> Firmware:
        fw_cls = FIRMWARE.get(d.dialect)
        if fw_cls is None:
            raise ConfigError(f"device {d.id}: dialect", f"no simulated firmware {d.dialect!r}",
                              f"use one of {', '.join(FIRMWARE)}")
        model = DeviceModel(d.id, d.max_power_w, profile, rng, self.options.noise_sd,
                            enforce_quota=fw_cls.enforce_quota)
        return fw_cls.from_options(d.id, d.topic or d.id, model, self.options)

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> Fleet:
        self.worker.start()
        return self.connect()

    def connect(self) -> Fleet:
        """Connect every device; ``start()`` runs the worker first, a test drives it itself
        (``worker.run_pending()``)."""
        n = len(self.firmware)
        conns = self.options.connections
        if conns is None:
            conns = 0 if n <= PER_DEVICE_MAX else math.ceil(n / DEVICES_PER_CONNECTION)
        self.per_device = conns == 0
        if self.per_device:
            groups = [[i] for i in range(n)]
        else:
            groups = [list(range(k, n, conns)) for k in range(min(conns, n))]
        for k, group in enumerate(groups):
            for i in group:
                self.conn_of[i] = k
            fw = self.firmware[group[0]]
            subs = [t for i in group for t in self.firmware[i].subscriptions()]
            if k == 0:  # one subscription answers for all native devices (not one per device)
                subs.append(topics.read_topic(self.options.site))
            cid = (f"{self.options.client_prefix}-{fw.dialect}-{fw.device_id}" if self.per_device
                   else f"{self.options.client_prefix}-{self.options.site}-{k}")
            client = self._connect(
                self.url, self.mqtt, cid, will=fw.will() if self.per_device else None,
                subscriptions=subs,
                on_connect=lambda _re, group=group: self.worker.post(lambda: self._births(group)),
            )
            client.inbound = self.worker.queue
            self.clients.append(client)  # before start: on_connect publishes through it
            self._last_sent.append(None)
            self._marks.append(None)
            client.start()
        self.worker.call(self._schedule_telemetry)
        return self

    def stop(self) -> None:
        """Leave cleanly: every live device says offline (its Will's payload), then disconnect."""
        def goodbye() -> list:
            last = {}
            for i, fw in enumerate(self.firmware):
                if i not in self.dead and i not in self.silent_until:
                    p = fw.will()
                    last[self.conn_of[i]] = self.clients[self.conn_of[i]].publish(
                        p.topic, p.payload, p.qos, p.retain)
                    self.counts["published"] += 1
            self.dead.update(range(len(self.firmware)))  # nothing more after the goodbyes
            return list(last.values())
        try:
            for info in self.worker.call(goodbye):
                info.wait_for_publish(FLUSH_TIMEOUT_S)  # QoS 1 in order: the last one is enough
        finally:
            for c in self.clients:
                c.stop()
            self.worker.stop()

    # --- in-process API (tests, benchmarks, the CLI) ------------------------------------

    def denied(self) -> Tally[str]:
        """Publishes the broker refused (PUBACK reason codes), over all connections."""
        total: Tally[str] = Tally()
        for c in self.clients:
            total.update(c.denied)
        return total

    def true_energy_wh(self) -> dict[str, float]:
        """Energy each device really drew so far (integrated now, across counter resets)."""
        def read() -> dict[str, float]:
            now = self.clock()
            for fw in self.firmware:
                fw.model.advance(now)
            return {fw.device_id: fw.true_energy_wh for fw in self.firmware}
        return self.worker.call(read)

    def is_on(self, device_id: str) -> bool:
        return self.worker.call(lambda: self.firmware[self.index[device_id]].model.on)

    def kill(self, device_id: str) -> None:
        """The device dies abruptly: no DISCONNECT, the broker (or the fleet) sends its Will."""
        def kill() -> None:
            i = self.index[device_id]
            fw = self.firmware[i]
            fw.set_relay(False, self.clock())
            self.dead.add(i)
            if self.per_device:
                self.clients[self.conn_of[i]].kill()
            else:
                self._publish(i, [fw.will()], force=True)
        self.worker.call(kill)

    def reboot(self, device_id: str, reset_counter: bool = True) -> None:
        """Power cycle: offline, relay off, energy register reset (by default), online."""
        def reboot() -> None:
            i = self.index[device_id]
            fw = self.firmware[i]
            self._publish(i, [fw.will()])
            self._publish(i, fw.reboot(self.clock(), reset_counter))
            self.counts["reboots"] += 1
        self.worker.call(reboot)

    def dropout(self, device_id: str, seconds: float) -> None:
        """The device loses its network for ``seconds``: offline, silent, then back."""
        def drop() -> None:
            i = self.index[device_id]
            self._publish(i, [self.firmware[i].will()])
            self.silent_until[i] = self.clock() + seconds
            self.worker.call_at(self.silent_until[i], lambda: self._back(i))
        self.worker.call(drop)

    # --- worker thread ------------------------------------------------------------------

    def _births(self, group: list[int]) -> None:
        now = self.clock()
        for i in group:
            if i not in self.dead and i not in self.silent_until:
                self._publish(i, self.firmware[i].birth(now))

    def _back(self, i: int) -> None:
        self.silent_until.pop(i, None)
        fw = self.firmware[i]
        self._publish(i, fw.birth(self.clock()))
        if i in self.missed:
            leaf, payload = self.missed.pop(i)
            self._command(i, leaf, payload)

    def _schedule_telemetry(self) -> None:
        n = max(len(self.firmware), 1)
        t0 = self.clock()
        # phases spread over the period: no burst of n messages at once
        self._due = [(t0 + fw.telemetry_s * (i + 0.5) / n, i) for i, fw in enumerate(self.firmware)]
        heapq.heapify(self._due)
        self._sweep()

    def _sweep(self) -> None:
        """Publish every device's due telemetry; one wake-up per SWEEP_S, not one per device.

        A sweep runs at most SWEEP_SLICE_S and then lets the worker handle commands and calls
        before it goes on: a fleet that falls behind must not answer commands seconds late.
        It also pauses while a connection has not yet written what the sweep gave it at the
        previous check: a command's answer queues behind that connection's unwritten
        telemetry, so this bounds the queue (about SWEEP_CHECK messages) and with it the
        answer's wait, without reordering a device's messages."""
        now = self.clock()
        slice_end = now + SWEEP_SLICE_S
        due = self._due
        sent = 0
        while due and due[0][0] <= now:
            sent += 1
            if sent % SWEEP_CHECK == 0:
                if self._backlogged():
                    self.counts["backlog_pauses"] += 1
                    self.worker.call_at(self.clock() + BACKLOG_PAUSE_S, self._sweep)
                    return
                if self.clock() > slice_end:
                    self.worker.call_at(self.clock(), self._sweep)  # the rest right after
                    return
            t, i = heapq.heappop(due)
            if i in self.dead:
                continue
            fw = self.firmware[i]
            period = fw.telemetry_s if fw.telemetry_s > 0 else 1.0  # TelePeriod 0: look later
            if fw.telemetry_s > 0 and i not in self.silent_until:
                self._publish(i, fw.telemetry(self.clock()), qos=self.options.telemetry_qos)
                self.counts["telemetry"] += 1
            nxt = t + period
            if nxt < now:  # fell behind a whole period: skip rather than burst
                self.counts["late_ticks"] += 1
                nxt = now + period
            heapq.heappush(due, (nxt, i))
        self.worker.call_at(now + SWEEP_S, self._sweep)

    def _backlogged(self) -> bool:
        """Is a publish from the previous check still unwritten (QoS 1: unacknowledged)?

        Publishes refused for want of a connection never block, and a mark older than
        BACKLOG_WAIT_MAX_S is given up on (a QoS 0 packet lost in a disconnect is never
        written): a connection that goes down must not stop the others' telemetry."""
        now = self.clock()
        if now - self._marks_ts < BACKLOG_WAIT_MAX_S and any(
                m is not None and m.rc == MQTTErrorCode.MQTT_ERR_SUCCESS and not m.is_published()
                for m in self._marks):
            return True
        self._marks[:] = self._last_sent
        self._marks_ts = now
        return False

    def _on_message(self, msg: Inbound) -> None:
        if msg.topic == topics.read_topic(self.options.site):
            self._read_all()
            return
        base, _, leaf = msg.topic.rpartition("/")
        i = self.routes.get(base)
        if i is None or i in self.dead:
            return
        if i in self.silent_until:
            if self.firmware[i].dialect == "native":
                self.missed[i] = (leaf, msg.payload)  # retained: it will be there on reconnect
            return
        latency = self.options.latency_s
        if latency > 0:
            self.worker.call_at(self.clock() + latency,
                                lambda: self._command(i, leaf, msg.payload))
        else:
            self._command(i, leaf, msg.payload)

    def _read_all(self) -> None:
        """The controller's final read: every live native device reports its meter now."""
        now = self.clock()
        for i, fw in enumerate(self.firmware):
            if fw.dialect == "native" and i not in self.dead:
                self._publish(i, fw.telemetry(now))

    def _command(self, i: int, leaf: str, payload: bytes) -> None:
        if i in self.dead:
            return
        fw = self.firmware[i]
        try:
            out = fw.handle(leaf, payload, self.clock())
        except (DialectError, MessageError) as err:
            self.rejected[err.kind] += 1
            return
        self.counts["commands"] += 1
        self._publish(i, out)
        if math.isfinite(fw.off_at):  # the firmware's own timer, on the clock it checks
            self.worker.call_at(fw.off_at, lambda: self._expire(i))

    def _expire(self, i: int) -> None:
        if i not in self.dead:
            self._publish(i, self.firmware[i].expire(self.clock()))

    def _publish(self, i: int, out: list[Publish], force: bool = False,
                 qos: int | None = None) -> None:
        if i in self.silent_until or (i in self.dead and not force):
            return
        k = self.conn_of[i]
        client = self.clients[k]
        for p in out:
            self._last_sent[k] = client.publish(p.topic, p.payload,
                                                p.qos if qos is None else qos, p.retain)
        self.counts["published"] += len(out)
