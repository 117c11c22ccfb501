"""A test-side MQTT client that records every message it sees (for the bridge/fleet tests)."""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


class Probe:
    def __init__(self, port: int, pattern: str = "#") -> None:
        self.messages: dict[str, list[tuple[bytes, bool]]] = defaultdict(list)
        self._lock = threading.Lock()
        self._sub = threading.Event()
        self._client_id = f"probe-{uuid.uuid4().hex[:12]}"
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=self._client_id)
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *a: self._sub.set()
        self.c.connect("127.0.0.1", port)
        self.c.subscribe(pattern, 1)
        self.c.loop_start()
        assert self._sub.wait(5), "probe subscription not acknowledged"

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages[msg.topic].append((msg.payload, bool(msg.retain)))

    def payloads(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for p, _ in self.messages.get(topic, [])]

    def sync(self, timeout_s: float = 5.0) -> None:
        """Return once everything the broker has queued for this probe so far has arrived.

        A marker published now, on a topic of the probe's own, comes after those messages on
        the same connection: waiting for it is waiting for a positive event, not for a while.
        """
        topic = f"probe-sync/{self._client_id}"
        got = threading.Event()
        self.c.message_callback_add(topic, lambda *a: got.set())
        self.c.subscribe(topic, 1)
        self.c.publish(topic, b"", 1)
        assert got.wait(timeout_s), "probe sync marker not received"
        self.c.message_callback_remove(topic)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.c.publish(topic, payload, 1, retain).wait_for_publish(5)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def wait_until(check: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout_s} s")
