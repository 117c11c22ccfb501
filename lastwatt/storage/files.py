"""The run folder: ``run.json`` and one table per grain, as Parquet (default) or CSV.

Crash consistency (docs/storage.md, "Run folders"): rounds are buffered and appended to an
Arrow IPC journal (``storage.journal``) at every checkpoint and at least once a second of wall
time; ``run.json`` is rewritten atomically at each checkpoint with the rounds committed. At
the end, or on SIGINT/SIGTERM, the journal is compacted into the final tables (written to a
temporary name, then renamed), ``run.json`` gets the summary, and the journal is removed. A
folder killed at any instant is read through the journal as a consistent prefix.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from lastwatt.errors import InputError
from lastwatt.result import (
    BUSINESS_FIELDS,
    DEVICE_FIELDS,
    POLICY_FIELDS,
    ROUND_FIELDS,
    RoundResult,
    RunMeta,
)
from lastwatt.signals import deferred
from lastwatt.storage.journal import Journal, atomic_write, has_journal, read_journal

TABLES = ("rounds", "businesses", "policies", "devices", "stakers")
FLUSH_WALL_S = 1.0  # real time: a round reaches the journal within a second of wall time
INTEGER_COLUMNS = {"businesses": ("selected",), "policies": ("stakers", "abstaining"),
                   "devices": ("business", "on", "online", "rejected_readings")}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def _clean(value: Any) -> Any:
    """JSON has no NaN: write null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def prepare_run_dir(run_dir: Path, overwrite: bool = False) -> None:
    """Check before the run that ``run_dir`` can be written and holds no earlier run.

    A rerun never silently replaces a run: without ``overwrite`` an existing run folder is an
    error (resume it with ``--resume`` or choose another ``--out``)."""
    parent = run_dir.parent
    for p in (parent, *parent.parents):
        if p.exists():
            if not p.is_dir():
                raise InputError(f"--out {parent}", f"{p} is a file, not a folder",
                                 "give a folder for the run folders")
            break
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"--out {parent}", f"cannot create the folder: {err.strerror}",
                         "give a writable folder") from None
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"--out {parent}", f"{run_dir} is a file",
                         "remove it or give another --out")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if not overwrite:
            raise InputError(f"--out {parent}", f"run folder {run_dir} already exists",
                             f"use --overwrite to replace it or --resume {run_dir} to continue it")
        shutil.rmtree(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise InputError(f"--out {parent}", f"cannot write there: {err.strerror}",
                         "give a writable folder") from None


class FileRecorder:
    def __init__(self, run_dir: Path | None, fmt: str = "parquet") -> None:
        self.run_dir = run_dir  # None: keep the tables in memory, write nothing
        self.fmt = fmt
        self.meta: RunMeta | None = None
        self.journal: Journal | None = None
        self.first_round = 0  # round number of the first buffered row
        self._last_flush = time.monotonic()
        self._reset_buffers()
        self.tables: dict[str, pd.DataFrame] = {}

    def _reset_buffers(self, keep_pending: bool = False) -> None:
        if not keep_pending:
            self._pending: list[tuple[Any, ...]] = []
        self._rounds: list[list[float]] = []
        self._round_ts: list[float] = []
        self._selected: list[str] = []
        self._business: list[np.ndarray] = []
        self._policy: list[np.ndarray] = []
        self._device: list[np.ndarray] = []

    @property
    def rounds_recorded(self) -> int:
        return self.first_round + len(self._pending)

    def open(self, meta: RunMeta, resume_rounds: int = 0) -> None:
        """Start the journal; when resuming, keep the journal's first ``resume_rounds`` rounds."""
        self.meta = meta
        if self.run_dir is None:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        kept = read_run_tables(self.run_dir, resume_rounds) if resume_rounds else {}
        for name in TABLES:  # a resumed run's compacted tables are rebuilt from the journal
            (self.run_dir / f"{name}.{self.fmt}").unlink(missing_ok=True)
        if has_journal(self.run_dir):
            shutil.rmtree(self.run_dir / "journal")
        self.journal = Journal(self.run_dir)
        if kept:
            schemas = {name: t.schema for name, t in self._frames().items()}
            self.journal.append({
                name: pa.Table.from_pandas(df, schema=schemas[name], preserve_index=False)
                .replace_schema_metadata(None)
                for name, df in kept.items()
            })
        self.first_round = resume_rounds
        self.write_run_json("running", resume_rounds)

    def record(self, r: RoundResult) -> None:
        # one append per round: a signal between two appends would leave the grains unequal
        # each grain's fields end to end, one copy (a round's arrays may be reused buffers);
        # the dtype is the fields' common one, as a column stack's
        self._pending.append((
            [r.scalars[f] for f in ROUND_FIELDS], r.start_ts, ",".join(map(str, r.selected)),
            np.concatenate([r.business[f] for f in BUSINESS_FIELDS]),
            np.concatenate([r.policy[f] for f in POLICY_FIELDS]),
            np.concatenate([r.device[f] for f in DEVICE_FIELDS]) if r.device_ids else None,
        ))
        if self.journal is not None and time.monotonic() - self._last_flush >= FLUSH_WALL_S:
            self.flush()

    def _unpack(self) -> None:
        """The pending rounds into the column buffers the table chunks are built from."""
        self._reset_buffers(keep_pending=True)
        for row, ts, selected, business, policy, device in self._pending:
            self._rounds.append(row)
            self._round_ts.append(ts)
            self._selected.append(selected)
            self._business.append(business)
            self._policy.append(policy)
            if device is not None:
                self._device.append(device)

    def flush(self, sync: bool = False) -> None:
        """Append the buffered rounds to the journal (a no-op for an in-memory run)."""
        if self.journal is None:
            return
        with deferred(reraise=True):  # a signal mid-batch would tear the journal
            if self._pending:
                self.journal.append(self._frames())
                self.first_round += len(self._pending)
                self._reset_buffers()
            if sync:
                self.journal.sync()  # at the end of a run: also safe from a machine crash
            self._last_flush = time.monotonic()

    def _grain(self, blocks: list[np.ndarray], names: list[str], fields: tuple[str, ...],
               key: str, ints: tuple[str, ...] = ()) -> pa.Table:
        n, k = len(names), len(blocks)
        # a block is one round: field after field, n entities each
        data = (np.vstack(blocks) if blocks else np.empty((0, len(fields) * n))
                ).reshape(k, len(fields), n)
        columns = {
            "round": np.repeat(np.arange(k, dtype=np.int64) + self.first_round, n),
            "ts": np.repeat(np.asarray(self._round_ts[:k], dtype=np.float64), n),
            key: pa.array(np.tile(np.asarray(names, dtype=object), k), pa.string()),
        }
        for j, f in enumerate(fields):
            col = data[:, j, :].reshape(-1)
            if f in ints:  # NaN (an offline device's relay state: unknown) becomes null
                unknown = np.isnan(col)
                columns[f] = pa.array(np.where(unknown, 0, col).astype(np.int64),
                                      mask=unknown if unknown.any() else None)
            else:
                columns[f] = col.astype(np.float64)
        return pa.table(columns)

    def _frames(self) -> dict[str, pa.Table]:
        """The buffered rounds as table chunks (Arrow: a flush must be cheap)."""
        assert self.meta is not None
        self._unpack()
        k = len(self._rounds)
        data = np.asarray(self._rounds, dtype=np.float64).reshape(k, len(ROUND_FIELDS))
        rounds = {
            "round": np.arange(k, dtype=np.int64) + self.first_round,
            "ts": np.asarray(self._round_ts, dtype=np.float64),
            "selected": pa.array(self._selected, pa.string()),
            **{f: data[:, j] for j, f in enumerate(ROUND_FIELDS)},
        }
        m = self.meta
        return {
            "rounds": pa.table(rounds),
            "businesses": self._grain(self._business, m.business_names, BUSINESS_FIELDS,
                                      "business", INTEGER_COLUMNS["businesses"]),
            "policies": self._grain(self._policy, m.policy_names, POLICY_FIELDS, "policy",
                                    INTEGER_COLUMNS["policies"]),
            "devices": self._grain(self._device, list(m.device_dialects) if self._device else [],
                                   DEVICE_FIELDS, "device", INTEGER_COLUMNS["devices"]),
        }

    def build_tables(self, stakers: pd.DataFrame) -> dict[str, pd.DataFrame]:
        if self.journal is None:
            tables = {name: t.to_pandas() for name, t in self._frames().items()}
        else:
            self.flush()
            assert self.run_dir is not None  # a journal lives in a run folder
            tables = read_journal(self.run_dir)
            for name, t in self._frames().items():  # tables never journalled: empty
                tables.setdefault(name, t.to_pandas())
        tables["stakers"] = stakers
        self.tables = tables
        return tables

    def write_run_json(self, status: str, rounds: int, summary: dict[str, Any] | None = None,
                       extra: dict[str, Any] | None = None) -> None:
        assert self.meta is not None and self.run_dir is not None
        run = {
            "run_id": self.meta.run_id,
            "site": self.meta.site,
            "scenario": self.meta.scenario,
            "seed": self.meta.seed,
            "status": status,  # running | interrupted | complete
            "rounds_committed": rounds,
            **(extra or {}),
            "summary": _clean(summary) if summary is not None else None,
            "config": self.meta.config,
        }
        text = json.dumps(run, indent=2, default=_json_default, sort_keys=False) + "\n"
        # no fsync at checkpoints (~10 ms each): rename is atomic against a killed process
        atomic_write(self.run_dir / "run.json", text.encode(), fsync=status != "running")

    def close(self, summary: dict[str, Any], stakers: pd.DataFrame) -> None:
        assert self.meta is not None
        if not self.tables:
            self.build_tables(stakers)
        if self.run_dir is None:
            return
        for name, df in self.tables.items():
            path = self.run_dir / f"{name}.{self.fmt}"
            tmp = path.with_name(f".{path.name}.tmp")
            if self.fmt == "csv":
                df.to_csv(tmp, index=False)
            else:
                df.to_parquet(tmp, index=False)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())  # on disk before run.json says the run is finished
            tmp.replace(path)
        n = len(self.tables["rounds"])
        status = "complete" if n == summary.get("rounds_configured", n) else "interrupted"
        self.write_run_json(status, n, summary)
        assert self.journal is not None
        self.journal.remove()  # the compacted tables are now the truth
        self.journal = None


def read_run_tables(run_dir: Path, max_rounds: int | None = None) -> dict[str, pd.DataFrame]:
    """A run folder's round tables as one consistent prefix (journal or compacted tables)."""
    if has_journal(run_dir):
        return read_journal(run_dir, max_rounds)
    out = {}
    for name in ("rounds", "businesses", "policies", "devices"):
        try:
            df = read_table(run_dir, name)
        except FileNotFoundError:
            continue
        n = len(df) if max_rounds is None else max_rounds
        out[name] = df[df["round"] < n].reset_index(drop=True)
    return out


def read_table(run_dir: Path, name: str) -> pd.DataFrame:
    """Read one table of a run folder, whichever format; an unfinished run via its journal."""
    if has_journal(run_dir):
        tables = read_journal(run_dir)
        if name in tables:
            return tables[name]
        raise FileNotFoundError(f"{run_dir}: the unfinished run has no {name} table yet")
    for fmt, reader in (("parquet", pd.read_parquet), ("csv", pd.read_csv)):
        path = Path(run_dir) / f"{name}.{fmt}"
        if path.exists():
            return reader(path)
    raise FileNotFoundError(f"{run_dir}: no {name}.parquet or {name}.csv")
