"""SIGTERM treated like SIGINT, and signals held off while a run folder is being finished.

``docker stop`` and systemd send SIGTERM: :func:`terminate_as_interrupt` turns it into the
same ``KeyboardInterrupt`` that Ctrl-C raises, so both end a run the same orderly way. While
the run folder is compacted (:func:`deferred`), a second SIGINT/SIGTERM is noted and ignored
rather than raised half-way through; even a SIGKILL then leaves the journal to read from.

While SimPy runs, a signal must not raise inside a process: SimPy catches any exception a
process raises, fails only that process and carries on with the events already due, so a
device process killed mid-round would let the engine book that round short.
:func:`between_events` notes the signal and raises it between two events, or at once while
the run only waits for the wall clock.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    if not _main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def deferred(reraise: bool = False) -> Iterator[None]:
    """Hold SIGINT/SIGTERM off for the block; ``reraise``: then interrupt as it would have
    (a journal flush, a checkpoint), else ignore them (finishing the run folder)."""
    if not _main_thread():
        yield
        return
    seen: list[signal.Signals] = []

    def note(signum: int, frame: object) -> None:
        if not seen and not reraise:
            log.warning("%s: finishing the run folder first", signal.Signals(signum).name)
        seen.append(signal.Signals(signum))

    previous = {s: signal.signal(s, note) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if reraise and seen:
        handler = previous[seen[0]]
        if handler == signal.SIG_IGN:
            return
        if callable(handler):
            handler(seen[0], None)  # what the signal would have done: KeyboardInterrupt
        else:
            raise KeyboardInterrupt(signal.Signals(seen[0]).name)


class Stops:
    """A SIGINT/SIGTERM noted during the SimPy loop, raised where no process is running."""

    def __init__(self) -> None:
        self.seen: str | None = None
        self.waiting = False

    def note(self, signum: int, frame: object) -> None:
        self.seen = signal.Signals(signum).name
        if self.waiting:
            raise KeyboardInterrupt(self.seen)

    def check(self) -> None:
        """Between two events: end the run now if a signal came."""
        if self.seen is not None:
            raise KeyboardInterrupt(self.seen)

    @contextmanager
    def waiting_for_clock(self) -> Iterator[None]:
        """No process runs here, so a signal may end the run at once."""
        self.check()
        self.waiting = True
        try:
            yield
        finally:
            self.waiting = False


@contextmanager
def between_events() -> Iterator[Stops]:
    stops = Stops()
    if not _main_thread():
        yield stops
        return
    previous = {s: signal.signal(s, stops.note) for s in SIGNALS}
    try:
        yield stops
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def ignore_further() -> None:
    """From now on SIGINT/SIGTERM are ignored (the process is only reporting and exiting)."""
    if _main_thread():
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN)
