"""AC energy of the container for every hour of a weather year, through pvlib's PVWatts chain.

The steps are those of ``pvlib.modelchain.ModelChain.with_pvwatts`` (solar position at the
hour's midpoint, Perez transposition onto the panel plane, physical incidence-angle loss,
SAPM cell temperature, PVWatts DC, flat system losses, PVWatts inverter), written out as
functions so that each step is visible and the result can be cached per file and container.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from lastwatt.config import Config
from lastwatt.readers.weather_year import WeatherYear, read_weather_year, weather_year_path

TEMPERATURE_MODEL = ("sapm", "open_rack_glass_polymer")


@dataclass(frozen=True, slots=True)
class PvYear:
    """A weather year run through the PV system: hourly AC energy of the container."""
    weather: WeatherYear
    tilt_deg: float
    azimuth_deg: float
    peak_power_w: float
    ac_wh: np.ndarray  # (365, 24) AC energy per hour of the year, local standard time

    @property
    def annual_yield_kwh(self) -> float:
        """AC energy of the whole year, kWh."""
        return float(self.ac_wh.sum()) / 1000.0

    @property
    def specific_yield_kwh_per_kwp(self) -> float:
        """Annual yield per kWp of peak power."""
        return self.annual_yield_kwh / (self.peak_power_w / 1000.0)


def pv_key(cfg: Config) -> tuple:
    """What the chain depends on: the cache key of :func:`pv_year`."""
    c = cfg.container
    path = weather_year_path(cfg.weather.path, cfg.weather.station).resolve()
    return (path, c.peak_power_w, c.tilt_deg, c.azimuth_deg, c.system_losses_pct,
            c.inverter_efficiency, c.temp_coeff_per_c)


def pv_year(cfg: Config) -> PvYear:
    """The config's weather year through its PV system (cached by its key)."""
    return pv_year_for(*pv_key(cfg))


@lru_cache(maxsize=16)
def pv_year_for(
    path: Path,
    peak_power_w: float,
    tilt_deg: float | None,
    azimuth_deg: float | None,
    system_losses_pct: float,
    inverter_efficiency: float,
    temp_coeff_per_c: float,
) -> PvYear:
    """A weather year through pvlib's PVWatts chain for this system (cached)."""
    from pvlib import atmosphere, iam, inverter, irradiance, pvsystem, solarposition, temperature

    wy = read_weather_year(path)
    w = wy.hourly
    if tilt_deg is None:
        tilt_deg = abs(wy.latitude_deg)
    if azimuth_deg is None:  # face the equator
        azimuth_deg = 180.0 if wy.latitude_deg >= 0 else 0.0
    sun = solarposition.get_solarposition(
        w.index, wy.latitude_deg, wy.longitude_deg, altitude=wy.altitude_m,
        pressure=atmosphere.alt2pres(wy.altitude_m), temperature=w["temp_air"],
    )
    zenith, sun_azimuth = sun["apparent_zenith"], sun["azimuth"]
    poa = irradiance.get_total_irradiance(
        tilt_deg, azimuth_deg, zenith, sun_azimuth, w["dni"], w["ghi"], w["dhi"],
        dni_extra=irradiance.get_extra_radiation(w.index),
        airmass=atmosphere.get_relative_airmass(zenith),
        model="perez",
    )
    aoi = irradiance.aoi(tilt_deg, azimuth_deg, zenith, sun_azimuth)
    effective_w_m2 = poa["poa_direct"] * iam.physical(aoi) + poa["poa_diffuse"]
    params = temperature.TEMPERATURE_MODEL_PARAMETERS[TEMPERATURE_MODEL[0]][TEMPERATURE_MODEL[1]]
    cell_c = temperature.sapm_cell(poa["poa_global"], w["temp_air"], w["wind_speed"], **params)
    dc_w = pvsystem.pvwatts_dc(effective_w_m2, cell_c, peak_power_w, temp_coeff_per_c)
    dc_w = dc_w * (1.0 - system_losses_pct / 100.0)
    ac_w = inverter.pvwatts(dc_w, peak_power_w, eta_inv_nom=inverter_efficiency)
    # hourly mean power in W is the hour's energy in Wh
    ac_wh = np.nan_to_num(np.asarray(ac_w, dtype=float), nan=0.0).clip(min=0.0)
    return PvYear(wy, float(tilt_deg), float(azimuth_deg), peak_power_w, ac_wh.reshape(365, 24))
