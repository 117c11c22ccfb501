"""The per-replica Generator calls of a replica batch, at the least Python cost per call.

Each replica draws from its own streams, call for call as its single run (docs/replicas.md):
one Python call per replica and draw site is unavoidable, so everything around the call is
taken out of the loop. Bound methods are looked up once, and each call writes into a row view
of a preallocated buffer (``out=``, or ``shuffle`` of a row filled with ``arange``), views made
once: ``Generator.permutation(n)`` is ``arange(n)`` then ``shuffle``, so shuffling a row of
``arange(n)`` in place gives its bits without the allocation and copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lastwatt.rng import Streams


class ReplicaDraws:
    """Buffers and bound Generator methods of R replicas' streams (N businesses)."""

    def __init__(self, streams: list[Streams], n_businesses: int) -> None:
        self._streams = streams
        self._n = n_businesses
        self._random = [s.market.random for s in streams]
        self._shuffle = {p: [getattr(s, p).shuffle for s in streams] for p in ("market",
                                                                                "baselines")}
        self._normal = {p: [getattr(s, p).standard_normal for s in streams]
                        for p in ("performance", "world")}
        self._arange = np.arange(n_businesses, dtype=np.intp)
        self._perm = {p: _rows_of(np.empty((len(streams), n_businesses), dtype=np.intp))
                      for p in self._shuffle}
        self._uniform: dict[int, tuple[np.ndarray, list[np.ndarray]]] = {}

    def uniforms(self, rows: np.ndarray, width: int) -> np.ndarray:
        """``market.random(width, float32)`` of each replica in ``rows``, into rows of an
        (R, width) buffer (other rows: stale); reused the next call."""
        if width not in self._uniform:
            self._uniform[width] = _rows_of(np.empty((len(self._streams), width), np.float32))
        buffer, views = self._uniform[width]
        draw, f32 = self._random, np.float32
        for r in rows.tolist():
            draw[r](dtype=f32, out=views[r])
        return buffer

    def permutations(self, purpose: str, rows: np.ndarray | None = None,
                     size: int | None = None) -> np.ndarray:
        """``permutation(size)`` (default N) from the ``purpose`` stream of every replica
        (R, size), or of ``rows``; an every-replica array of N is overwritten by the next
        call."""
        shuffle = self._shuffle[purpose]
        if size is not None and size != self._n:  # some businesses closed: a new buffer
            perm = np.empty((len(shuffle), size), dtype=np.intp)
            perm[:] = np.arange(size)
            for r in range(len(shuffle)) if rows is None else rows.tolist():
                shuffle[r](perm[r])
            return perm if rows is None else perm[rows]
        buffer, views = self._perm[purpose]
        if rows is None:
            buffer[:] = self._arange
            for draw, view in zip(shuffle, views, strict=True):
                draw(view)
            return buffer
        for r in rows.tolist():
            views[r][:] = self._arange
            shuffle[r](views[r])
        return buffer[rows]

    def normals(self, purpose: str) -> np.ndarray:
        """``standard_normal(N)`` from each replica's ``purpose`` stream: (R, N), new."""
        out = np.empty((len(self._streams), self._n))
        draws: list[Any] = self._normal[purpose]
        for draw, view in zip(draws, out, strict=True):
            draw(out=view)
        return out


def _rows_of(buffer: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    return buffer, list(buffer)
