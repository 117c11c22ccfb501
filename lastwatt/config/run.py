"""The run configuration: one TOML file, validated by pydantic.

Defaults are the seed's scenario: 320 households holding one token each, 20 businesses,
an active set of I = 5, hourly rounds for one year. Every field is documented in
``docs/config.md``; unknown keys are errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lastwatt.config.base import Section, read_toml, validate
from lastwatt.config.influx import InfluxConfig
from lastwatt.config.learning import EwaConfig, QLearningConfig
from lastwatt.config.mqtt import MqttConfig
from lastwatt.config.site import ContainerConfig, DemandConfig, WeatherConfig
from lastwatt.config.world import AdversariesConfig, WorldConfig, check_world
from lastwatt.errors import ConfigError


class TimeConfig(Section):
    """Round length, metering interval, start date, and the real-time clock."""
    round_s: float = Field(3600.0, gt=0, description="simulated length of one round, seconds")
    metering_interval_s: float = Field(60.0, gt=0, description="device metering period, seconds")
    start: datetime = Field(
        datetime(2026, 1, 1, tzinfo=UTC), description="simulated time of round 0 (UTC)"
    )
    realtime: bool = Field(False, description="run on simpy.rt.RealtimeEnvironment")
    speed: float = Field(1.0, gt=0, description="real time compression: 60 = a 1 h round in 60 s")

    @model_validator(mode="after")
    def _interval_fits_round(self) -> TimeConfig:
        if self.metering_interval_s > self.round_s:
            raise ValueError(
                f"metering_interval_s={self.metering_interval_s} exceeds round_s={self.round_s}; "
                "it must be at most one round"
            )
        return self


PolicyName = Literal[
    "greedy", "epsilon_greedy", "softmax", "herding", "loyal", "random", "ewa", "q_learning"
]
DEFAULT_POLICIES: dict[PolicyName, float] = {"softmax": 0.6, "herding": 0.3, "loyal": 0.1}


class PopulationConfig(Section):
    """The stakers: households, tokens, policy mix and how they form beliefs."""
    households: int = Field(320, ge=1, description="stakers; each household is one staker")
    tokens_per_household: float = Field(1.0, gt=0)
    policies: dict[PolicyName, float] = Field(
        default_factory=lambda: dict(DEFAULT_POLICIES),
        description="population mix: policy -> share (shares sum to 1)",
    )
    abstain_probability: float = Field(0.05, ge=0, le=1)
    abstain_by_policy: dict[PolicyName, float] = Field(
        default_factory=dict,
        description="policy -> abstain probability, replacing abstain_probability for it",
    )
    ewa: EwaConfig = EwaConfig()
    q_learning: QLearningConfig = QLearningConfig()
    rating_noise_sd: float = Field(4.0, ge=0, description="personal noise on the true quality")
    epsilon: float = Field(0.1, ge=0, le=1, description="epsilon_greedy exploration rate")
    temperature: float = Field(1.0, gt=0, description="softmax temperature (quality points)")
    learning_rate: float = Field(0.3, gt=0, le=1, description="belief update weight of news")
    max_businesses_per_staker: int = Field(1, ge=1, description="k: split stake over k businesses")
    consideration_set: int = Field(
        0, ge=0, description="businesses a staker looks at each round; 0 = all"
    )

    @model_validator(mode="after")
    def _mix_sums_to_one(self) -> PopulationConfig:
        total = sum(self.policies.values())
        if not self.policies or abs(total - 1.0) > 1e-6 or min(self.policies.values()) < 0:
            raise ValueError(f"policy shares must be >= 0 and sum to 1, they sum to {total:g}")
        bad = {k: v for k, v in self.abstain_by_policy.items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"abstain_by_policy values must lie in [0, 1], got {bad}")
        learners = [n for n in ("ewa", "q_learning") if self.policies.get(n, 0) > 0]
        if learners and self.max_businesses_per_staker > 1:
            raise ValueError(
                f"{', '.join(learners)} bond one business each: "
                "set max_businesses_per_staker = 1 or drop them from the mix"
            )
        if 0 < self.consideration_set < self.max_businesses_per_staker:
            raise ValueError(
                f"consideration_set={self.consideration_set} is smaller than "
                f"max_businesses_per_staker={self.max_businesses_per_staker}; raise it or use 0"
            )
        return self


class BusinessConfig(Section):
    """The businesses: N, the active set I, hidden qualities, power draw and revenue."""
    count: int = Field(20, ge=1, description="N businesses")
    active_set: int = Field(5, ge=1, description="I: businesses selected each round")
    quality_low: float = Field(-10.0, ge=-10, le=10)
    quality_high: float = Field(10.0, ge=-10, le=10)
    qualities: list[float] | None = Field(None, description="explicit q_i, overrides the draw")
    max_power_w_low: float = Field(4_000.0, gt=0)
    max_power_w_high: float = Field(15_000.0, gt=0)
    performance_sd: float = Field(2.0, ge=0, description="sigma_i of p_i ~ N(q_i, sigma_i)")
    revenue_per_result: float = Field(
        2e-6, ge=0, description="tokens of revenue per unit of result R (Wh x performance)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> BusinessConfig:
        if self.active_set > self.count:
            raise ValueError(f"active_set={self.active_set} exceeds count={self.count}")
        if self.quality_low > self.quality_high:
            raise ValueError("quality_low must not exceed quality_high")
        if self.max_power_w_low > self.max_power_w_high:
            raise ValueError("max_power_w_low must not exceed max_power_w_high")
        if self.qualities is not None:
            if len(self.qualities) != self.count:
                raise ValueError(f"qualities has {len(self.qualities)} values, count={self.count}")
            if any(not -10 <= q <= 10 for q in self.qualities):
                raise ValueError("qualities must lie in [-10, 10]")
        return self


class MechanismConfig(Section):
    """Reward, slashing, inflation and unbonding: the staking rules."""
    reward_share: float = Field(0.2, ge=0, le=1, description="share of revenue paid to stakers")
    slash_fraction: float = Field(0.05, ge=0, le=1, description="stake lost on a wrong bet")
    slash_unselected: float = Field(
        1.0, ge=0, le=1, description="share of slash_fraction that stakers of unselected "
        "businesses lose: true = 1 (the spec), false = 0, or scaled in between",
    )
    inflation_rate: float = Field(0.0, ge=0, le=1, description="per-round inflation; 0 = off")
    target_bonding_rate: float = Field(0.5, ge=0, le=1)
    inflation_change: float = Field(
        0.0, ge=0, le=1, description="per-round step of the inflation rate toward the target"
    )
    unbonding_rounds: int = Field(0, ge=0, description="rounds a switched stake sits idle")
    slash_unavailable: bool = Field(
        False, description="also slash stakers of a business whose devices are offline"
    )
    stake_weighting: Literal["linear", "quadratic", "conviction"] = Field(
        "linear", description="select the active set by sum of stake, of sqrt(stake) per "
        "staker (quadratic: whales weigh less), or of stake-time (conviction: a = 0.5 ** "
        "(1 / half-life), lost on a move); allocation stays pro rata to stake",
    )
    conviction_half_life_rounds: float = Field(
        24.0, gt=0, description="rounds with a pool after which accrued conviction halves"
    )
    reward_mode: Literal["minted", "revenue"] = Field(
        "minted", description="rewards minted from R (revenue_per_result), or a share of what "
        "businesses pay for their metered energy (price_per_kwh)",
    )
    price_per_kwh: float = Field(
        0.016, ge=0, description="tokens a business pays per metered kWh (revenue mode; the "
        "base of bribes in both modes)",
    )
    surplus: Literal["selected", "positive_expected", "reserve"] = Field(
        "selected",
        description="where energy the caps leave goes: re-shared over all selected (the "
        "spec), only over selected with positive published mean output, or to the reserve",
    )
    oracle_respects_active_set: bool = Field(
        False, description="limit the oracle to I businesses (default: unlimited upper bound)"
    )

    @field_validator("slash_unselected", mode="before")
    @classmethod
    def _slash_unselected_from_bool(cls, value: Any) -> Any:
        return float(value) if isinstance(value, bool) else value  # older configs: on/off


class DeviceEntry(Section):
    """One device of the map: its id, the business it supplies, its dialect and vendor topic."""
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    business: int = Field(ge=0)
    dialect: Literal["native", "tasmota", "shelly", "modbus"] = "native"
    topic: str | None = Field(None, description="vendor topic / prefix; defaults to the id")


class DevicesConfig(Section):
    """The devices: an explicit map or auto devices per business, load profile and noise."""
    per_business: int = Field(1, ge=1, description="auto devices per business (map empty)")
    profile: Literal["constant", "ramp", "cycle"] = "constant"
    noise_sd: float = Field(0.02, ge=0, le=1, description="metering noise, relative")
    map: list[DeviceEntry] = Field(default_factory=list, description="explicit device mapping")
    plausibility_margin: float = Field(
        1.5, ge=1, le=100, description="a reading may book at most max power x elapsed x this"
    )
    max_clock_skew_s: float = Field(
        60.0, gt=0, le=86_400, description="readings further ahead of the controller's clock "
        "(or behind the open round) are rejected"
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> DevicesConfig:
        seen: set[str] = set()
        for i, d in enumerate(self.map):
            if d.id in seen:
                raise ValueError(f"map[{i}].id={d.id!r} is a duplicate; device ids must be unique")
            seen.add(d.id)
        return self


class OutputConfig(Section):
    """Run folder location and table format."""
    format: Literal["parquet", "csv"] = "parquet"
    dir: Path = Path("runs")
    checkpoint_rounds: int = Field(
        168, ge=1, le=1_000_000, description="rounds between checkpoints (journal flush, "
        "resumable state, run.json)"
    )
    meter_readings: bool = Field(
        False, description="headless: per-minute mock devices (a reading every metering "
        "interval) instead of devices integrated per round"
    )


class Config(Section):
    """The whole run configuration; defaults are the seed's scenario."""
    seed: int = Field(42, ge=0, description="seeds every random draw of the run")
    rounds: int = Field(8760, ge=1, description="rounds to run (8760 hourly rounds = a year)")
    site: str = Field("village", pattern=r"^[A-Za-z0-9_-]{1,64}$",
                      description="site name: MQTT topic level and InfluxDB tag")
    scenario: str = Field("default", description="scenario name: run id prefix and tag")
    time: TimeConfig = TimeConfig()
    container: ContainerConfig = ContainerConfig()
    weather: WeatherConfig = WeatherConfig()
    demand: DemandConfig = DemandConfig()
    population: PopulationConfig = PopulationConfig()
    businesses: BusinessConfig = BusinessConfig()
    mechanism: MechanismConfig = MechanismConfig()
    devices: DevicesConfig = DevicesConfig()
    world: WorldConfig = WorldConfig()
    adversaries: AdversariesConfig = AdversariesConfig()
    output: OutputConfig = OutputConfig()
    mqtt: MqttConfig = MqttConfig()
    influx: InfluxConfig = InfluxConfig()

    @model_validator(mode="after")
    def _device_map_in_range(self) -> Config:
        for i, d in enumerate(self.devices.map):
            if d.business >= self.businesses.count:
                raise ValueError(
                    f"devices.map[{i}].business={d.business} but there are only "
                    f"{self.businesses.count} businesses (0..{self.businesses.count - 1})"
                )
        check_world(self.world, self.adversaries, self.businesses.count, self.rounds)
        return self

    def with_overrides(self, **dotted: Any) -> Config:
        """A copy with dotted overrides applied and validated.

        Example: ``cfg.with_overrides(**{"businesses.active_set": 3})``.
        """
        data = self.model_dump(mode="python")
        for key, value in dotted.items():
            node = data
            *parents, leaf = key.split(".")
            for p in parents:
                if not isinstance(node.get(p), dict):
                    raise ConfigError(key, "no such config field", "see docs/config.md")
                node = node[p]
            if leaf not in node:
                raise ConfigError(key, "no such config field", "see docs/config.md")
            node[leaf] = value
        return validate_config(data, source="override")


def validate_config(data: dict[str, Any], source: str = "config") -> Config:
    """Validate a config dict; ``source`` names it in the one-line error."""
    return validate(Config, data, source)


def load_config(path: str | Path | None) -> Config:
    """Read and validate a TOML config; ``None`` gives the default scenario.

    Relative paths inside the file (weather.path) are resolved against the file's folder.
    """
    if path is None:
        return Config()
    path = Path(path)
    data = read_toml(path)
    weather = data.get("weather")
    if isinstance(weather, dict) and isinstance(weather.get("path"), str):
        p = Path(weather["path"])
        weather["path"] = str(p if p.is_absolute() else (path.parent / p))
    return validate_config(data, source=str(path))
