"""The shared device physics: integration, quota, failsafe, counter reset."""

import numpy as np
import pytest

from lastwatt.devices import DeviceModel, profile_fn
from lastwatt.messages import Setpoint


def device(max_power_w=1000.0, profile="constant", enforce_quota=True):
    return DeviceModel("d1", max_power_w, profile_fn(profile, 3600), np.random.default_rng(0),
                       enforce_quota=enforce_quota)


def setpoint(quota_wh, on=True, round_=0, valid_until=1e9):
    return Setpoint("d1", round_, on, quota_wh, quota_wh, valid_until)


def test_device_integrates_constant_draw_into_its_counter():
    d = device()
    d.apply(setpoint(5000), now_ts=0)
    for t in range(60, 1801, 60):
        r = d.advance(t)
    assert r.energy_wh == pytest.approx(500.0)  # 1 kW for half an hour
    assert r.on and r.power_w == pytest.approx(1000.0)


def test_device_switches_itself_off_exactly_at_its_quota():
    d = device()
    d.apply(setpoint(250), now_ts=0)
    readings = [d.advance(t) for t in range(60, 3601, 60)]
    assert readings[-1].energy_wh == pytest.approx(250.0)
    assert not readings[-1].on and readings[-1].power_w == 0
    first_off = next(i for i, r in enumerate(readings) if not r.on)
    assert first_off == 14  # 250 Wh at 1 kW = 15 min: off at the 15th minute's reading


def test_vendor_plug_does_not_enforce_quota_itself():
    d = device(enforce_quota=False)
    d.apply(setpoint(100), now_ts=0)
    assert d.advance(3600).energy_wh == pytest.approx(1000.0)


def test_device_switches_off_when_setpoint_expires_without_renewal():
    d = device()
    d.apply(setpoint(1e6, valid_until=600), now_ts=0)
    r = d.advance(900)
    assert not r.on
    assert r.energy_wh == pytest.approx(1000.0 * 600 / 3600)  # drew only until valid_until


def test_new_round_resets_the_round_energy_but_not_the_counter():
    d = device()
    d.apply(setpoint(100, round_=0), now_ts=0)
    d.advance(3600)
    d.apply(setpoint(100, round_=1), now_ts=3600)
    assert d.on and d.round_energy_wh == 0
    assert d.advance(7200).energy_wh == pytest.approx(200.0)


def test_off_setpoint_stops_the_draw():
    d = device()
    d.apply(setpoint(1e6), now_ts=0)
    d.apply(setpoint(1e6, on=False), now_ts=1800)
    assert d.advance(3600).energy_wh == pytest.approx(500.0)


def test_counter_reset_zeroes_the_vendor_counter():
    d = device()
    d.apply(setpoint(1e6), now_ts=0)
    d.advance(3600)
    d.reset_counter()
    assert d.advance(7200).energy_wh == pytest.approx(1000.0)
    assert d.counter_resets == 1


@pytest.mark.parametrize("name", ["constant", "ramp", "cycle"])
def test_load_profiles_stay_within_max_draw(name):
    f = profile_fn(name, 3600)
    values = [f(t) for t in range(0, 3600, 30)]
    assert min(values) > 0 and max(values) <= 1.0


def test_unknown_profile_is_rejected_by_name():
    with pytest.raises(ValueError, match="unknown load profile 'sine'"):
        profile_fn("sine", 3600)
