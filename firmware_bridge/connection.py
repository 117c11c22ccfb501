"""What the bridge and the fleet need of an MQTT connection, and the factory that makes one.

Both take a ``connect`` factory with :class:`MqttClient`'s signature (``MqttClient`` itself by
default), so the unit tests can pass an in-memory fake that records publishes and injects
messages, as paho's and Home Assistant's own test suites do, and drive them without a broker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from lastwatt.config.mqtt import BrokerAddress, MqttConfig
from lastwatt.transport.publish import Publish


class PublishInfo(Protocol):
    """What the owner reads of a queued publish (paho's ``MQTTMessageInfo``)."""

    @property
    def rc(self) -> int: ...

    def is_published(self) -> bool: ...

    def wait_for_publish(self, timeout: float | None = None) -> None: ...


class Connection(Protocol):
    """One MQTT connection; received messages go to ``inbound`` (the owner's worker queue)."""

    inbound: Any
    denied: Any  # Counter of publishes the broker refused, by PUBACK reason

    def start(self) -> Any: ...

    def stop(self) -> None: ...

    def kill(self) -> None: ...

    def is_connected(self) -> bool: ...

    def publish(self, topic: str, payload: bytes, qos: int | None = None,
                retain: bool = False) -> PublishInfo: ...


class Connect(Protocol):
    def __call__(self, broker: BrokerAddress | str, cfg: MqttConfig, client_id: str,
                 will: Publish | None = None, subscriptions: Sequence[str] = (),
                 on_connect: Callable[[bool], None] | None = None) -> Connection: ...
