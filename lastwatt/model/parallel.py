"""Two threads for the per-staker work of a large population (numpy releases the GIL).

Only elementwise work is split (each staker's result depends on its own inputs and on random
numbers drawn up front by the caller), and whole reductions are only moved to another thread,
never split: a large population's results are bit-identical to the single-threaded path and do
not depend on thread scheduling. Populations below ``THREADED_MIN_STAKERS`` never touch the
pool: at that size the hand-over costs more than it saves.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

THREADED_MIN_STAKERS = 200_000  # read when a Market is built (tests lower it)
WORKERS = 2  # the development and CI machines have 2 cores

T = TypeVar("T")
_pool: ThreadPoolExecutor | None = None


def threaded(n_stakers: int) -> bool:
    return n_stakers >= THREADED_MIN_STAKERS


def submit(fn: Callable[..., T], *args: object) -> Future[T]:
    """Run ``fn(*args)`` on the persistent pool (created on first use; its threads are daemons
    of ``concurrent.futures``, joined at interpreter exit)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="lastwatt-model")
    return _pool.submit(fn, *args)


def halves(start: int, stop: int) -> tuple[slice, slice]:
    middle = (start + stop) // 2
    return slice(start, middle), slice(middle, stop)


def split(fn: Callable[[slice], None], start: int, stop: int, threads: bool) -> None:
    """``fn`` over ``[start, stop)``: in two halves on two threads when ``threads``, else at once.

    ``fn`` must be elementwise over its slice (writes only its own slice), so both ways agree.
    """
    if not threads:
        fn(slice(start, stop))
        return
    first, second = halves(start, stop)
    other = submit(fn, second)
    fn(first)
    other.result()
