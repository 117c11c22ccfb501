"""The site a config describes: its businesses, their devices and what they can draw.

One function, :func:`site`, shared by the market (quality, max power), the engine (devices),
the simulated fleet (``firmware_bridge.simulated.site``) and the CLI (device ids), so that
nobody builds a :class:`~lastwatt.model.market.Market` to learn a business's max power.

The businesses' quality q_i and max power are drawn from the ``businesses`` stream, quality
first, both always (so max power does not depend on whether ``businesses.qualities`` is given).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lastwatt.config import Config
from lastwatt.rng import streams


@dataclass(frozen=True, slots=True)
class Devices:
    """The device table: ids, which business each serves, and its max draw."""

    ids: list[str]
    business: np.ndarray  # (D,) int
    max_power_w: np.ndarray  # (D,): its business's max power split over its devices
    dialects: dict[str, str]  # device id -> native, tasmota or shelly


@dataclass(frozen=True, slots=True)
class Site:
    """The businesses (names, q_i, max power) and their devices."""

    business_names: list[str]  # b00, b01, ... (wider when N > 100)
    quality: np.ndarray  # (N,) q_i
    max_power_w: np.ndarray  # (N,)
    devices: Devices

    @property
    def n_businesses(self) -> int:
        """N."""
        return len(self.business_names)

    def cap_wh(self, round_s: float) -> np.ndarray:
        """What each business can take in a round of ``round_s`` seconds at max power (N,)."""
        return self.max_power_w * (round_s / 3600.0)


def site(cfg: Config, rng: np.random.Generator | None = None) -> Site:
    """The site of ``cfg``; ``rng`` is the run's ``businesses`` stream (default: a fresh one
    from ``cfg.seed``, which gives the same draws as the run's)."""
    biz = cfg.businesses
    rng = streams(cfg.seed).businesses if rng is None else rng
    drawn_quality = rng.uniform(biz.quality_low, biz.quality_high, biz.count)
    max_power_w = rng.uniform(biz.max_power_w_low, biz.max_power_w_high, biz.count)
    quality = np.array(biz.qualities, dtype=float) if biz.qualities else drawn_quality
    width = max(len(str(biz.count - 1)), 2)
    names = [f"b{i:0{width}d}" for i in range(biz.count)]
    return Site(names, quality, max_power_w, device_table(cfg, max_power_w))


def device_table(cfg: Config, max_power_w: np.ndarray) -> Devices:
    """Explicit ``devices.map``, else ``per_business`` native devices per business."""
    if cfg.devices.map:
        entries = [(d.id, d.business, d.dialect) for d in cfg.devices.map]
    else:
        entries = [
            (f"b{b:03d}-d{j}", b, "native")
            for b in range(cfg.businesses.count) for j in range(cfg.devices.per_business)
        ]
    business = np.array([b for _, b, _ in entries], dtype=np.int64)
    per_business = np.bincount(business, minlength=cfg.businesses.count)
    dev_max = max_power_w[business] / np.maximum(per_business[business], 1)
    return Devices([e[0] for e in entries], business, dev_max, {e[0]: e[2] for e in entries})
