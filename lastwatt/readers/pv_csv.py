"""A recorded PV series in CSV: a timestamp column and a power or energy column.

Each row's value holds for the interval from its timestamp to the next one (the last row for
one more step). Timestamps are ISO 8601; without an offset they are UTC. Every problem is a
:class:`SeriesError` naming ``file:line:column`` (line 1 is the header) and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lastwatt.errors import SeriesError

# factor from the column's unit to energy in Wh for a step of step_s seconds
_TO_WH = {
    "w": lambda step_s: step_s / 3600.0,
    "kw": lambda step_s: 1000.0 * step_s / 3600.0,
    "wh": lambda step_s: 1.0,
    "kwh": lambda step_s: 1000.0,
}


@dataclass(frozen=True, slots=True)
class PvSeries:
    """A recorded PV series as energy per regular interval, from its first timestamp."""
    path: Path
    start_epoch_s: float  # UTC of the first row
    step_s: float
    energy_wh: np.ndarray  # (n,) energy of each row's interval

    @property
    def end_epoch_s(self) -> float:
        """UTC epoch seconds where the series ends."""
        return self.start_epoch_s + self.energy_wh.size * self.step_s


def read_pv_csv(path: Path, time_column: str, value_column: str, unit: str) -> PvSeries:
    """Read a PV series CSV; a bad file, column, unit or time step is a one-line SeriesError."""
    where = str(path)
    if not path.is_file():
        raise SeriesError(where, "CSV file not found", "check weather.path")
    try:
        table = pd.read_csv(path, dtype=str, skip_blank_lines=False, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise SeriesError(where, f"not a readable CSV file: {str(err).splitlines()[0]}",
                          "save it as comma-separated UTF-8 text with a header line") from None
    for col, key in ((time_column, "time_column"), (value_column, "column")):
        if col not in table.columns:
            raise SeriesError(f"{where}:1:{col}", "missing column",
                              f"columns are {', '.join(table.columns)}; set weather.{key}")
    if len(table) < 2:
        raise SeriesError(f"{where}:{len(table) + 2}", f"{len(table)} data rows",
                          "a series needs at least 2 rows to know its step")
    stamps = _timestamps(where, table[time_column], time_column)
    values = _values(where, table[value_column], value_column)
    epoch_s = (stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    epoch_s = np.asarray(epoch_s, dtype=float)
    steps = np.diff(epoch_s)
    step_s = float(steps[0])
    if step_s <= 0:
        raise SeriesError(f"{where}:3:{time_column}", "timestamps must increase",
                          "sort the rows by time")
    wrong = np.flatnonzero(np.abs(steps - step_s) > 1e-3)
    if wrong.size:
        i = int(wrong[0]) + 1
        raise SeriesError(f"{where}:{i + 2}:{time_column}",
                          f"{steps[i - 1]:g} s after the previous row, expected {step_s:g} s "
                          "(gap or irregular timestamps)",
                          "resample the series to a regular step and fill gaps")
    return PvSeries(path, float(epoch_s[0]), step_s, values * _TO_WH[unit](step_s))


def _timestamps(where: str, raw: pd.Series, col: str) -> pd.DatetimeIndex:
    stamps = pd.to_datetime(raw.str.strip(), format="ISO8601", utc=True, errors="coerce")
    bad = np.flatnonzero(stamps.isna())
    if bad.size:
        i = int(bad[0])
        raise SeriesError(f"{where}:{i + 2}:{col}", f"not a timestamp: {raw.iloc[i]!r}",
                          "use ISO 8601, e.g. 2026-01-01T00:00:00Z")
    return pd.DatetimeIndex(stamps)


def _values(where: str, raw: pd.Series, col: str) -> np.ndarray:
    values = pd.to_numeric(raw.str.strip(), errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        what = "missing value" if not raw.iloc[i].strip() else f"not a number: {raw.iloc[i]!r}"
        raise SeriesError(f"{where}:{i + 2}:{col}", what, "fill in every row with a number")
    negative = np.flatnonzero(values < 0)
    if negative.size:
        i = int(negative[0])
        raise SeriesError(f"{where}:{i + 2}:{col}", f"negative value {values[i]:g}",
                          "PV production is >= 0; clip night-time inverter draw to 0")
    return values
