"""The run folder: ``run.json`` and one table per grain, as Parquet (default) or CSV.

Rows are kept in memory as column arrays and written at close; a run that fails part way
still closes its recorders (see ``simulation.run_simulation``), so the rounds already
recorded are never lost.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lastwatt.result import (
    BUSINESS_FIELDS,
    DEVICE_FIELDS,
    POLICY_FIELDS,
    ROUND_FIELDS,
    RoundResult,
    RunMeta,
)

TABLES = ("rounds", "businesses", "policies", "devices", "stakers")


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


class FileRecorder:
    """Collects every round in memory and writes the run folder's tables and run.json at the end."""
    def __init__(self, run_dir: Path | None, fmt: str = "parquet") -> None:
        self.run_dir = run_dir  # None: keep the tables in memory, write nothing
        self.fmt = fmt
        self.meta: RunMeta | None = None
        self._rounds: list[list[float]] = []
        self._round_ts: list[float] = []
        self._selected: list[str] = []
        self._business: list[np.ndarray] = []
        self._policy: list[np.ndarray] = []
        self._device: list[np.ndarray] = []
        self.tables: dict[str, pd.DataFrame] = {}

    def open(self, meta: RunMeta) -> None:
        """Start the run: keep its metadata and create the run folder."""
        self.meta = meta
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)

    def record(self, r: RoundResult) -> None:
        """Append one round's results."""
        self._rounds.append([r.scalars[f] for f in ROUND_FIELDS])
        self._round_ts.append(r.start_ts)
        self._selected.append(",".join(map(str, r.selected)))
        self._business.append(np.column_stack([r.business[f] for f in BUSINESS_FIELDS]))
        self._policy.append(np.column_stack([r.policy[f] for f in POLICY_FIELDS]))
        if r.device_ids:
            self._device.append(np.column_stack([r.device[f] for f in DEVICE_FIELDS]))

    def _grain(self, blocks: list[np.ndarray], names: list[str], fields: tuple[str, ...],
               key: str) -> pd.DataFrame:
        if not blocks:
            return pd.DataFrame(columns=["round", "ts", key, *fields])
        n = len(names)
        data = np.vstack(blocks)
        rounds = np.repeat(np.arange(len(blocks)), n)
        df = pd.DataFrame(data, columns=list(fields))
        df.insert(0, key, np.tile(np.asarray(names, dtype=object), len(blocks)))
        df.insert(0, "ts", np.repeat(np.asarray(self._round_ts), n)[: len(df)])
        df.insert(0, "round", rounds)
        return df

    def build_tables(self, stakers: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """The run's tables (rounds, businesses, policies, devices, stakers) as DataFrames."""
        assert self.meta is not None
        rounds = pd.DataFrame(self._rounds, columns=list(ROUND_FIELDS))
        rounds.insert(0, "selected", self._selected)
        rounds.insert(0, "ts", self._round_ts)
        rounds.insert(0, "round", np.arange(len(rounds)))
        tables = {
            "rounds": rounds,
            "businesses": self._grain(self._business, self.meta.business_names,
                                      BUSINESS_FIELDS, "business"),
            "policies": self._grain(self._policy, self.meta.policy_names, POLICY_FIELDS, "policy"),
            "devices": self._grain(self._device, list(self.meta.device_dialects),
                                   DEVICE_FIELDS, "device"),
            "stakers": stakers,
        }
        self.tables = tables
        integer_columns = {"businesses": ("selected",), "policies": ("stakers", "abstaining"),
                           "devices": ("business", "on", "online")}
        for name, columns in integer_columns.items():
            if len(tables[name]):
                tables[name] = tables[name].astype(dict.fromkeys(columns, np.int64))
        return tables

    def close(self, summary: dict[str, Any], stakers: pd.DataFrame) -> None:
        """Write the tables and run.json (summary and config) into the run folder."""
        assert self.meta is not None
        if not self.tables:
            self.build_tables(stakers)
        if self.run_dir is None:
            return
        for name, df in self.tables.items():
            path = self.run_dir / f"{name}.{self.fmt}"
            if self.fmt == "csv":
                df.to_csv(path, index=False)
            else:
                df.to_parquet(path, index=False)
        run = {
            "run_id": self.meta.run_id,
            "site": self.meta.site,
            "scenario": self.meta.scenario,
            "seed": self.meta.seed,
            "summary": _clean(summary),
            "config": self.meta.config,
        }
        (self.run_dir / "run.json").write_text(
            json.dumps(run, indent=2, default=_json_default, sort_keys=False) + "\n"
        )


def read_table(run_dir: Path, name: str) -> pd.DataFrame:
    """Read one table of a run folder, whichever format it was written in."""
    for fmt, reader in (("parquet", pd.read_parquet), ("csv", pd.read_csv)):
        path = Path(run_dir) / f"{name}.{fmt}"
        if path.exists():
            return reader(path)
    raise FileNotFoundError(f"{run_dir}: no {name}.parquet or {name}.csv")
