"""Weather source ``csv``: a recorded PV series, aligned to the run by its timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from lastwatt.config import Config
from lastwatt.errors import SeriesError
from lastwatt.readers.pv_csv import read_pv_csv
from lastwatt.weather.timebase import integrate


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def production(cfg: Config) -> np.ndarray:
    """Energy per round from the recorded PV series (``weather.source = "csv"``)."""
    w = cfg.weather
    assert w.path is not None  # the config requires it for source="csv"
    series = read_pv_csv(w.path, w.time_column, w.column, w.unit)
    start_s = cfg.time.start.timestamp()
    end_s = start_s + cfg.rounds * cfg.time.round_s
    if start_s < series.start_epoch_s:
        raise SeriesError(f"{w.path}:2:{w.time_column}",
                          f"series starts at {_iso(series.start_epoch_s)}, after time.start "
                          f"{_iso(start_s)}", f"set time.start = {_iso(series.start_epoch_s)}")
    if end_s > series.end_epoch_s + 1e-6:
        fit = int((series.end_epoch_s - start_s) // cfg.time.round_s)
        raise SeriesError(f"{w.path}:{series.energy_wh.size + 1}:{w.time_column}",
                          f"too few rows: the series ends at {_iso(series.end_epoch_s)} but the "
                          f"run needs data until {_iso(end_s)}",
                          f"add rows or set rounds <= {fit}")
    starts_s = start_s - series.start_epoch_s + np.arange(cfg.rounds) * cfg.time.round_s
    return integrate(series.energy_wh, series.step_s, starts_s, cfg.time.round_s)
