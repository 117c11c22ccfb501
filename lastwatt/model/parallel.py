"""Two threads for the per-staker work of a large population (numpy releases the GIL).

Only elementwise work is split (each staker's result depends on its own inputs and on random
numbers drawn up front by the caller), and whole reductions are only moved to another thread,
never split: a large population's results are bit-identical to the single-threaded path and do
not depend on thread scheduling. Work is cut into pieces that both threads take from one queue,
and a task the pool has not started yet is run by the caller itself: on a busy machine, where
the helper thread may not get a core, the caller is never left waiting for it. Populations
below ``THREADED_MIN_STAKERS`` never touch the pool: at that size the hand-over costs more than
it saves.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

THREADED_MIN_STAKERS = 200_000  # read when a Market is built (tests lower it)
WORKERS = 2  # the development and CI machines have 2 cores
PIECES = 8  # per split: small enough that the caller can take over a slow helper's share

T = TypeVar("T")
_pool: ThreadPoolExecutor | None = None


def threaded(n_stakers: int) -> bool:
    return n_stakers >= THREADED_MIN_STAKERS


def submit(fn: Callable[..., T], *args: object) -> Future[T]:
    """Run ``fn(*args)`` on the persistent pool (created on first use, joined at exit)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="lastwatt-model")
    return _pool.submit(fn, *args)


def collect(task: Future[T], fn: Callable[[], T]) -> T:
    """The result of ``task`` (submitted as ``fn``); run here if the pool has not started it."""
    return fn() if task.cancel() else task.result()


def share(fn: Callable[[Any, bool], None], pieces: Sequence[Any], threads: bool) -> None:
    """``fn(piece, helper)`` for every piece, on the calling thread (``helper`` False) and, when
    ``threads``, on a pool thread too (``helper`` True), both taking pieces from one queue."""
    if not threads:
        for piece in pieces:
            fn(piece, False)
        return
    queue = iter(pieces)  # next() on a list iterator is atomic: no piece is taken twice

    def drain(helper: bool) -> None:
        for piece in queue:
            fn(piece, helper)

    helper = submit(drain, True)
    drain(False)
    if not helper.cancel():  # started: wait for its last piece
        helper.result()


def split(fn: Callable[..., None], arrays: Sequence[np.ndarray], threads: bool) -> None:
    """``fn(*arrays)``, or, when ``threads``, ``fn`` over ``PIECES`` slices of the staker (last)
    axis of every array, on two threads.

    ``fn`` must be elementwise over stakers (each staker's outputs depend only on its own
    inputs), so both ways give the same bits. Without threads no view is made: the small
    populations' fast path pays nothing for this.
    """
    if not threads:
        fn(*arrays)
        return
    n = arrays[0].shape[-1]
    cuts = [n * i // PIECES for i in range(PIECES + 1)]
    pieces = [slice(a, b) for a, b in itertools.pairwise(cuts)]
    share(lambda part, _: fn(*(a[..., part] for a in arrays)), pieces, threads)
