"""Metered energy per device and round, from monotonic counter readings that must be plausible.

Readings arrive at least once (QoS 1 duplicates them after a reconnect), possibly late, and
anyone allowed to publish on a meter topic can forge a well-formed one. The book makes each
reading idempotent and bounded (docs/devices.md, "Plausibility"):

- only a reading newer than the device's last accepted one counts (``duplicate``);
- a timestamp more than ``max_skew_s`` ahead of the controller's clock is rejected
  (``future``) and never moves the device's clock; one more than ``max_skew_s`` before the
  open round is rejected too (``past``); one just before it books nothing (``stale``) but a
  device's first one is still its baseline;
- the counter's increase must fit what the device can physically have drawn: each device has
  an energy allowance that refills at ``max_power_w x margin`` per second of the
  controller's clock, up to ``burst_s`` seconds' worth (skew + a metering interval), and
  each booked increase spends it (``implausible`` beyond it, plus ``slack_wh``). The
  controller's clock, not the reading's timestamp: bridged readings are stamped on arrival,
  with jitter, and a forger picks his;
- the counter may restart at zero only when the device says so by raising its counter
  ``epoch`` (a reboot or counter reset); a drop without it is ``unflagged_reset``, an epoch
  going backwards ``old_epoch``;
- after ``resync_after`` such rejections in a row the device is re-baselined on its latest
  reading, booking nothing: a device whose counter truly moved recovers, and nothing is
  booked twice.

Because the allowance refills only with the controller's time, the energy booked for a
device over any span is at most ``max_power x margin x (span + burst_s)`` plus ``slack_wh``
per reading, whatever is forged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lastwatt.messages import MeterReading

REJECTS = ("future", "past", "implausible", "unflagged_reset", "old_epoch")


@dataclass(slots=True, frozen=True)
class MeterBatch:
    """Every device's meter at once, from in-process devices the controller trusts (the
    analytic headless devices, :mod:`lastwatt.transport.analytic`): booked as given."""

    ts: float
    round_wh: np.ndarray  # (D,) energy drawn since the round opened
    energy_wh: np.ndarray  # (D,) monotonic counters
    power_w: np.ndarray  # (D,)
    on: np.ndarray  # (D,) bool


class MeterBook:
    """Per-device counters as plain lists: one reading per device per metering interval
    passes through here, and list indexing is several times cheaper than numpy scalars."""

    def __init__(self, device_ids: list[str], max_power_w: np.ndarray | None = None,
                 margin: float = 1.5, max_skew_s: float = 60.0, slack_wh: float = 1.0,
                 resync_after: int = 3, burst_s: float | None = None) -> None:
        n = len(device_ids)
        self.device_ids = device_ids
        self.index = {d: i for i, d in enumerate(device_ids)}
        # Wh per second a device may book (inf: no device table, no bound), its allowance
        self.wh_per_s = ([math.inf] * n if max_power_w is None
                         else [float(p) * margin / 3600.0 for p in max_power_w])
        # the allowance holds burst_s seconds' worth (default max_skew_s): at least a metering
        # interval, so that one reading's worth always fits
        self.cap_wh = [rate * (burst_s or max_skew_s) for rate in self.wh_per_s]
        self.allow_wh = list(self.cap_wh)
        self.allow_ts: list[float | None] = [None] * n
        self.max_skew_s, self.slack_wh, self.resync_after = max_skew_s, slack_wh, resync_after
        self.round_start_ts = 0.0
        self.last_ts = [-math.inf] * n  # newest reading accepted, per device
        self.last_counter_wh: list[float | None] = [None] * n  # None: next reading is a baseline
        self.last_epoch = [0] * n
        self.strikes = [0] * n  # implausible / reset rejections in a row
        self._round_wh = [0.0] * n  # energy booked to the open round
        self._power_w = [0.0] * n
        self._on = [False] * n
        self._round_rejected = [0] * n
        self.counts = {"booked": 0, "duplicate": 0, "stale": 0, "counter_reset": 0,
                       "rebaseline": 0, **dict.fromkeys(REJECTS, 0)}
        self.round_counts = dict.fromkeys(REJECTS, 0)  # rejections in the open round

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

    @property
    def round_rejected(self) -> np.ndarray:
        return np.array(self._round_rejected)

    def open_round(self, start_ts: float) -> None:
        """Start a round at ``start_ts``: round energy back to zero, counters kept."""
        self.round_start_ts = start_ts
        self._round_wh = [0.0] * len(self._round_wh)
        self._round_rejected = [0] * len(self._round_rejected)
        self.round_counts = dict.fromkeys(REJECTS, 0)

    def _reject(self, i: int, reason: str) -> bool:
        self.counts[reason] += 1
        self.round_counts[reason] += 1
        self._round_rejected[i] += 1
        return False

    def ingest(self, r: MeterReading, now: float | None = None) -> bool:
        """Book one reading (``now``: the controller's clock, epoch s); False: nothing booked."""
        i = self.index[r.device]
        ts = r.ts
        if now is not None and ts > now + self.max_skew_s:
            return self._reject(i, "future")
        if ts <= self.last_ts[i]:
            self.counts["duplicate"] += 1
            return False
        if ts < self.round_start_ts:
            if ts < self.round_start_ts - self.max_skew_s:
                return self._reject(i, "past")
            self.counts["stale"] += 1
            if self.last_counter_wh[i] is None:
                # still a baseline (it books nothing): without one, what the device draws
                # before its next reading would be lost
                self._accept(i, r)
            return False
        prev = self.last_counter_wh[i]
        if prev is None:  # first reading of this device: it is the baseline
            self._accept(i, r)
            self.counts["booked"] += 1
            return True
        epoch = r.epoch
        if epoch < self.last_epoch[i]:
            return self._strike(i, r, "old_epoch")
        if epoch > self.last_epoch[i]:
            delta = r.energy_wh  # the counter restarted; what it shows now was drawn since
        else:
            delta = r.energy_wh - prev
            if delta < 0:
                return self._strike(i, r, "unflagged_reset")
        t = ts if now is None else now
        last_t = self.allow_ts[i]
        allow = self.allow_wh[i]
        if last_t is not None and t > last_t:
            allow = min(self.cap_wh[i], allow + self.wh_per_s[i] * (t - last_t))
        self.allow_ts[i] = t if last_t is None or t > last_t else last_t
        self.allow_wh[i] = allow
        if delta > allow + self.slack_wh:
            return self._strike(i, r, "implausible")
        self.allow_wh[i] = max(0.0, allow - delta)
        if epoch > self.last_epoch[i]:
            self.counts["counter_reset"] += 1
            self.last_epoch[i] = epoch
        # _accept inlined: this is the hot path, once per device per metering interval
        self.last_ts[i] = ts
        self.last_counter_wh[i] = r.energy_wh
        self.strikes[i] = 0
        self._power_w[i] = r.power_w
        self._on[i] = r.on
        self.counts["booked"] += 1
        self._round_wh[i] += delta
        return True

    def book_batch(self, b: MeterBatch) -> None:
        """Book a trusted batch: no plausibility bound (a round's worth arrives at once, far
        beyond a metering interval's allowance), no wire to duplicate or forge readings."""
        n = len(self._round_wh)
        self._round_wh = (np.asarray(self._round_wh) + b.round_wh).tolist()
        self.last_ts = [b.ts] * n
        self.last_counter_wh = b.energy_wh.tolist()
        self._power_w = b.power_w.tolist()
        self._on = b.on.tolist()
        self.counts["booked"] += n

    def _accept(self, i: int, r: MeterReading) -> None:
        self.last_ts[i] = r.ts
        self.last_counter_wh[i] = r.energy_wh
        self.last_epoch[i] = r.epoch
        self.strikes[i] = 0
        self._power_w[i] = r.power_w
        self._on[i] = r.on

    def _strike(self, i: int, r: MeterReading, reason: str) -> bool:
        self._reject(i, reason)
        self.strikes[i] += 1
        if self.strikes[i] >= self.resync_after:  # the device insists: follow it, book nothing
            self.counts["rebaseline"] += 1
            self._accept(i, r)
        return False
