"""Bad weather-year files end in one SeriesError naming file:line:column, never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from lastwatt.errors import SeriesError
from lastwatt.readers.weather_year import read_weather_year, shipped_path


def edited_tmy3(tmp_path: Path, edit: Callable[[list[str]], object]) -> Path:
    lines = shipped_path("greensboro").read_text().splitlines()
    edit(lines)
    out = tmp_path / "site.csv"
    out.write_text("\n".join(lines) + "\n")
    return out


def set_field(lines: list[str], line_no: int, column: str, value: str) -> None:
    header = lines[1].split(",")
    cells = lines[line_no - 1].split(",")
    cells[header.index(column)] = value
    lines[line_no - 1] = ",".join(cells)


def test_shipped_weather_years_read_as_8760_hours_with_their_site():
    year = read_weather_year(shipped_path("sand_point"))
    assert len(year.hourly) == 8760
    assert (year.latitude_deg, year.utc_offset_h) == (55.317, -9.0)
    assert year.hourly["ghi"].max() > 500


def test_missing_column_names_file_header_line_and_column(tmp_path):
    path = edited_tmy3(tmp_path, lambda ls: ls.__setitem__(1, ls[1].replace("DNI (W/m^2)",
                                                                             "DNI")))
    with pytest.raises(SeriesError, match=r"site\.csv:2:DNI \(W/m\^2\): missing column"):
        read_weather_year(path)


def test_irradiance_in_kilowatts_is_reported_as_wrong_units(tmp_path):
    path = edited_tmy3(tmp_path, lambda ls: set_field(ls, 15, "GHI (W/m^2)", "1600"))
    with pytest.raises(SeriesError, match=r"site\.csv:15:GHI \(W/m\^2\): value 1600 .*units"):
        read_weather_year(path)


def test_temperature_in_fahrenheit_is_reported_as_wrong_units(tmp_path):
    path = edited_tmy3(tmp_path, lambda ls: set_field(ls, 4000, "Dry-bulb (C)", "98.6"))
    with pytest.raises(SeriesError, match=r"site\.csv:4000:Dry-bulb \(C\).*degC"):
        read_weather_year(path)


def test_missing_hour_is_reported_as_a_gap_at_its_line(tmp_path):
    path = edited_tmy3(tmp_path, lambda ls: ls.pop(99))  # drops file line 100
    with pytest.raises(SeriesError, match=r"site\.csv:100:GHI \(W/m\^2\): .*gap"):
        read_weather_year(path)


def test_non_numeric_value_names_its_line(tmp_path):
    path = edited_tmy3(tmp_path, lambda ls: set_field(ls, 20, "Wspd (m/s)", "calm"))
    with pytest.raises(SeriesError, match=r"site\.csv:20:Wspd \(m/s\): not a number"):
        read_weather_year(path)


def test_missing_file_and_unknown_format_are_series_errors(tmp_path):
    with pytest.raises(SeriesError, match="not found"):
        read_weather_year(tmp_path / "nope.csv")
    other = tmp_path / "year.xlsx"
    other.write_text("x")
    with pytest.raises(SeriesError, match="unknown weather file type"):
        read_weather_year(other)
