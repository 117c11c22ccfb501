"""Figure for docs/weather.md: the fitted weather's daily energy against the real year's.

    python -m lastwatt.weather.fit_figure [docs/weather_fit.png]

For each shipped weather year (Greensboro, Sand Point) it runs the ``fitted`` source for 50
seeds and draws the daily-energy distribution and the autocorrelation of daily energy, real
against fitted, and prints the figures the acceptance test checks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from lastwatt.config import Config
from lastwatt.rng import streams
from lastwatt.weather import production_series
from lastwatt.weather.pv_chain import pv_year

SEEDS = 50
STATIONS = {"greensboro": "2026-01-01T05:00:00Z", "sand_point": "2026-01-01T09:00:00Z"}


def autocorrelation(x: np.ndarray, lags: int) -> np.ndarray:
    """Autocorrelation of ``x`` at lags 1..``lags``."""
    return np.array([np.corrcoef(x[:-k], x[k:])[0, 1] for k in range(1, lags + 1)])


def daily_energy_kwh(station: str, start: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """Daily energy of the real weather year and of fitted draws (seeds 0..), in kWh."""
    cfg = Config.model_validate({"rounds": 8760, "time": {"start": start},
                                 "weather": {"source": "fitted", "station": station}})
    real = pv_year(cfg).ac_wh.sum(axis=1) / 1000.0
    runs = [production_series(cfg, streams(s).weather).reshape(365, 24).sum(axis=1) / 1000.0
            for s in range(SEEDS)]
    return real, runs


def main(out: Path) -> None:
    """Draw docs/weather_fit.png: the fitted chain against the year it was fitted to."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(STATIONS), 2, figsize=(10, 7), constrained_layout=True)
    for row, (station, start) in zip(axes, STATIONS.items(), strict=True):
        real, runs = daily_energy_kwh(station, start)
        pooled = np.concatenate(runs)
        bins = np.linspace(0, max(real.max(), pooled.max()), 30)
        row[0].hist(real, bins=bins, density=True, alpha=0.6, label="real year")
        row[0].hist(pooled, bins=bins, density=True, histtype="step", lw=2,
                    label=f"fitted, {SEEDS} seeds")
        row[0].set(title=f"{station}: daily AC energy, 120 kWp", xlabel="kWh/day",
                   ylabel="density")
        row[0].legend()
        lags = np.arange(1, 11)
        fitted_acf = np.mean([autocorrelation(r, 10) for r in runs], axis=0)
        row[1].plot(lags, autocorrelation(real, 10), "o-", label="real year")
        row[1].plot(lags, fitted_acf, "s--", label="fitted, mean of seeds")
        row[1].set(title=f"{station}: autocorrelation of daily energy", xlabel="lag (days)",
                   ylim=(0, 1))
        row[1].legend()
        print(f"{station}: mean {real.mean():.1f} vs {pooled.mean():.1f} kWh/day, "
              f"std {real.std():.1f} vs {pooled.std():.1f}, "
              f"lag-1 {autocorrelation(real, 1)[0]:.3f} vs {fitted_acf[0]:.3f}")
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/weather_fit.png"))
