"""Helpers for the MQTT tests: a controller transport and bare device clients on a real broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from lastwatt.config.mqtt import MqttConfig
from lastwatt.messages import DeviceStatus, MeterReading, encode
from lastwatt.transport import topics
from lastwatt.transport.mqtt import MqttTransport, make_mqtt_transport
from lastwatt.transport.mqtt_client import Inbound, MqttClient
from lastwatt.transport.publish import Publish

SITE = "village"
# fast recovery so broker-restart tests stay short; a short keepalive is not needed (a killed
# process closes its socket, the broker notices at once)
FAST = MqttConfig(reconnect_min_delay_s=0.1, reconnect_max_delay_s=0.5, connect_timeout_s=10)


def url_of(server) -> str:
    return f"mqtt://127.0.0.1:{server.port}"


class Controller:
    """An :class:`MqttTransport` with its callbacks collecting into lists."""

    def __init__(self, url: str, devices: list[str], cfg: MqttConfig = FAST) -> None:
        self.readings: list[MeterReading] = []
        self.statuses: list[DeviceStatus] = []
        self.callback_threads: set[int] = set()  # which threads ran the callbacks
        self.transport: MqttTransport = make_mqtt_transport(url, cfg, SITE, devices)

    def start(self) -> Controller:
        self.transport.start(self._on_reading, self._on_status)
        return self

    def _on_reading(self, r: MeterReading) -> None:
        self.callback_threads.add(threading.get_ident())
        self.readings.append(r)

    def _on_status(self, s: DeviceStatus) -> None:
        self.callback_threads.add(threading.get_ident())
        self.statuses.append(s)

    def drain_until(self, done: Callable[[], bool], timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            self.transport.drain()
            if done():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met after {timeout_s} s")
            time.sleep(0.01)


def device_client(url: str, device: str, cfg: MqttConfig = FAST, **kw) -> MqttClient:
    """A bare native device: Last Will offline on its status topic, subscribed to its set topic."""
    will = Publish(topics.status_topic(SITE, device), encode(DeviceStatus(device, False)), 1, True)
    return MqttClient(
        url, cfg, f"dev-{device}", will=will, subscriptions=[topics.set_topic(SITE, device)], **kw
    )


def collect(client: MqttClient, n: int, timeout_s: float = 10.0) -> list[Inbound]:
    """Wait for ``n`` inbound messages on ``client``."""
    out: list[Inbound] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < n:
        msg = client.get_nowait()
        if msg is not None:
            out.append(msg)
            continue
        if time.monotonic() > deadline:
            raise TimeoutError(f"got {len(out)} of {n} messages after {timeout_s} s")
        time.sleep(0.005)
    return out
