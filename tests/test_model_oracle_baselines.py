"""The same-round oracle and the three baselines on tiny hand-computed cases."""

import numpy as np

from lastwatt.model.baselines import equal_allocation, proportional_allocation, random_allocation
from lastwatt.model.oracle import oracle_allocation

CAP = np.array([10.0, 20.0, 30.0, 40.0])
P = np.array([5.0, -2.0, 8.0, 1.0])


def test_oracle_fills_best_performance_first_and_skips_negative():
    e = oracle_allocation(45.0, CAP, P)
    np.testing.assert_allclose(e, [10.0, 0.0, 30.0, 5.0])  # 30 to p=8, 10 to p=5, 5 to p=1


def test_oracle_leaves_energy_unused_rather_than_feed_negative_performance():
    e = oracle_allocation(1000.0, CAP, P)
    np.testing.assert_allclose(e, [10.0, 0.0, 30.0, 40.0])


def test_oracle_limited_to_active_set_when_configured():
    e = oracle_allocation(1000.0, CAP, P, active_set=2)
    np.testing.assert_allclose(e, [10.0, 0.0, 30.0, 0.0])


def test_oracle_ignores_unavailable_businesses():
    e = oracle_allocation(45.0, CAP, P, available=np.array([True, True, False, True]))
    np.testing.assert_allclose(e, [10.0, 0.0, 0.0, 35.0])


def test_equal_split_over_all_capped_and_water_filled():
    e = equal_allocation(100.0, CAP)  # 25 each; 10 and 20 cap, 15 re-shared: 30 / 40
    np.testing.assert_allclose(e, [10.0, 20.0, 30.0, 40.0])
    e = equal_allocation(60.0, CAP)  # 15 each; 10 caps, 5 re-shared: 16.67 each
    np.testing.assert_allclose(e, [10.0, 50 / 3, 50 / 3, 50 / 3])


def test_random_baseline_gives_equal_shares_to_i_random_businesses():
    rng = np.random.default_rng(3)
    e = random_allocation(40.0, CAP, 2, rng)
    chosen = np.flatnonzero(e)
    assert len(chosen) == 2
    expected = equal_allocation(40.0, np.where(np.isin(np.arange(4), chosen), CAP, 0.0))
    np.testing.assert_allclose(e, expected)
    again = random_allocation(40.0, CAP, 2, np.random.default_rng(3))
    np.testing.assert_allclose(e, again)


def test_proportional_baseline_follows_last_positive_output():
    last = np.array([300.0, -50.0, 100.0, 0.0])
    e = proportional_allocation(8.0, CAP, last)  # 3:1 -> 6 / 2, no cap binds
    np.testing.assert_allclose(e, [6.0, 0.0, 2.0, 0.0])
    e = proportional_allocation(20.0, CAP, last)  # 15 / 5, but 10 caps: its 5 go to the other
    np.testing.assert_allclose(e, [10.0, 0.0, 10.0, 0.0])


def test_proportional_baseline_splits_equally_without_positive_output():
    e = proportional_allocation(40.0, CAP, np.array([-1.0, 0.0, -3.0, 0.0]))
    np.testing.assert_allclose(e, [10.0, 10.0, 10.0, 10.0])
