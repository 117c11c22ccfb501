"""A monotonic native ``energy_wh`` from a vendor energy register that may restart at zero.

Vendor registers reset on ``EnergyTotal 0`` / ``Switch.ResetCounters``, on a flash reset and,
on some devices, on reboot. The native counter must never go down, so a drop of the
register adds the last value seen to an offset. Drops no larger than ``jitter_wh`` are not
resets but an older reading delivered late (QoS 1 redelivery) or rounding (Tasmota's 1 Wh
resolution): they are held, not counted. Energy drawn between the last reading before a
reset and the reset itself is unknowable and lost; the docs say so.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class MonotonicCounter:
    jitter_wh: float = 1.0
    offset_wh: float = 0.0
    last_raw_wh: float | None = None
    resets: int = 0

    @property
    def energy_wh(self) -> float:
        return self.offset_wh + (self.last_raw_wh or 0.0)

    def update(self, raw_wh: float) -> float:
        """Feed the vendor register (Wh); return the native monotonic total (Wh)."""
        last = self.last_raw_wh
        if last is not None and raw_wh < last:
            if last - raw_wh <= self.jitter_wh:
                return self.energy_wh  # late or rounded reading: hold
            self.offset_wh += last
            self.resets += 1
        self.last_raw_wh = raw_wh
        return self.energy_wh
