"""The configuration package: every TOML section as a frozen pydantic model, one module per
concern, and the helpers that turn config into something usable (secrets, the broker address).

- ``base``: the section base class, reading and validating a TOML file (one-line errors)
- ``run``: the run config :class:`Config` (time, population, businesses, mechanism, devices)
- ``site``: the container, weather and demand sections
- ``learning``: payoff-driven stakers (``[population.ewa]``, ``[population.q_learning]``)
- ``world``: a world that moves and adversaries (``[world]``, ``[adversaries]``)
- ``mqtt``: the ``[mqtt]`` section, the broker URL and credentials
- ``influx``: the ``[influx]`` section
- ``bridge``: the firmware bridge's own TOML file
- ``secret``: passwords and tokens from a file or an environment variable

``docs/config.md`` is generated from these models by ``scripts/gen_config_docs.py``.
"""

from lastwatt.config.influx import InfluxConfig
from lastwatt.config.mqtt import MqttConfig
from lastwatt.config.run import (
    BusinessConfig,
    Config,
    DeviceEntry,
    DevicesConfig,
    MechanismConfig,
    OutputConfig,
    PolicyName,
    PopulationConfig,
    TimeConfig,
    load_config,
    validate_config,
)
from lastwatt.config.site import ContainerConfig, DemandConfig, WeatherConfig

__all__ = [
    "BusinessConfig", "Config", "ContainerConfig", "DemandConfig", "DeviceEntry",
    "DevicesConfig", "InfluxConfig", "MechanismConfig", "MqttConfig", "OutputConfig",
    "PolicyName", "PopulationConfig", "TimeConfig", "WeatherConfig", "load_config",
    "validate_config",
]
