"""The ``[container]``, ``[weather]`` and ``[demand]`` config sections (see docs/weather.md and
docs/demand.md); :class:`lastwatt.config.run.Config` composes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from lastwatt.config.base import Section

# BDEW standard load profiles shipped by demandlib (H0 households, G0-G6 trade, L0-L2 farms);
# "flat" is a constant draw.
ProfileName = Literal[
    "flat", "H0", "G0", "G1", "G2", "G3", "G4", "G5", "G6", "L0", "L1", "L2"
]
# Weather years shipped in pvlib/data, by place.
Station = Literal["greensboro", "sand_point", "miami"]


class ContainerConfig(Section):
    """The solar container: peak power, location and the PV system's losses."""
    peak_power_w: float = Field(
        120_000.0, gt=0, description="PV peak power (DC nameplate, kWp x 1000) of the container"
    )
    latitude_deg: float = Field(0.35, ge=-90, le=90, description="site latitude (markov)")
    longitude_deg: float = Field(32.58, ge=-180, le=180, description="site longitude (markov)")
    utc_offset_h: float | None = Field(
        None, ge=-14, le=14,
        description="local standard time of the village; None = longitude/15 rounded "
        "(tmy/fitted use the weather file's time zone)",
    )
    tilt_deg: float | None = Field(
        None, ge=0, le=90, description="panel tilt; None = |latitude| of the weather site"
    )
    azimuth_deg: float | None = Field(
        None, ge=0, lt=360, description="panel azimuth (180 = south); None = towards the equator"
    )
    system_losses_pct: float = Field(
        14.0, ge=0, lt=100, description="PVWatts DC losses: soiling, wiring, mismatch, ..."
    )
    inverter_efficiency: float = Field(0.96, gt=0, le=1, description="PVWatts nominal inverter")
    temp_coeff_per_c: float = Field(-0.004, ge=-0.02, le=0, description="DC power per kelvin")


class WeatherConfig(Section):
    """The weather source (markov, csv, tmy, fitted) and its parameters."""
    source: Literal["markov", "csv", "tmy", "fitted"] = "markov"
    # markov: daily sky states clear / cloudy / overcast
    clearness: tuple[float, float, float] = (1.0, 0.55, 0.2)
    transition: tuple[
        tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]
    ] = ((0.85, 0.12, 0.03), (0.25, 0.6, 0.15), (0.1, 0.3, 0.6))
    noise_sd: float = Field(0.08, ge=0, le=1, description="multiplicative noise on production")
    seasonal_amplitude: float = Field(0.1, ge=0, le=1)
    # csv: a recorded PV series; tmy/fitted: a user's weather-year file (else `station`)
    path: Path | None = None
    time_column: str = "time"
    column: str = "power_w"
    unit: Literal["w", "kw", "wh", "kwh"] = "w"
    # tmy/fitted: a weather year shipped with pvlib, used when `path` is not given
    station: Station = "greensboro"
    # fitted: Markov chain over daily energy states, days bootstrapped from a seasonal window
    fit_states: int = Field(3, ge=2, le=10, description="sky states of the fitted chain")
    fit_window_days: int = Field(20, ge=3, le=182, description="seasonal window, +/- days")

    @model_validator(mode="after")
    def _consistent(self) -> WeatherConfig:
        if self.source == "csv" and self.path is None:
            raise ValueError("source='csv' needs weather.path, the CSV file of the PV series")
        for i, row in enumerate(self.transition):
            if abs(sum(row) - 1.0) > 1e-6 or min(row) < 0:
                raise ValueError(f"transition row {i} must be probabilities summing to 1: {row}")
        return self


class DemandConfig(Section):
    """Community, household and business loads, and the reserve."""
    community_w: float = Field(6_000.0, ge=0, description="constant base load: hospital, pump")
    community_profile: ProfileName = Field("flat", description="shape of the extra community load")
    community_profile_kwh_per_year: float = Field(
        0.0, ge=0, description="annual energy of the community profile on top of community_w"
    )
    household_w: float = Field(60.0, ge=0, description="mean demand of one household")
    household_kwh_per_year: float | None = Field(
        None, ge=0, description="annual demand of one household; None = household_w x 8760 h"
    )
    household_profile: Literal["flat", "H0"] = Field(
        "flat", description="H0 = BDEW household profile with its dynamisation"
    )
    household_noise_sd: float = Field(
        0.0, ge=0, le=1, description="multiplicative noise on household demand per round"
    )
    business_profiles: list[ProfileName] = Field(
        default_factory=lambda: list[ProfileName](["flat"]),
        min_length=1,
        description="load shape per business, repeated over the businesses in order",
    )
    reserve_fraction: float = Field(0.1, ge=0, le=1, description="share of production held back")
    reserve_w: float = Field(0.0, ge=0, description="fixed reserve on top of the fraction")
