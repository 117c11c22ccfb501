"""Run a started service (bridge or simulated fleet) until SIGINT / SIGTERM, logging its
counters now and then, then stop it."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def serve_until_signalled(
    counters: Callable[[], str], stop_service: Callable[[], None], log: logging.Logger,
    every_s: float, clock: Callable[[], float] = time.monotonic,
) -> None:
    """Block (main thread: signal handlers live there) until a signal, logging ``counters()``
    every ``every_s`` by ``clock``; then ``stop_service()`` and the previous handlers back."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in SIGNALS}
    try:
        next_stats = clock() + every_s
        while not stop.wait(min(0.5, every_s)):
            if clock() >= next_stats:
                next_stats += every_s
                log.info("%s", counters())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop_service()
