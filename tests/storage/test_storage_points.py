"""The measurement schema: the fast line encoder against influxdb_client's own Points."""

from __future__ import annotations

import math

import numpy as np

from lastwatt.storage.points import BUSINESSES, DEVICES, ROUNDS, LineEncoder, round_points
from tests.storage_data import expected_points, make_meta, make_rounds


def _reference_lines(meta, rounds, offset_s=0.0) -> list[str]:
    return [p.to_line_protocol() for r in rounds for p in round_points(meta, r, offset_s)]


def test_line_encoder_matches_influxdb_client_points_byte_for_byte():
    meta = make_meta(businesses=5, devices=3)
    rounds = make_rounds(meta, 12)
    body, n = LineEncoder(meta, offset_s=3.5).encode(rounds)
    lines = body.decode().splitlines()
    assert n == len(lines) == expected_points(meta, 12)
    assert sorted(lines) == sorted(_reference_lines(meta, rounds, offset_s=3.5))


def test_non_finite_values_are_left_out_of_the_point():
    meta = make_meta()
    r = make_rounds(meta, 1)[0]  # round 0: efficiency NaN, business 0 performance NaN
    r.business["result"][1] = np.inf
    lines = LineEncoder(meta).encode([r])[0].decode().splitlines()
    rounds_line = next(line for line in lines if line.startswith("rounds,"))
    assert "efficiency=" not in rounds_line and "production_wh=" in rounds_line
    shops = [line for line in lines if line.startswith("businesses,")]
    assert "performance=" not in shops[0] and "performance=" in shops[1]
    assert "result=" not in shops[1].replace("_result", "")
    assert all("nan" not in line.lower() and "inf" not in line.lower() for line in lines)


def test_tag_values_needing_escapes_are_escaped_like_influxdb_client():
    meta = make_meta()
    lines = LineEncoder(meta).encode(make_rounds(meta, 1))[0].decode()
    assert r"business=mill\,\=x," in lines and r"business=shop\ 0," in lines


def test_every_point_carries_the_run_tags_and_a_millisecond_timestamp():
    meta = make_meta()
    rounds = make_rounds(meta, 3)
    for line in LineEncoder(meta).encode(rounds)[0].decode().splitlines():
        series, _fields, ts = line.rsplit(" ", 2)
        assert "run=run-1" in series and "site=village" in series and "scenario=default" in series
        assert int(ts) in {round(r.start_ts * 1000) for r in rounds}


def test_derived_fields_stake_share_and_quota_used():
    meta = make_meta(businesses=4, devices=2)
    r = make_rounds(meta, 1)[0]
    points = {(p._name, p._tags.get("business"), p._tags.get("device")): p._fields
              for p in round_points(meta, r)}
    stake = r.business["stake_tokens"]
    share = points[("businesses", "shop 1", None)]["stake_share"]
    assert math.isclose(share, stake[1] / stake.sum())
    dev1 = points[("devices", meta.business_names[1], "dev-1")]
    assert math.isclose(dev1["quota_used"], r.device["metered_wh"][1] / r.device["quota_wh"][1])
    dev0 = points[("devices", meta.business_names[0], "dev-0")]
    assert math.isnan(dev0["quota_used"])  # quota 0: no meaningful share, left out on write


def test_schema_fields_name_their_units_and_tags_are_bounded():
    assert "production_wh" in ROUNDS.fields and "round" in ROUNDS.int_fields
    assert "stake_share" in BUSINESSES.fields and "business" not in BUSINESSES.fields
    assert {"device", "dialect", "business"} <= set(DEVICES.tags)
    # no per-staker tag anywhere: series count grows with businesses and devices only
    from lastwatt.storage.points import MEASUREMENTS
    assert all("staker" not in m.tags for m in MEASUREMENTS)
