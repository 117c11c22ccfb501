"""Run a started service (bridge or simulated fleet) until SIGINT / SIGTERM, logging its
counters now and then, then stop it."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable


def serve_until_signalled(
    counters: Callable[[], str], stop_service: Callable[[], None], log: logging.Logger,
    every_s: float,
) -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    next_stats = time.monotonic() + every_s
    while not stop.wait(0.5):
        if time.monotonic() >= next_stats:
            next_stats += every_s
            log.info("%s", counters())
    stop_service()
