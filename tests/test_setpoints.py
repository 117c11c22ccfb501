import numpy as np
import pytest

from lastwatt.setpoints import QuotaSplit, device_quotas_wh, make_setpoints, simulated_wh


def test_business_energy_splits_over_its_online_devices_by_max_draw():
    q = device_quotas_wh(np.array([900.0, 100.0]), np.array([0, 0, 1]),
                         np.array([2000.0, 1000.0, 500.0]), np.array([True, True, True]))
    assert q == pytest.approx([600.0, 300.0, 100.0])


def test_offline_device_gets_nothing_and_its_share_goes_to_the_others():
    q = device_quotas_wh(np.array([900.0]), np.array([0, 0]), np.array([2000.0, 1000.0]),
                         np.array([False, True]))
    assert q == pytest.approx([0.0, 900.0])


def test_setpoint_power_is_the_quota_spread_over_the_round():
    (sp,) = make_setpoints(7, ["d"], np.array([500.0]), round_s=1800, valid_until=99.0)
    assert (sp.round, sp.on, sp.power_w, sp.quota_wh, sp.valid_until) == (7, True, 1000.0,
                                                                          500.0, 99.0)


def test_compressed_time_shrinks_the_device_quota_not_the_power():
    # 3600 Wh planned for a 1 h round at speed 60: the device runs 1 wall minute at 3600 W
    quota = device_quotas_wh(np.array([3600.0]), np.array([0]), np.array([5000.0]),
                             np.array([True]), speed=60.0)
    assert quota == pytest.approx([60.0])
    (sp,) = make_setpoints(0, ["d"], quota, 3600, 1.0, speed=60.0)
    assert sp.power_w == pytest.approx(3600.0) and sp.quota_wh == pytest.approx(60.0)
    assert simulated_wh(np.array([60.0]), 60.0) == pytest.approx([3600.0])


def test_zero_quota_means_off():
    (sp,) = make_setpoints(0, ["d"], np.array([0.0]), 3600, 1.0)
    assert not sp.on


def test_quota_split_follows_devices_going_offline_and_back_round_after_round():
    business, max_w = np.array([0, 0, 1]), np.array([2000.0, 1000.0, 500.0])
    split = QuotaSplit(business, max_w, speed=2.0)
    planned = np.array([900.0, 100.0])
    # hand values: shares by max draw among the online devices, halved by speed 2
    for online, want in [([True, True, True], [300.0, 150.0, 50.0]),
                         ([True, True, True], [300.0, 150.0, 50.0]),
                         ([False, True, True], [0.0, 450.0, 50.0]),
                         ([False, True, False], [0.0, 450.0, 0.0]),
                         ([True, True, True], [300.0, 150.0, 50.0])]:
        assert split(planned, np.array(online)) == pytest.approx(want)
