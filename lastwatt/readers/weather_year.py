"""Weather-year files (TMY3 ``.csv``, TMY2 ``.tm2``: the formats pvlib ships) read by
pvlib.iotools and checked: every problem is a :class:`SeriesError` naming
``file:line:column`` and the fix.

The result is one 365-day year of hourly rows in the file's local standard time: row ``i``
covers hour ``i`` of the year (``[i h, i+1 h)`` after local midnight of Jan 1), whatever
year each month came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from lastwatt.errors import SeriesError

HOURS_PER_YEAR = 8760
SHIPPED = {"greensboro": "723170TYA.CSV", "sand_point": "703165TY.csv", "miami": "12839.tm2"}
FIELDS = ("ghi", "dni", "dhi", "temp_air", "wind_speed")
# plausible physical ranges; values outside mean wrong units (kW/m2, Fahrenheit, tenths)
RANGES = {
    "ghi": (0.0, 1500.0, "W/m^2"),
    "dni": (0.0, 1500.0, "W/m^2"),
    "dhi": (0.0, 1000.0, "W/m^2"),
    "temp_air": (-90.0, 65.0, "degC"),
    "wind_speed": (0.0, 90.0, "m/s"),
}
# per format: file column of each field, header lines before the first data row, and
# whether timestamps label the end of their hour
_TMY3 = {"ghi": "GHI (W/m^2)", "dni": "DNI (W/m^2)", "dhi": "DHI (W/m^2)",
         "temp_air": "Dry-bulb (C)", "wind_speed": "Wspd (m/s)"}
_TMY2 = {"ghi": "GHI", "dni": "DNI", "dhi": "DHI", "temp_air": "DryBulb", "wind_speed": "Wspd"}
_MONTH_START_DAY = np.cumsum([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30])


@dataclass(frozen=True, slots=True)
class WeatherYear:
    """A typical meteorological year: place, time zone and hourly irradiance and weather."""
    path: Path
    name: str
    latitude_deg: float
    longitude_deg: float
    altitude_m: float
    utc_offset_h: float
    hourly: pd.DataFrame  # FIELDS columns, 8760 rows, index = hour midpoints (fixed year 2001)


def shipped_path(station: str) -> Path:
    """The path of a weather-year file shipped with pvlib, by station name."""
    import pvlib  # deferred: a 0.7 s import only the tmy/fitted sources need

    return Path(pvlib.__file__).parent / "data" / SHIPPED[station]


def weather_year_path(path: Path | None, station: str) -> Path:
    """The user's weather-year file if given, else the shipped station's."""
    return shipped_path(station) if path is None else Path(path)


@lru_cache(maxsize=8)
def read_weather_year(path: Path) -> WeatherYear:
    """Read and check a weather-year file; cached per path (files are not expected to change
    during a process)."""
    if not path.is_file():
        raise SeriesError(
            str(path), "weather file not found", "give an existing TMY3 .csv or TMY2 .tm2 file"
        )
    suffix = path.suffix.lower()
    if suffix == ".csv":
        _check_tmy3_header(path)
        data, meta, columns, first_line, hour_ending = *_read(path, "tmy3"), _TMY3, 3, True
    elif suffix == ".tm2":
        data, meta, columns, first_line, hour_ending = *_read(path, "tmy2"), _TMY2, 2, False
    else:
        raise SeriesError(str(path), f"unknown weather file type {suffix!r}",
                          "use a TMY3 .csv or TMY2 .tm2 file")
    hourly = _checked_fields(path, data, columns, first_line)
    _check_hourly_year(path, data.index, first_line, columns["ghi"], hour_ending)
    if suffix == ".tm2":  # TMY2 stores tenths of degC and of m/s
        hourly["temp_air"] /= 10.0
        hourly["wind_speed"] /= 10.0
    tz_h = float(meta["TZ"])
    tz = timezone(timedelta(hours=tz_h))
    hourly.index = pd.date_range("2001-01-01 00:30", periods=HOURS_PER_YEAR, freq="h", tz=tz)
    name = str(meta.get("Name") or meta.get("City") or path.stem).strip('"')
    return WeatherYear(path, name, float(meta["latitude"]), float(meta["longitude"]),
                       float(meta.get("altitude") or 0.0), tz_h, hourly)


def _read(path: Path, kind: str) -> tuple[pd.DataFrame, dict]:
    from pvlib import iotools

    try:
        if kind == "tmy3":
            return iotools.read_tmy3(str(path), map_variables=False)
        return iotools.read_tmy2(str(path))
    except Exception as err:  # pvlib raises many kinds on malformed files
        raise SeriesError(str(path), f"not a readable {kind.upper()} file: {err}".split("\n")[0],
                          f"check it against the {kind.upper()} format") from None


def _check_tmy3_header(path: Path) -> None:
    with path.open(encoding="utf-8", errors="replace") as f:
        meta_line, header_line = f.readline(), f.readline()
    meta = meta_line.strip().split(",")
    if len(meta) < 7:
        raise SeriesError(f"{path}:1", "TMY3 site line needs 7 fields (USAF,name,state,TZ,"
                          "latitude,longitude,altitude)", "restore the first line of the file")
    header = [c.strip() for c in header_line.strip().split(",")]
    for col in _TMY3.values():
        if col not in header:
            raise SeriesError(f"{path}:2:{col}", "missing column",
                              f"a TMY3 file needs {', '.join(_TMY3.values())}")


def _checked_fields(path: Path, data: pd.DataFrame, columns: dict, first_line: int) -> pd.DataFrame:
    out = {}
    for field, col in columns.items():
        if col not in data.columns:
            raise SeriesError(f"{path}:{first_line - 1}:{col}", "missing column",
                              f"add the {col} column")
        raw = data[col]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            i = int(bad[0])
            what = "missing value (gap)" if pd.isna(raw.iloc[i]) else f"not a number: {raw.iloc[i]}"
            raise SeriesError(f"{path}:{first_line + i}:{col}", what, "fill in every hour")
        lo, hi, unit = RANGES[field]
        scale = 10.0 if columns is _TMY2 and field in ("temp_air", "wind_speed") else 1.0
        out_of = np.flatnonzero((values / scale < lo) | (values / scale > hi))
        if out_of.size:
            i = int(out_of[0])
            raise SeriesError(f"{path}:{first_line + i}:{col}",
                              f"value {values[i]:g} outside [{lo:g}, {hi:g}] {unit}",
                              f"wrong units? {col} must be in {unit}")
        out[field] = values
    return pd.DataFrame(out)


def _check_hourly_year(
    path: Path, index: pd.DatetimeIndex, first_line: int, column: str, hour_ending: bool
) -> None:
    """Row i must be hour i of a 365-day year (months may come from different years)."""
    month = np.asarray(index.month)
    day = np.asarray(index.day)
    # hour-ending 00:00 closes the previous day's last hour; the modulo wraps Jan 1 24:00
    hour = np.asarray(index.hour) - (1 if hour_ending else 0)
    position = ((_MONTH_START_DAY[month - 1] + day - 1) * 24 + hour) % HOURS_PER_YEAR
    position = np.where((month == 2) & (day == 29), -1, position)  # no leap day in a TMY
    n = min(len(position), HOURS_PER_YEAR)
    wrong = np.flatnonzero(position[:n] != np.arange(n))
    if wrong.size:
        i = int(wrong[0])
        raise SeriesError(f"{path}:{first_line + i}:{column}",
                          f"timestamp {index[i]} out of sequence (gap or irregular hours)",
                          "a weather year has 8760 consecutive hourly rows")
    if len(position) != HOURS_PER_YEAR:
        raise SeriesError(f"{path}:{first_line + n}", f"{len(position)} hourly rows",
                          f"a weather year has exactly {HOURS_PER_YEAR} rows")
