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
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lastwatt.errors import InputError
from lastwatt.result import (
    BUSINESS_FIELDS,
    DEVICE_FIELDS,
    POLICY_FIELDS,
    ROUND_FIELDS,
    RoundResult,
    RunMeta,
)
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

    def _reset_buffers(self) -> None:
        self._rounds: list[list[float]] = []
        self._round_ts: list[float] = []
        self._selected: list[str] = []
        self._business: list[np.ndarray] = []
        self._policy: list[np.ndarray] = []
        self._device: list[np.ndarray] = []

    @property
    def rounds_recorded(self) -> int:
        return self.first_round + len(self._rounds)

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
            self.journal.append(kept)
        self.first_round = resume_rounds
        self.write_run_json("running", resume_rounds)

    def record(self, r: RoundResult) -> None:
        self._rounds.append([r.scalars[f] for f in ROUND_FIELDS])
        self._round_ts.append(r.start_ts)
        self._selected.append(",".join(map(str, r.selected)))
        self._business.append(np.column_stack([r.business[f] for f in BUSINESS_FIELDS]))
        self._policy.append(np.column_stack([r.policy[f] for f in POLICY_FIELDS]))
        if r.device_ids:
            self._device.append(np.column_stack([r.device[f] for f in DEVICE_FIELDS]))
        if self.journal is not None and time.monotonic() - self._last_flush >= FLUSH_WALL_S:
            self.flush()

    def flush(self, sync: bool = False) -> None:
        """Append the buffered rounds to the journal (a no-op for an in-memory run)."""
        if self.journal is None:
            return
        if self._rounds:
            self.journal.append(self._frames())
            self.first_round += len(self._rounds)
            self._reset_buffers()
        if sync:
            self.journal.sync()
        self._last_flush = time.monotonic()

    def _grain(self, blocks: list[np.ndarray], names: list[str], fields: tuple[str, ...],
               key: str) -> pd.DataFrame:
        if not blocks:
            return pd.DataFrame(columns=["round", "ts", key, *fields])
        n = len(names)
        df = pd.DataFrame(np.vstack(blocks), columns=list(fields))
        df.insert(0, key, np.tile(np.asarray(names, dtype=object), len(blocks)))
        df.insert(0, "ts", np.repeat(np.asarray(self._round_ts[: len(blocks)]), n))
        df.insert(0, "round", np.repeat(np.arange(len(blocks)) + self.first_round, n))
        return df

    def _frames(self) -> dict[str, pd.DataFrame]:
        """The buffered rounds as table chunks."""
        assert self.meta is not None
        rounds = pd.DataFrame(self._rounds, columns=list(ROUND_FIELDS))
        rounds.insert(0, "selected", self._selected)
        rounds.insert(0, "ts", self._round_ts)
        rounds.insert(0, "round", np.arange(len(rounds)) + self.first_round)
        tables = {
            "rounds": rounds,
            "businesses": self._grain(self._business, self.meta.business_names,
                                      BUSINESS_FIELDS, "business"),
            "policies": self._grain(self._policy, self.meta.policy_names, POLICY_FIELDS, "policy"),
            "devices": self._grain(self._device, list(self.meta.device_dialects),
                                   DEVICE_FIELDS, "device"),
        }
        for name, columns in INTEGER_COLUMNS.items():
            if len(tables[name]):
                tables[name] = tables[name].astype(dict.fromkeys(columns, np.int64))
        return tables

    def build_tables(self, stakers: pd.DataFrame) -> dict[str, pd.DataFrame]:
        if self.journal is None:
            tables = self._frames()
        else:
            self.flush()
            tables = read_journal(self.run_dir)
            for name, df in self._frames().items():  # columns of tables never journalled
                tables.setdefault(name, df)
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
        atomic_write(self.run_dir / "run.json", text.encode())

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
