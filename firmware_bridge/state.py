"""What the bridge knows and wants of each vendor device (its state, one per device)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from firmware_bridge.counters import MonotonicCounter
from firmware_bridge.dialects import Dialect
from lastwatt.config import DeviceEntry
from lastwatt.messages import Setpoint


@dataclass(slots=True)
class DeviceState:
    """What the bridge knows and wants of one vendor device. Times are the bridge's clock."""

    entry: DeviceEntry
    dialect: Dialect
    topic: str
    counter: MonotonicCounter
    round: int = -1
    epoch: int = 0  # the run of ``round`` (Setpoint.epoch)
    round_start_wh: float | None = None  # native energy when the round's first setpoint came
    quota_wh: float = math.inf
    valid_until: float = 0.0
    want_on: bool = False
    on: bool | None = None  # as last reported by the device
    online: bool | None = None
    power_w: float = 0.0
    on_power_w: float = 0.0  # the last power measured while drawing: predicts time to quota
    timer_end_ts: float = math.inf  # when the off-timer we armed should end
    stopped_self: bool = False  # the plug's timer switched it off while we wanted it on
    reading_gap_s: float = 0.0  # time between the last two readings
    seen_counter: bool = False
    last_counter_ts: float = field(default=-math.inf)
    last_sent_ts: float = field(default=-math.inf)
    last_sent: tuple[float, float, bool] | None = None
    off_timer: bool | None = None  # PulseTime / toggle_after, as the device's answers say
    read_pending: bool = False  # a final read was asked: publish its answer whatever it says
    poll_gen: int = 0  # the newest scheduled quota poll; older ones lapse
    applied: Setpoint | None = None  # the last setpoint taken
    off_sent_ts: float = -math.inf  # an OFF sent and not yet confirmed (OFF_REPEAT_S)

    def round_energy_wh(self) -> float:
        if self.round_start_wh is None:
            return 0.0
        return self.counter.energy_wh - self.round_start_wh
