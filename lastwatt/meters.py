"""Metered energy per device and round, from monotonic counter readings.

Readings arrive at least once (QoS 1 duplicates them after a reconnect), possibly late, and a
device's counter may restart at zero (reboot). The book makes each reading idempotent: only a
reading newer than the device's last one counts, its energy is the counter's increase since
then (or the counter itself after a reset), and it is booked to the round whose time span
holds its timestamp. Readings older than the open round are counted as stale and book
nothing, but a device's first one is still its baseline.
"""

from __future__ import annotations

import math

import numpy as np

from lastwatt.messages import MeterReading


class MeterBook:
    """Per-device counters as plain lists: one reading per device per metering interval
    passes through here, and list indexing is several times cheaper than numpy scalars."""

    def __init__(self, device_ids: list[str]) -> None:
        n = len(device_ids)
        self.device_ids = device_ids
        self.index = {d: i for i, d in enumerate(device_ids)}
        self.round_start_ts = 0.0
        self.last_ts = [-math.inf] * n  # newest reading booked, per device
        self.last_counter_wh: list[float | None] = [None] * n  # None: next reading is a baseline
        self._round_wh = [0.0] * n  # energy booked to the open round
        self._power_w = [0.0] * n
        self._on = [False] * n
        self.counts = {"booked": 0, "duplicate": 0, "stale": 0, "counter_reset": 0}

    @property
    def round_wh(self) -> np.ndarray:
        """Energy booked per device in the open round (a copy)."""
        return np.array(self._round_wh)

    @property
    def power_w(self) -> np.ndarray:
        """Last reported power per device (a copy)."""
        return np.array(self._power_w)

    @property
    def on(self) -> np.ndarray:
        """Last reported relay state per device (a copy)."""
        return np.array(self._on)

    def open_round(self, start_ts: float) -> None:
        """Start a round at ``start_ts``: round energy back to zero, counters kept."""
        self.round_start_ts = start_ts
        self._round_wh = [0.0] * len(self._round_wh)

    def ingest(self, r: MeterReading) -> bool:
        """Book one reading; False when it was a duplicate or stale (nothing booked)."""
        i = self.index[r.device]
        ts = r.ts
        if ts <= self.last_ts[i]:
            self.counts["duplicate"] += 1
            return False
        if ts < self.round_start_ts:
            self.counts["stale"] += 1
            if self.last_counter_wh[i] is None:
                # still a baseline (it books nothing): without one, what the device draws
                # before its next reading would be lost
                self.last_ts[i] = ts
                self.last_counter_wh[i] = r.energy_wh
            return False
        prev = self.last_counter_wh[i]
        self.last_ts[i] = ts
        self.last_counter_wh[i] = r.energy_wh
        self._power_w[i] = r.power_w
        self._on[i] = r.on
        self.counts["booked"] += 1
        if prev is None:  # first reading of this device: it is the baseline
            return True
        delta = r.energy_wh - prev
        if delta < 0:  # the counter restarted; what it shows now was drawn since
            self.counts["counter_reset"] += 1
            delta = r.energy_wh
        self._round_wh[i] += delta
        return True
