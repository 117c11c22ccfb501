"""The model's speed-ups for large populations, in one place; none changes a result.

The market (:mod:`lastwatt.model.market`) reads like docs/model.md; what makes it fast at a
million stakers lives here, each piece tested against a plain reference
(``tests/test_model_fast_paths.py``):

- **Threads.** numpy releases the GIL in large array operations, so a persistent pool of
  ``THREADS`` threads (the CPUs this process may use) takes part of the per-staker work. Only
  elementwise work is split (each staker's result depends on its own inputs and on random
  numbers drawn up front by the caller); whole reductions are only moved to another thread,
  never split. So a large population's results are bit-identical to one thread and do not
  depend on scheduling or on the number of CPUs. Pieces are taken from one queue, and a task the
  pool has not started yet is run by the caller itself: on a busy machine the caller is never
  left waiting for a helper without a core. Populations below ``THREADED_MIN_STAKERS`` never
  touch the pool: at that size the hand-over costs more than it saves.
- **Deferred measurements** (:class:`Deferred`): the holdings metrics (a sort for the Gini)
  change only in settled rounds; they are measured on another thread while the round goes on.
- **Idle-round selection** (:class:`IdleSelection`): consecutive rounds without a pool reuse the
  stake and active set while availability does not change.
- **Round caps** (:class:`RoundCaps`): computed once per round length, shared read-only.
- **Cache-sized chunks** (``CHUNK_STAKERS``, ``KEEP_WEIGHTS_CELLS``) for the softmax stakers.
- **Narrow counters** (:func:`counters`): int32 per-staker counts, half the memory traffic.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

import numpy as np

T = TypeVar("T")
U = TypeVar("U")


def cpu_count() -> int:
    """CPUs this process may run on (``os.process_cpu_count`` from Python 3.13)."""
    counter = getattr(os, "process_cpu_count", None)
    if counter is not None:
        return counter() or 1
    if hasattr(os, "sched_getaffinity"):  # what process_cpu_count reads on Linux
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


THREADS = cpu_count()  # threads taking part in split work, the caller included
THREADED_MIN_STAKERS = 200_000  # read when a Market is built (tests lower it)
# pieces per split: several per thread, so that the caller can take over a slow helper's share
PIECES = max(8, 4 * THREADS)
# Softmax stakers are worked through in chunks whose (c, chunk) float32 temporaries fit a
# typical 1-2 MiB L2 cache: 8 candidates x 32 768 stakers x 4 bytes = 1 MiB. Below
# KEEP_WEIGHTS_CELLS (1 MiB of float32) their running weights are kept between rounds instead.
# Both only move time, never results (tested with KEEP_WEIGHTS_CELLS = 0 and other chunks).
CHUNK_STAKERS = 32_768
KEEP_WEIGHTS_CELLS = 1 << 18

_pool: ThreadPoolExecutor | None = None


def threaded(n_stakers: int) -> bool:
    """Whether a population of ``n_stakers`` splits its per-staker work over threads."""
    return n_stakers >= THREADED_MIN_STAKERS and THREADS > 1


def submit(fn: Callable[..., T], *args: object) -> Future[T]:
    """Run ``fn(*args)`` on the persistent pool (created on first use, joined at exit)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="lastwatt-model")
    return _pool.submit(fn, *args)


def collect(task: Future[T], fn: Callable[[], T]) -> T:
    """The result of ``task`` (submitted as ``fn``); run here if the pool has not started it."""
    return fn() if task.cancel() else task.result()


def beside(main: Callable[[], T], side: Callable[[], U], threads: bool) -> tuple[T, U]:
    """``(main(), side())``, with ``side`` on another thread when ``threads``."""
    if not threads:
        return main(), side()
    task = submit(side)
    return main(), collect(task, side)


def share(fn: Callable[[Any, int], None], pieces: Sequence[Any], threads: bool) -> None:
    """``fn(piece, worker)`` for every piece: on the calling thread (``worker`` 0) and, when
    ``threads``, on ``THREADS - 1`` pool threads too (``worker`` 1, 2, ...), all taking pieces
    from one queue. ``worker`` lets ``fn`` pick a work buffer of its own."""
    if not threads:
        for piece in pieces:
            fn(piece, 0)
        return
    queue = iter(pieces)  # next() on a list iterator is atomic: no piece is taken twice

    def drain(worker: int) -> None:
        for piece in queue:
            fn(piece, worker)

    helpers = [submit(drain, worker) for worker in range(1, min(THREADS, len(pieces)))]
    drain(0)
    for helper in helpers:
        if not helper.cancel():  # started: wait for its last piece
            helper.result()


def split(fn: Callable[..., None], arrays: Sequence[np.ndarray], threads: bool) -> None:
    """``fn(*arrays)``, or, when ``threads``, ``fn`` over ``PIECES`` slices of the staker (last)
    axis of every array, on the pool's threads.

    ``fn`` must be elementwise over stakers (each staker's outputs depend only on its own
    inputs), so both ways give the same bits. Without threads no view is made: the small
    populations' path pays nothing for this.
    """
    if not threads:
        fn(*arrays)
        return
    n = arrays[0].shape[-1]
    cuts = [n * i // PIECES for i in range(PIECES + 1)]
    pieces = [slice(a, b) for a, b in itertools.pairwise(cuts)]
    share(lambda part, _: fn(*(a[..., part] for a in arrays)), pieces, threads)


def counters(n: int) -> np.ndarray:
    """``n`` zeroed per-staker counters: int32, half the memory traffic of int64."""
    return np.zeros(n, dtype=np.int32)


class Deferred(Generic[T]):
    """A measurement that changes only when told (:meth:`invalidate`): kept until then, and
    remeasured on another thread right away when ``threads``, else when next asked for."""

    def __init__(self, measure: Callable[[], T], threads: bool) -> None:
        self._measure, self._threads = measure, threads
        self._value: T | Future[T] | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a run's checkpoint): a measurement in flight is finished first."""
        return {**self.__dict__, "_value": None if self._value is None else self.get()}

    def invalidate(self) -> None:
        """What it measures has changed: measure again (now on the pool, or when asked)."""
        self._value = submit(self._measure) if self._threads else None

    def get(self) -> T:
        """The current measurement (waits for, or takes over, one in progress)."""
        value = self._value
        if value is None:
            value = self._measure()
        elif isinstance(value, Future):
            value = collect(value, self._measure)
        self._value = value
        return value


class IdleSelection:
    """Stake and active set of an idle round, for the next idle rounds while nothing changes
    (bonds and holdings stand in idle rounds; only availability can change)."""

    def __init__(self) -> None:
        self._kept: tuple[np.ndarray, np.ndarray, bytes] | None = None

    def get(self, available: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """A copy of the kept stake and the kept active set, if ``available`` is unchanged."""
        if self._kept is None or available.tobytes() != self._kept[2]:
            return None
        return self._kept[0].copy(), self._kept[1]

    def keep(self, stake: np.ndarray, selected_idx: np.ndarray, available: np.ndarray) -> None:
        """Keep an idle round's stake and active set for the next idle rounds."""
        self._kept = (stake.copy(), selected_idx, available.tobytes())

    def clear(self) -> None:
        """Bonds or holdings changed: the next idle round selects afresh."""
        self._kept = None


class RoundCaps:
    """Each business's cap per round, computed once per round length and shared read-only."""

    def __init__(self, cap_wh: Callable[[float], np.ndarray]) -> None:
        self._cap_wh = cap_wh
        self._round_s = float("nan")
        self._value = np.zeros(0)

    def __call__(self, round_s: float) -> np.ndarray:
        if round_s != self._round_s:  # the engine's round length never changes
            self._value = self._cap_wh(round_s)
            self._value.flags.writeable = False
            self._round_s = round_s
        return self._value
