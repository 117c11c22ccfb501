"""The crash-consistent part of a run folder: an append-only journal and atomic small files.

While a run is going, each table grows as an Arrow IPC *stream* in ``journal/<table>.arrows``:
every flush appends one record batch per table, ``rounds`` last. A process killed at any
instant leaves at most a torn batch at the end of some stream; :func:`read_journal` drops it
and cuts every table to the rounds that ``rounds.arrows`` holds completely, so what it returns
is always a consistent prefix of the run. ``run.json`` and the final tables are written to a
temporary name and renamed over the old one (:func:`atomic_write`): a reader sees the old file
or the new one, never half of one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc

JOURNAL = "journal"
ORDER = ("businesses", "policies", "devices", "rounds")  # rounds last: it commits a flush


def atomic_write(path: Path, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` so that a reader never sees a partial file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        if fsync:
            os.fsync(f.fileno())
    os.replace(tmp, path)


class Journal:
    """Appends table chunks (Arrow tables) as Arrow record batches, one stream per table."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir) / JOURNAL
        self.dir.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, BinaryIO] = {}
        self._writers: dict[str, ipc.RecordBatchStreamWriter] = {}

    def append(self, chunks: dict[str, pa.Table]) -> None:
        for name in ORDER:
            table = chunks.get(name)
            if table is None or len(table) == 0:
                continue
            writer = self._writers.get(name)
            if writer is None:
                f = open(self.dir / f"{name}.arrows", "wb")  # noqa: SIM115 - kept open
                self._files[name] = f
                writer = self._writers[name] = ipc.new_stream(f, table.schema)
            writer.write_table(table)
        for stream in self._files.values():
            stream.flush()  # into the OS: survives the death of this process

    def sync(self) -> None:
        """fsync the streams (checkpoints): also survives a crash of the machine."""
        for f in self._files.values():
            os.fsync(f.fileno())

    def close(self) -> None:
        for name, writer in self._writers.items():
            writer.close()
            self._files[name].close()
        self._writers.clear()
        self._files.clear()

    def remove(self) -> None:
        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _read_stream(path: Path) -> pa.Table | None:
    """The complete record batches of one stream; a torn last batch is dropped."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    batches = []
    with open(path, "rb") as f:
        try:
            reader = ipc.open_stream(f)
        except (pa.ArrowInvalid, OSError):
            return None  # killed while writing the schema: nothing committed
        schema = reader.schema
        while True:
            try:
                batches.append(reader.read_next_batch())
            except StopIteration:
                break
            except (pa.ArrowInvalid, OSError):
                break  # torn at the end
    return pa.Table.from_batches(batches, schema=schema)


def has_journal(run_dir: Path) -> bool:
    return (Path(run_dir) / JOURNAL).is_dir()


def read_journal(run_dir: Path, max_rounds: int | None = None) -> dict[str, pd.DataFrame]:
    """The journal's tables cut to one consistent prefix (at most ``max_rounds`` rounds)."""
    folder = Path(run_dir) / JOURNAL
    tables = {name: _read_stream(folder / f"{name}.arrows") for name in ORDER}
    rounds = tables["rounds"]
    n = 0 if rounds is None else rounds.num_rows
    if max_rounds is not None:
        n = min(n, max_rounds)
    out: dict[str, pd.DataFrame] = {}
    for name, table in tables.items():
        if table is None:
            continue
        df = table.to_pandas()
        out[name] = df[df["round"] < n].reset_index(drop=True) if name != "rounds" else df[:n]
    return out
