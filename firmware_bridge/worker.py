"""One thread that owns all device state: inbound messages, timers and calls from outside.

The bridge and the simulated fleet both keep their state in a single thread, so nothing
needs a lock: paho's network threads only enqueue what they receive (``MqttClient.inbound``
is this worker's queue), timers live in a heap, and the in-process API (``kill``, ``reboot``,
readings for tests) runs as a call in the same thread. A handler that raises is logged and
the loop goes on: bad input must never stop it.

Timers run on the one clock the owner injects (epoch seconds, ``time.time`` by default): the
same clock that stamps readings and that ``valid_until`` is written in, so a timer set for a
deadline fires when that clock reaches it, not a hair before. Tests inject a fake clock and
drive the worker without its thread: :meth:`run_pending` handles what is queued and what is
due, in the caller's thread.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from lastwatt.transport.mqtt_client import Inbound

log = logging.getLogger(__name__)
T = TypeVar("T")
Clock = Callable[[], float]
_STOP = object()
DRAIN_MAX = 1000  # queued items handled per round before due timers get their turn


class Stopped(Exception):
    """The worker was told to stop (internal: ends the loop)."""


class Worker:
    def __init__(self, on_message: Callable[[Inbound], None], name: str,
                 clock: Clock = time.time) -> None:
        self.on_message = on_message
        self.name = name
        self.clock = clock
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self.errors = 0

    def call_at(self, when: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` once ``clock()`` reaches ``when`` (worker thread only)."""
        heapq.heappush(self._timers, (when, next(self._seq), fn))

    def post(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn`` in the worker thread soon; the future holds its result."""
        fut: Future[T] = Future()
        self.queue.put((fn, fut))
        return fut

    def call(self, fn: Callable[[], T], timeout_s: float = 10.0) -> T:
        """Run ``fn`` in the worker thread and wait for its result. Without a running thread
        (a test driving the worker) it runs ``fn`` and whatever was queued before it here."""
        fut = self.post(fn)
        if self._thread is None:
            self.run_pending()
        return fut.result(timeout_s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.queue.put(_STOP)
            self._thread.join(10)
            self._thread = None

    def run_pending(self) -> None:
        """Handle everything queued, then every timer due by ``clock()``, without waiting."""
        with contextlib.suppress(queue.Empty):
            while True:
                self._handle(self.queue.get_nowait())
        self._run_due()

    def _run(self) -> None:
        with contextlib.suppress(Stopped):
            while True:
                timeout = None
                if self._timers:
                    timeout = max(0.0, self._timers[0][0] - self.clock())
                try:
                    item = self.queue.get(timeout=timeout)
                except queue.Empty:
                    item = None
                if item is not None:
                    self._drain(item)
                self._run_due()

    def _drain(self, item: Any) -> None:
        """Handle ``item`` and what waits behind it (up to DRAIN_MAX) before the timers: with
        one item per round, a long timer (the fleet's telemetry sweep) let commands and
        calls pile up without bound."""
        self._handle(item)
        for _ in range(DRAIN_MAX - 1):
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return
            self._handle(item)

    def _run_due(self) -> None:
        now = self.clock()
        while self._timers and self._timers[0][0] <= now:
            _, _, fn = heapq.heappop(self._timers)
            self._guard(fn)

    def _handle(self, item: Any) -> None:
        if item is _STOP:
            raise Stopped
        if isinstance(item, Inbound):
            self._guard(lambda: self.on_message(item))
            return
        fn, fut = item
        try:
            fut.set_result(fn())
        except Exception as err:  # handed to the caller; logged too, a post may have none
            self.errors += 1
            log.exception("%s: call failed", self.name)
            fut.set_exception(err)

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:  # a bug in one handler must not stop the others
            self.errors += 1
            log.exception("%s: handler failed", self.name)
