"""A durable, ordered spool of line-protocol batches: SQLite in WAL mode.

Batches go in while the database is unreachable or refuses, and come out oldest first when
it returns. The spool survives a crash or a stop of the process: the next recorder writing
to the same server flushes it before its own points. Past ``limit_bytes`` a batch is refused
(:class:`SpoolFull`): the caller counts its points as dropped and says so loudly.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lastwatt.errors import ServiceError


class SpoolFull(ServiceError):
    """The spool reached its configured size; the batch was not stored."""


class Spool:
    """FIFO of (body, points) batches in ``path``; one writer thread uses it at a time."""

    def __init__(self, path: Path, limit_bytes: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.limit_bytes = limit_bytes
        # the recorder's writer thread opens it and is its only user
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed batch survives power loss too (WAL + NORMAL may roll the last
        # commits back); the spool is written only while the database is away, so the fsync
        # per batch costs nothing that matters
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS batch (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " points INTEGER NOT NULL, body BLOB NOT NULL)"
        )
        self.bytes, self.points, self.batches = self._db.execute(
            "SELECT COALESCE(SUM(LENGTH(body)), 0), COALESCE(SUM(points), 0), COUNT(*) FROM batch"
        ).fetchone()

    def push(self, body: bytes, points: int) -> None:
        """Append a batch; over the size limit it is dropped with a SpoolFull error."""
        if self.bytes + len(body) > self.limit_bytes:
            raise SpoolFull(
                "influx.spool_limit_mb",
                f"spool {self.path} full ({self.bytes / 1e6:.1f} MB), {points} points dropped",
                "bring the database back or raise influx.spool_limit_mb",
            )
        self._db.execute("INSERT INTO batch (points, body) VALUES (?, ?)", (points, body))
        self.bytes += len(body)
        self.points += points
        self.batches += 1

    def peek(self) -> tuple[int, bytes, int] | None:
        """The oldest batch as (id, body, points), or None when empty."""
        row = self._db.execute("SELECT id, body, points FROM batch ORDER BY id LIMIT 1").fetchone()
        return None if row is None else (row[0], bytes(row[1]), row[2])

    def pop(self, batch_id: int) -> None:
        """Remove a batch once the server has accepted it."""
        row = self._db.execute(
            "DELETE FROM batch WHERE id = ? RETURNING LENGTH(body), points", (batch_id,)
        ).fetchone()
        if row is not None:
            self.bytes -= row[0]
            self.points -= row[1]
            self.batches -= 1

    def shrink(self) -> None:
        """Give the file's space back once the spool is empty (a flush leaves it full size)."""
        if self.batches == 0:
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def __len__(self) -> int:
        return self.batches

    def close(self) -> None:
        """Close the database file; what is spooled stays for the next run."""
        self._db.close()
