"""The seed's scenario with default config: the mechanism should learn to feed good businesses."""

import numpy as np

from lastwatt.config import Config
from lastwatt.model.market import Market
from lastwatt.model.split import split_energy
from lastwatt.rng import streams


def daytime_rounds(seed: int, days: int):
    """A plain clear-sky-ish day profile (the weather model is not under test here)."""
    cfg = Config(seed=seed)
    s = streams(seed)
    market = Market(cfg, s)
    households_w = cfg.demand.household_w * cfg.population.households
    out = []
    for t in range(24 * days):
        sun = max(0.0, np.sin((t % 24 - 6) / 12 * np.pi))
        prod = cfg.container.peak_power_w * sun * s.weather.choice([1.0, 0.55, 0.2])
        split = split_energy(prod, cfg.demand.community_w, households_w, 0.1, 0.0)
        plan = market.plan(t, float(split.business_pool_wh), 3600.0)
        outcome = market.settle(plan, plan.planned_wh)
        if plan.business_pool_wh > 0:
            out.append((plan, outcome))
    return market, out


def test_default_mechanism_selects_good_businesses_and_beats_baselines():
    for seed in (1, 2):
        market, rounds = daytime_rounds(seed, days=50)
        late = rounds[len(rounds) // 2 :]
        assert len(late) > 100
        top5 = np.argsort(-market.quality)[:5]
        share_top = np.mean([np.isin(p.selected_idx, top5).mean() for p, _ in late])
        assert share_top > 0.7
        mean = {k: np.mean([o.scalars[k] for _, o in late]) for k in late[0][1].scalars}
        assert mean["total_result"] > 2 * max(mean["random_result"], mean["equal_result"])
        assert mean["efficiency"] > 0.6
