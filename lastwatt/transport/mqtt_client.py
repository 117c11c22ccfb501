"""A small paho-mqtt 2.x wrapper shared by the controller, the bridge and the simulated fleet.

It fixes the choices every LastWatt MQTT client makes the same way: MQTT 5, a persistent
session (clean start off + session expiry, so QoS 1 messages queued while we were away are
delivered), a Last Will, TLS and credentials from :class:`MqttConfig`, paho's own reconnect
loop with exponential backoff, and re-subscription on every connect (a broker that lost its
state must not leave us deaf). Inbound messages go to a thread-safe queue; the owner drains it
in its own thread, so no LastWatt code runs in paho's network thread except ``on_connect``.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from lastwatt.config.mqtt import (
    BrokerAddress,
    MqttConfig,
    parse_broker_url,
    resolve_credentials,
)
from lastwatt.errors import ServiceError
from lastwatt.transport.publish import Publish

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Inbound:
    """One received message, as queued by the network thread."""

    topic: str
    payload: bytes
    retain: bool
    received_monotonic_s: float


class BrokerError(ServiceError):
    """The broker cannot be reached or refuses us; the message names the URL and the fix."""


class MqttClient:
    """One MQTT connection. ``start()`` connects (and keeps reconnecting); ``stop()`` leaves."""

    def __init__(
        self,
        broker: BrokerAddress | str,
        cfg: MqttConfig,
        client_id: str,
        will: Publish | None = None,
        subscriptions: Sequence[str] = (),
        on_connect: Callable[[bool], None] | None = None,
    ) -> None:
        self.broker = parse_broker_url(broker) if isinstance(broker, str) else broker
        self.cfg = cfg
        self.client_id = client_id
        self.subscriptions = list(subscriptions)
        self.inbound: queue.SimpleQueue[Inbound] = queue.SimpleQueue()
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # SUBACK of this connection's subscriptions
        self.connects = 0  # successful CONNACKs; > 1 means we reconnected
        self.last_connect_monotonic_s = 0.0
        self._on_connect_hook = on_connect
        self._last_refusal: str | None = None
        # QoS > 0 publishes the broker refused (MQTT 5 PUBACK reason, e.g. "Not authorized":
        # an ACL denial, which mosquitto otherwise only logs on its side), per reason
        self.denied: Counter[str] = Counter()
        self._client = self._make_client(will)

    # --- setup ---------------------------------------------------------------------------

    def _make_client(self, will: Publish | None) -> paho.Client:
        c = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        username, password = resolve_credentials(self.cfg)
        if username is not None:
            c.username_pw_set(username, password)
        if self.broker.tls or self.cfg.tls_ca is not None:
            c.tls_set(
                ca_certs=_str(self.cfg.tls_ca), certfile=_str(self.cfg.tls_cert),
                keyfile=_str(self.cfg.tls_key),
            )
        if will is not None:
            c.will_set(will.topic, will.payload, will.qos, will.retain)
        # paho's signature says int, but it computes with whatever it gets; sub-second backoff
        # matters for fast recovery in the field and in tests.
        c.reconnect_delay_set(self.cfg.reconnect_min_delay_s, self.cfg.reconnect_max_delay_s)  # type: ignore[arg-type]
        c.max_inflight_messages_set(self.cfg.max_inflight)
        c.max_queued_messages_set(0)  # unbounded: a QoS 1 setpoint must not be dropped offline
        c.suppress_exceptions = True  # a bug in a callback is logged, never ends the network loop
        c.on_connect = self._handle_connect
        c.on_disconnect = self._handle_disconnect
        c.on_message = self._handle_message
        c.on_subscribe = self._handle_subscribe
        c.on_publish = self._handle_publish
        c.on_socket_open = no_delay
        return c

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> MqttClient:
        """Connect in the background and wait for the first CONNACK (``connect_timeout_s``)."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.cfg.session_expiry_s
        try:
            self._client.connect_async(
                self.broker.host, self.broker.port, self.cfg.keepalive_s, clean_start=False,
                properties=props,
            )
        except ValueError as err:
            raise BrokerError("--mqtt", f"cannot connect to {self._url()}: {err}") from None
        self._client.loop_start()
        deadline = time.monotonic() + self.cfg.connect_timeout_s
        # a refusal (bad credentials, not authorised) is final: report it without waiting
        while not self.connected.wait(0.05) and self._last_refusal is None:
            if time.monotonic() > deadline:
                break
        # retained messages (statuses, setpoints) follow the SUBACK: wait for it, too
        if self.subscriptions and self.connected.is_set():
            self.subscribed.wait(max(deadline - time.monotonic(), 0.0))
        if not self.connected.is_set():
            self._client.loop_stop()
            reason = self._last_refusal or "no answer"
            fix = (
                "check mqtt.username and the password file / environment variable"
                if self._last_refusal else "is the broker running and the URL right?"
            )
            raise BrokerError(
                "--mqtt", f"cannot connect to {self._url()} within "
                f"{self.cfg.connect_timeout_s:g} s: {reason}", fix,
            )
        return self

    def stop(self) -> None:
        """Leave cleanly: DISCONNECT (no Last Will), then stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()

    def kill(self) -> None:
        """Vanish without DISCONNECT, as a crashed process would: the broker sends our Will."""
        self._client.loop_stop()
        sock = self._client.socket()
        if sock is not None:
            sock.close()
        self.connected.clear()

    # --- traffic -------------------------------------------------------------------------

    def publish(
        self, topic: str, payload: bytes, qos: int | None = None, retain: bool = False
    ) -> paho.MQTTMessageInfo:
        """Queue a publish; QoS > 0 messages survive a disconnect and go out on reconnect.

        The returned info's ``wait_for_publish()`` lets a caller flush before ``stop()``."""
        info = self._client.publish(topic, payload, self.cfg.qos if qos is None else qos, retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            log.warning("publish to %s failed: %s", topic, paho.error_string(info.rc))
        return info

    def is_connected(self) -> bool:
        return self.connected.is_set()

    def get_nowait(self) -> Inbound | None:
        """The next inbound message, or None when there is none."""
        try:
            return self.inbound.get_nowait()
        except queue.Empty:
            return None

    # --- paho callbacks (network thread) -------------------------------------------------

    def _handle_connect(self, client, userdata, flags, reason: ReasonCode, properties) -> None:
        if reason.is_failure:
            self._last_refusal = str(reason)
            log.warning("broker %s refused %s: %s", self._url(), self.client_id, reason)
            return
        if self.subscriptions:
            self.subscribed.clear()
            client.subscribe([(t, self.cfg.qos) for t in self.subscriptions])
        self.connects += 1
        self.last_connect_monotonic_s = time.monotonic()
        self.connected.set()
        if self.connects > 1:
            log.info("%s reconnected to %s (session present: %s)", self.client_id, self._url(),
                     flags.session_present)
        if self._on_connect_hook is not None:
            self._on_connect_hook(self.connects > 1)

    def _handle_disconnect(self, client, userdata, flags, reason: ReasonCode, properties) -> None:
        self.connected.clear()
        if reason.is_failure:
            log.warning("%s lost %s: %s; reconnecting with backoff", self.client_id, self._url(),
                        reason)

    def _handle_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:  # e.g. an ACL: the broker says no per topic filter, the connection lives
            log.warning("%s: subscription refused: %s", self.client_id, ", ".join(refused))
        self.subscribed.set()

    def _handle_publish(self, client, userdata, mid, reason: ReasonCode, properties) -> None:
        if reason.is_failure:
            if not self.denied:
                log.error("%s: broker refused a publish: %s", self.client_id, reason)
            self.denied[str(reason)] += 1

    def _handle_message(self, client, userdata, msg: paho.MQTTMessage) -> None:
        # mosquitto refuses non-UTF-8 topics, but a broker that does not must not stop us
        topic = msg._topic.decode("utf-8", errors="replace")
        self.inbound.put(Inbound(topic, bytes(msg.payload), bool(msg.retain), time.monotonic()))

    def _url(self) -> str:
        scheme = "mqtts" if self.broker.tls else "mqtt"
        return f"{scheme}://{self.broker.host}:{self.broker.port}"


def _str(path: object | None) -> str | None:
    return None if path is None else str(path)


def no_delay(client: paho.Client, userdata: object, sock: object) -> None:
    """Disable Nagle: a setpoint or its acknowledgement is one small packet that must not wait
    for the ACK of earlier traffic (with delayed ACKs that costs ~40 ms on a busy link)."""
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

