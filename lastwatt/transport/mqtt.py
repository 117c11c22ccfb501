"""The controller's MQTT transport: the engine's :class:`~lastwatt.transport.base.Transport`
over a real broker (topics in :mod:`lastwatt.transport.topics`, contract in docs/topics.md).

Outbound: the round info and each device's setpoint are published retained with QoS 1, and
the latest setpoint per device is kept so that every reconnect reasserts it (a broker that
restarted without persistence has forgotten them). Inbound: readings and statuses are queued
by the network thread and decoded in the engine's thread in :meth:`MqttTransport.drain`;
anything invalid is counted in ``rejected`` by kind and logged at a limited rate, never raised.
Duplicates and stale readings are passed on: the engine's MeterBook makes them idempotent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace

from lastwatt.config.mqtt import BrokerAddress, MqttConfig, resolve_broker
from lastwatt.messages import (
    DeviceStatus,
    MessageError,
    MeterReading,
    ReadRequest,
    RoundInfo,
    Setpoint,
    decode,
    encode,
)
from lastwatt.transport import topics
from lastwatt.transport.base import OnReading, OnStatus
from lastwatt.transport.mqtt_client import Inbound, MqttClient
from lastwatt.transport.publish import Publish

log = logging.getLogger(__name__)

CONTROLLER_ID = "controller"  # the ``device`` field of the controller's own status message
UNKNOWN_DEVICE = "unknown_device"
REJECT_KINDS = (*MessageError.KINDS, UNKNOWN_DEVICE)
# start() waits at most this for the devices' (and their bridges') retained statuses: they
# follow the SUBACK at once, so round 0 plans with who is online, not with an empty table
SETTLE_MAX_S = 1.0
REASSERT_DELAY_S = 0.2  # after a CONNACK; see MqttTransport._on_connect


class RateLimitedLog:
    """At most one line per key per ``interval_s``; the next line says how many were skipped."""

    def __init__(self, logger: logging.Logger, interval_s: float) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._last: dict[str, float] = {}
        self._skipped: Counter[str] = Counter()

    def warning(self, key: str, msg: str) -> None:
        """Log ``msg`` unless ``key`` was logged within the interval; count what is skipped."""
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._interval_s:
            self._skipped[key] += 1
            return
        skipped = self._skipped.pop(key, 0)
        self._last[key] = now
        suffix = f" (+{skipped} more {key} since the last report)" if skipped else ""
        self._logger.warning("%s%s", msg, suffix)


class MqttTransport:
    """The controller side of the hardware loop. Create it with :func:`make_mqtt_transport`."""

    enforces_quotas = False  # real devices run until told to stop: the engine watches quotas
    delivers_reliably = False  # a device may have missed a message (reboot): resend each round

    def __init__(self, broker: BrokerAddress, cfg: MqttConfig, site: str,
                 device_ids: Iterable[str]) -> None:
        self.site = site
        self.devices = frozenset(device_ids)
        self.rejected: dict[str, int] = dict.fromkeys(REJECT_KINDS, 0)
        self.received: dict[str, int] = {"meter": 0, "status": 0}  # accepted, before dedupe
        self.reasserts = 0  # reconnects after which the setpoints were published again
        # this run on the wire: devices and bridges take a new run's round 0, never a setpoint
        # of an older run (ms since the Unix epoch: grows from run to run, restarts included)
        self.epoch = int(time.time() * 1000)
        self._device_status: dict[str, DeviceStatus] = {}  # as the devices (bridges) said
        self.bridges: dict[str, bool] = {}  # bridge id -> online
        will = Publish(topics.controller_status_topic(site),
                       encode(DeviceStatus(CONTROLLER_ID, False)), 1, True)
        self.client = MqttClient(
            broker, cfg, cfg.client_id or f"lastwatt-{site}-controller", will=will,
            subscriptions=topics.controller_subscriptions(site), on_connect=self._on_connect,
        )
        self._current: dict[str, bytes] = {}  # device -> latest setpoint payload
        self._round: bytes | None = None
        self._lock = threading.Lock()  # _current/_round: engine thread writes, paho reads
        self._on_reading: OnReading | None = None
        self._on_status: OnStatus | None = None
        self._timer: threading.Timer | None = None
        self._pending: list[Inbound] = []  # read by _settle before the first drain
        self._rate_log = RateLimitedLog(log, cfg.log_interval_s)

    # --- Transport -----------------------------------------------------------------------

    def start(self, on_reading: OnReading, on_status: OnStatus) -> None:
        """Connect, subscribe, announce the controller online and wait for retained statuses."""
        self._on_reading, self._on_status = on_reading, on_status
        self.client.start()
        self._settle()

    def _settle(self, max_s: float = SETTLE_MAX_S) -> None:
        """Hold the first drain until every mapped device's retained status is in (or
        ``max_s`` passed), so that the first round knows who is online."""
        deadline = time.monotonic() + max_s
        missing = set(self.devices)
        bridges: set[str] = set()  # bridges named by a device's status ...
        heard: set[str] = set()  # ... and those whose own status is in
        while (missing or bridges - heard) and time.monotonic() < deadline:
            msg = self.client.get_nowait()
            if msg is None:
                time.sleep(0.01)
                continue
            self._pending.append(msg)
            bridge = topics.parse_bridge_topic(self.site, msg.topic)
            if bridge is not None:
                heard.add(bridge)
            parsed = topics.parse_device_topic(self.site, msg.topic)
            if parsed is not None and parsed[1] == topics.STATUS:
                missing.discard(parsed[0])
                via = _via(msg.payload)
                if via is not None:
                    bridges.add(via)

    def publish_round(self, info: RoundInfo) -> None:
        """Publish the round info with this run's epoch, retained (reasserted after a
        reconnect)."""
        payload = encode(replace(info, epoch=self.epoch))
        with self._lock:
            self._round = payload
        self.client.publish(topics.round_topic(self.site), payload, retain=True)

    def send_setpoint(self, sp: Setpoint) -> None:
        """Publish a setpoint retained with QoS 1 and keep it for reassertion."""
        if sp.device not in self.devices:
            raise ValueError(f"setpoint for {sp.device!r}, which is not in the device map")
        payload = encode(replace(sp, epoch=self.epoch))
        with self._lock:
            self._current[sp.device] = payload
        self.client.publish(topics.set_topic(self.site, sp.device), payload, retain=True)

    def request_readings(self, round_index: int, ts: float) -> None:
        """Ask every device (bridges for theirs) for a meter reading now: the final read."""
        payload = encode(ReadRequest(round_index, ts, epoch=self.epoch))
        self.client.publish(topics.read_topic(self.site), payload, retain=False)

    def drain(self) -> None:
        """Decode and deliver everything received since the last call (engine thread)."""
        assert self._on_reading is not None and self._on_status is not None, "start() first"
        pending, self._pending = self._pending, []
        for inbound in pending:
            self._dispatch(inbound.topic, inbound.payload)
        while (msg := self.client.get_nowait()) is not None:
            self._dispatch(msg.topic, msg.payload)

    def close(self) -> None:
        """Say offline (retained) and disconnect; the retained setpoints stay on the broker,
        bounded by their ``valid_until``."""
        if self._timer is not None:
            self._timer.cancel()
        self.client.publish(
            topics.controller_status_topic(self.site), _status(online=False), retain=True
        )
        self.client.stop()

    # --- internals -----------------------------------------------------------------------

    def _dispatch(self, topic: str, payload: bytes) -> None:
        bridge = topics.parse_bridge_topic(self.site, topic)
        if bridge is not None:
            self._on_bridge(topic, bridge, payload)
            return
        parsed = topics.parse_device_topic(self.site, topic)
        if parsed is None or parsed[0] not in self.devices:
            self._reject(UNKNOWN_DEVICE, topic, "not a device in the map")
            return
        device, kind = parsed
        try:
            msg: MeterReading | DeviceStatus = (
                decode(MeterReading, payload) if kind == topics.METER
                else decode(DeviceStatus, payload))
        except MessageError as err:
            self._reject(err.kind, topic, str(err))
            return
        if msg.device != device:
            self._reject("schema", topic, f"body names device {msg.device!r}")
            return
        self.received[kind] += 1
        if isinstance(msg, MeterReading):
            self._on_reading(msg)  # type: ignore[misc]  # set in start()
        else:
            self._device_status[device] = msg
            self._on_status(self._effective(msg))  # type: ignore[misc]

    def _on_bridge(self, topic: str, bridge: str, payload: bytes) -> None:
        """A bridge's birth or Last Will: every device it speaks for follows it."""
        try:
            msg = decode(DeviceStatus, payload)
        except MessageError as err:
            self._reject(err.kind, topic, str(err))
            return
        self.received["status"] += 1
        self.bridges[bridge] = msg.online
        for status in self._device_status.values():
            if status.via == bridge:
                self._on_status(self._effective(status))  # type: ignore[misc]

    def _effective(self, s: DeviceStatus) -> DeviceStatus:
        """A device behind a dead bridge is offline, whatever its retained status says."""
        if s.online and s.via is not None and not self.bridges.get(s.via, True):
            return replace(s, online=False)
        return s

    def _reject(self, kind: str, topic: str, why: str) -> None:
        self.rejected[kind] += 1
        self._rate_log.warning(kind, f"rejected {kind} on {topic[:120]!r}: {why[:200]}")

    def _on_connect(self, reconnected: bool) -> None:
        """Network thread, on every CONNACK: say online, then reassert round and setpoints.

        The reassertion waits a moment: right after this callback paho resends the QoS 1
        messages left unacknowledged by the lost connection, and an older setpoint resent
        after the current one would become the retained one.
        """
        self.client.publish(
            topics.controller_status_topic(self.site), _status(online=True), retain=True
        )
        timer = threading.Timer(REASSERT_DELAY_S, self._reassert, args=(reconnected,))
        timer.daemon = True
        self._timer = timer
        timer.start()

    def _reassert(self, reconnected: bool) -> None:
        with self._lock:
            current = list(self._current.items())
            round_payload = self._round
        if round_payload is not None:
            self.client.publish(topics.round_topic(self.site), round_payload, retain=True)
        for device, payload in current:
            self.client.publish(topics.set_topic(self.site, device), payload, retain=True)
        if reconnected:
            self.reasserts += 1
            log.info("reasserted %d setpoints after reconnect", len(current))


def _via(payload: bytes) -> str | None:
    try:
        return decode(DeviceStatus, payload).via
    except MessageError:
        return None


def _status(online: bool) -> bytes:
    return encode(DeviceStatus(CONTROLLER_ID, online, time.time()))


def make_mqtt_transport(url: str | None, cfg: MqttConfig, site: str,
                        device_ids: list[str]) -> MqttTransport:
    """The controller transport for ``site``; ``url`` (from ``--mqtt``) overrides ``cfg.url``."""
    broker = resolve_broker(url, cfg)
    return MqttTransport(broker, cfg, site, device_ids)
