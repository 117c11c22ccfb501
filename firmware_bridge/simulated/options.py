"""The simulated fleet's settings and device list, validated like every LastWatt config:
unknown keys and bad values are one-line errors naming the field (``ConfigError``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass

from firmware_bridge.dialects.tasmota import DEFAULT_FULL_TOPIC
from lastwatt.config.base import Section
from lastwatt.config.bridge import FullTopic
from lastwatt.messages import DeviceId

PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


@dataclass(frozen=True, slots=True, config=ConfigDict(extra="forbid"))
class FleetDevice:
    """One simulated device; ``dialect`` names its firmware in ``fleet.FIRMWARE``."""

    id: DeviceId
    dialect: str = "native"
    topic: str | None = None  # vendor topic / Shelly id; default: the device id
    max_power_w: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 1000.0


class FleetOptions(Section):
    site: str = Field("village", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    telemetry_s: float = Field(
        1.0, ge=0, allow_inf_nan=False,
        description="native metering interval, Tasmota TelePeriod, Shelly notify period; 0: off")
    latency_s: float = Field(0.0, ge=0, allow_inf_nan=False,
                             description="time from receiving a command to acting on it")
    profile: Literal["constant", "ramp", "cycle"] = "constant"  # lastwatt.devices.profile_fn
    round_s: PositiveSeconds = 3600.0  # for the ramp profile
    noise_sd: float = Field(0.0, ge=0, le=1, description="relative noise on the draw")
    seed: int = Field(0, ge=0)
    connections: int | None = Field(
        None, ge=0, description="None: auto; 0: one per device; N: N shared connections")
    tasmota_full_topic: FullTopic = DEFAULT_FULL_TOPIC
    shelly_generic_status: bool = Field(
        True, description="status/switch:0 as well as events/rpc (real devices: off by default)")
    client_prefix: str = Field("lastwatt-sim", pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    # None: as the firmware does (native and Shelly 1, Tasmota 0). QoS 1 costs paho ~100 us
    # of CPU per message, QoS 0 ~15 us: 10k devices at 1 Hz in one process need QoS 0.
    telemetry_qos: Literal[0, 1, 2] | None = None

