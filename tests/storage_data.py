"""Synthetic rounds for the storage tests: seeded, shaped like the engine's RoundResults."""

from __future__ import annotations

import numpy as np

from lastwatt.result import (
    BUSINESS_FIELDS,
    DEVICE_FIELDS,
    POLICY_FIELDS,
    ROUND_FIELDS,
    RoundResult,
    RunMeta,
)

START_TS = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def make_meta(run_id: str = "run-1", businesses: int = 4, devices: int = 2) -> RunMeta:
    names = [f"shop {i}" for i in range(businesses - 1)] + ["mill,=x"]  # needs escaping
    device_dialects = {f"dev-{k}": ("tasmota" if k % 2 else "shelly") for k in range(devices)}
    return RunMeta(run_id=run_id, site="village", scenario="default", seed=1,
                   business_names=names, policy_names=["softmax", "herding"],
                   device_dialects=device_dialects)


def make_rounds(meta: RunMeta, rounds: int, seed: int = 0, start_ts: float = START_TS,
                round_s: float = 3600.0) -> list[RoundResult]:
    rng = np.random.default_rng(seed)
    n, p = len(meta.business_names), len(meta.policy_names)
    ids = list(meta.device_dialects)
    out = []
    for t in range(rounds):
        scalars = {f: float(rng.uniform(0, 1e5)) for f in ROUND_FIELDS}
        if t % 5 == 0:
            scalars["efficiency"] = float("nan")  # oracle 0: the field is left out
        business = {f: rng.uniform(-10, 1e4, n) for f in BUSINESS_FIELDS}
        business["selected"] = (rng.random(n) < 0.5).astype(float)
        business["performance"][t % n] = np.nan  # unselected: no performance
        policy = {f: rng.uniform(0, 300, p) for f in POLICY_FIELDS}
        device = {f: rng.uniform(0, 5e3, len(ids)) for f in DEVICE_FIELDS}
        device["business"] = np.arange(len(ids), dtype=float) % n
        device["on"] = (rng.random(len(ids)) < 0.5).astype(float)
        device["quota_wh"][0] = 0.0  # no quota: quota_used left out
        out.append(RoundResult(
            round=t, start_ts=start_ts + t * round_s, end_ts=start_ts + (t + 1) * round_s,
            scalars=scalars, selected=[int(i) for i in np.flatnonzero(business["selected"])],
            business=business, policy=policy, device_ids=ids, device=device,
        ))
    return out


def expected_points(meta: RunMeta, rounds: int) -> int:
    return rounds * (1 + len(meta.business_names) + len(meta.policy_names)
                     + len(meta.device_dialects))
