"""The csv source: a recorded PV series, with one-line errors for every bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lastwatt.config import Config
from lastwatt.errors import SeriesError
from lastwatt.rng import streams
from lastwatt.weather import production_series


def write_series(tmp_path: Path, rows: list[str], header: str = "time,power_w") -> Path:
    path = tmp_path / "pv.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def hourly_rows(values: list[str], day: str = "2026-01-01") -> list[str]:
    return [f"{day}T{h:02d}:00:00Z,{v}" for h, v in enumerate(values)]


def csv_config(path: Path, rounds: int = 4, **weather: object) -> Config:
    return Config.model_validate(
        {"rounds": rounds, "weather": {"source": "csv", "path": str(path), **weather}}
    )


def test_power_series_integrates_to_energy_per_round_for_any_round_length(tmp_path):
    path = write_series(tmp_path, hourly_rows(["0", "1000", "2000", "3000"]))
    hourly = production_series(csv_config(path), streams(0).weather)
    np.testing.assert_allclose(hourly, [0, 1000, 2000, 3000])
    half = csv_config(path, rounds=8).with_overrides(**{"time.round_s": 1800.0})
    np.testing.assert_allclose(production_series(half, streams(0).weather),
                               [0, 0, 500, 500, 1000, 1000, 1500, 1500])


def test_kilowatt_hour_unit_is_converted_to_wh(tmp_path):
    path = write_series(tmp_path, hourly_rows(["0.5", "1", "0", "2"]), header="time,e")
    cfg = csv_config(path, column="e", unit="kwh")
    np.testing.assert_allclose(production_series(cfg, streams(0).weather), [500, 1000, 0, 2000])


def test_timestamps_with_offset_are_aligned_in_utc(tmp_path):
    rows = [f"2026-01-01T{h + 1:02d}:00:00+01:00,{v}" for h, v in enumerate([1, 2, 3, 4])]
    path = write_series(tmp_path, rows)
    np.testing.assert_allclose(production_series(csv_config(path), streams(0).weather),
                               [1, 2, 3, 4])


@pytest.mark.parametrize(
    ("rows", "header", "match"),
    [
        (hourly_rows(["1", "2", "3", "4"]), "time,watts", r"pv\.csv:1:power_w: missing column"),
        (hourly_rows(["1", "two", "3", "4"]), "time,power_w", r"pv\.csv:3:power_w: not a number"),
        (hourly_rows(["1", "2", "-5", "4"]), "time,power_w", r"pv\.csv:4:power_w: negative"),
        (hourly_rows(["1", "", "3", "4"]), "time,power_w", r"pv\.csv:3:power_w: missing value"),
        (["2026-01-01T00:00:00Z,1", "2026-01-01T01:00:00Z,1", "2026-01-01T03:00:00Z,1",
          "2026-01-01T04:00:00Z,1"], "time,power_w", r"pv\.csv:4:time: .*gap or irregular"),
        (["yesterday,1", "2026-01-01T01:00:00Z,1"], "time,power_w", r"pv\.csv:2:time: not a"),
    ],
)
def test_bad_csv_series_names_file_line_and_column(tmp_path, rows, header, match):
    path = write_series(tmp_path, rows, header=header)
    with pytest.raises(SeriesError, match=match):
        production_series(csv_config(path), streams(0).weather)


def test_series_too_short_for_the_run_says_how_many_rounds_fit(tmp_path):
    path = write_series(tmp_path, hourly_rows(["1", "2", "3", "4"]))
    with pytest.raises(SeriesError, match=r"pv\.csv:5:time: too few rows.*rounds <= 4"):
        production_series(csv_config(path, rounds=5), streams(0).weather)


def test_series_starting_after_the_run_start_names_the_fix(tmp_path):
    path = write_series(tmp_path, hourly_rows(["1", "2", "3", "4"], day="2026-02-01"))
    with pytest.raises(SeriesError, match=r"set time\.start = 2026-02-01T00:00:00Z"):
        production_series(csv_config(path), streams(0).weather)


def test_missing_file_is_a_series_error(tmp_path):
    with pytest.raises(SeriesError, match="CSV file not found"):
        production_series(csv_config(tmp_path / "none.csv"), streams(0).weather)
