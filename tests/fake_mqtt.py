"""An in-memory MQTT broker and clients for unit tests of the bridge and the fleet.

As paho's and Home Assistant's own test suites do: a small object that records every publish
and subscription and lets the test inject messages, so the code under test runs without a
broker, a network thread or the wall clock. ``FakeBroker.connect`` has ``MqttClient``'s
signature (the ``connect`` factory the bridge and fleet take). Publishes are delivered to
every connected client whose subscription matches (no ordering between clients to model:
the tests drive one worker at a time); retained messages are kept and handed to a client
when it connects. The real-broker behaviour (Wills fired by a dropped socket, QoS 1 across
reconnects) stays with the integration tests against mosquitto.
"""

from __future__ import annotations

import queue
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from paho.mqtt.client import topic_matches_sub
from paho.mqtt.enums import MQTTErrorCode

from lastwatt.config.mqtt import BrokerAddress, MqttConfig
from lastwatt.transport.mqtt_client import Inbound
from lastwatt.transport.publish import Publish


@dataclass
class FakeInfo:
    """Stands in for paho's MQTTMessageInfo."""

    rc: MQTTErrorCode = MQTTErrorCode.MQTT_ERR_SUCCESS
    published: bool = True

    def is_published(self) -> bool:
        return self.published

    def wait_for_publish(self, timeout: float | None = None) -> None:
        return None


@dataclass(frozen=True)
class Sent:
    client_id: str
    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass
class FakeBroker:
    clients: list[FakeClient] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)  # every publish by a client, in order
    retained: dict[str, bytes] = field(default_factory=dict)
    hold: bool = False  # publishes stay unwritten (is_published() False) until release()
    refuse: bool = False  # publishes are refused for want of a connection (rc NO_CONN)
    held: list[FakeInfo] = field(default_factory=list)

    def connect(self, broker: BrokerAddress | str, cfg: MqttConfig, client_id: str,
                will: Publish | None = None, subscriptions: Sequence[str] = (),
                on_connect: Callable[[bool], None] | None = None) -> FakeClient:
        client = FakeClient(self, client_id, will, list(subscriptions), on_connect)
        self.clients.append(client)
        return client

    def inject(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        """A message from outside (a device, a controller) as the broker delivers it."""
        raw = payload.encode() if isinstance(payload, str) else payload
        self._route(topic, raw, retain)

    def _route(self, topic: str, payload: bytes, retain: bool) -> None:
        if retain:
            self.retained[topic] = payload
        for c in self.clients:
            if c.connected and any(topic_matches_sub(s, topic) for s in c.subscriptions):
                # a connected subscriber gets retain cleared, as a real broker does
                c.inbound.put(Inbound(topic, payload, False, time.monotonic()))

    def payloads(self, topic: str) -> list[bytes]:
        return [s.payload for s in self.sent if s.topic == topic]

    def topics(self) -> list[str]:
        return [s.topic for s in self.sent]

    def release(self) -> None:
        """Everything held is now written."""
        for info in self.held:
            info.published = True
        self.held.clear()


@dataclass
class FakeClient:
    broker: FakeBroker
    client_id: str
    will: Publish | None
    subscriptions: list[str]
    on_connect: Callable[[bool], None] | None
    inbound: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    connected: bool = False
    connects: int = 0
    denied: Counter = field(default_factory=Counter)  # the fake broker refuses nothing

    def start(self) -> FakeClient:
        self.connected = True
        self.connects += 1
        for topic, payload in self.broker.retained.items():
            if any(topic_matches_sub(s, topic) for s in self.subscriptions):
                self.inbound.put(Inbound(topic, payload, True, time.monotonic()))
        if self.on_connect is not None:
            self.on_connect(self.connects > 1)
        return self

    def stop(self) -> None:
        self.connected = False

    def is_connected(self) -> bool:
        return self.connected

    def kill(self) -> None:
        """Vanish: the broker publishes the Will."""
        self.connected = False
        if self.will is not None:
            w = self.will
            self.broker.sent.append(Sent("(will)", w.topic, w.payload, w.qos, w.retain))
            self.broker._route(w.topic, w.payload, w.retain)

    def publish(self, topic: str, payload: bytes, qos: int | None = None,
                retain: bool = False) -> FakeInfo:
        if self.broker.refuse or not self.connected:
            return FakeInfo(MQTTErrorCode.MQTT_ERR_NO_CONN, published=False)
        self.broker.sent.append(Sent(self.client_id, topic, payload, 1 if qos is None else qos,
                                     retain))
        self.broker._route(topic, payload, retain)
        info = FakeInfo(published=not self.broker.hold)
        if self.broker.hold:
            self.broker.held.append(info)
        return info


class FakeClock:
    """Epoch seconds that move only when the test says so."""

    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds
