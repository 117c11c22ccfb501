"""Metered energy per device and round, from monotonic counter readings.

Readings arrive at least once (QoS 1 duplicates them after a reconnect), possibly late, and a
device's counter may restart at zero (reboot). The book makes each reading idempotent: only a
reading newer than the device's last one counts, its energy is the counter's increase since
then (or the counter itself after a reset), and it is booked to the round whose time span
holds its timestamp. Readings older than the open round are counted as stale and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lastwatt.messages import MeterReading


@dataclass(slots=True)
class MeterBook:
    device_ids: list[str]
    round_start_ts: float = 0.0
    index: dict[str, int] = field(init=False)
    last_ts: np.ndarray = field(init=False)  # per device, newest reading booked
    last_counter_wh: np.ndarray = field(init=False)
    round_wh: np.ndarray = field(init=False)  # energy booked to the open round
    power_w: np.ndarray = field(init=False)
    on: np.ndarray = field(init=False)
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.device_ids)
        self.index = {d: i for i, d in enumerate(self.device_ids)}
        self.last_ts = np.full(n, -np.inf)
        self.last_counter_wh = np.full(n, np.nan)  # NaN: no reading yet, next one is a baseline
        self.round_wh = np.zeros(n)
        self.power_w = np.zeros(n)
        self.on = np.zeros(n, dtype=bool)
        self.counts = {"booked": 0, "duplicate": 0, "stale": 0, "counter_reset": 0}

    def open_round(self, start_ts: float) -> None:
        self.round_start_ts = start_ts
        self.round_wh[:] = 0.0

    def ingest(self, r: MeterReading) -> bool:
        """Book one reading; False when it was a duplicate or stale (nothing booked)."""
        i = self.index[r.device]
        if r.ts <= self.last_ts[i]:
            self.counts["duplicate"] += 1
            return False
        if r.ts < self.round_start_ts:
            self.counts["stale"] += 1
            return False
        prev = self.last_counter_wh[i]
        self.last_ts[i] = r.ts
        self.last_counter_wh[i] = r.energy_wh
        self.power_w[i] = r.power_w
        self.on[i] = r.on
        self.counts["booked"] += 1
        if prev != prev:  # first reading of this device: it is the baseline
            return True
        delta = r.energy_wh - prev
        if delta < 0:  # the counter restarted; what it shows now was drawn since
            self.counts["counter_reset"] += 1
            delta = r.energy_wh
        self.round_wh[i] += delta
        return True
