"""The same-round oracle and the three baselines on tiny hand-computed cases."""

import numpy as np

from lastwatt.model.bandit import UcbAllocator, ucb_choice, ucb_index
from lastwatt.model.baselines import equal_allocation, last_output_allocation, random_allocation
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


def test_last_output_baseline_follows_last_positive_output():
    last = np.array([300.0, -50.0, 100.0, 0.0])
    e = last_output_allocation(8.0, CAP, last)  # 3:1 -> 6 / 2, no cap binds
    np.testing.assert_allclose(e, [6.0, 0.0, 2.0, 0.0])
    e = last_output_allocation(20.0, CAP, last)  # 15 / 5, but 10 caps: its 5 go to the other
    np.testing.assert_allclose(e, [10.0, 0.0, 10.0, 0.0])


def test_last_output_baseline_splits_equally_without_positive_output():
    e = last_output_allocation(40.0, CAP, np.array([-1.0, 0.0, -3.0, 0.0]))
    np.testing.assert_allclose(e, [10.0, 10.0, 10.0, 10.0])


def test_quality_oracle_knows_q_not_this_rounds_draw_and_feeds_at_most_i():
    quality = np.array([6.0, 7.0, -1.0, 2.0])  # ranks by q: 1, 0, 3; 2 never (q < 0)
    e = oracle_allocation(45.0, CAP, quality, active_set=2)
    np.testing.assert_allclose(e, [10.0, 20.0, 0.0, 0.0])  # 15 Wh left: I = 2 caps it
    assert e @ P == 10.0 * 5.0 + 20.0 * -2.0  # realised with this round's p: worse than p-oracle


def test_ucb_index_is_hand_computed_gaussian_bound_and_unseen_arms_come_first():
    mean = np.array([1.0, 3.0, 0.0])
    count = np.array([4, 1, 0])
    idx = ucb_index(mean, count, t=5, sigma=2.0)
    bonus = np.sqrt(2 * np.log(5))
    np.testing.assert_allclose(idx[:2], [1.0 + 2.0 * bonus / 2, 3.0 + 2.0 * bonus])
    assert idx[2] == np.inf
    assert list(ucb_choice(idx, 2)) == [2, 1]
    assert list(ucb_choice(idx, 2, np.array([True, True, False]))) == [1, 0]


def test_ucb_allocator_explores_every_arm_then_keeps_the_best_it_saw():
    ucb = UcbAllocator(4, active_set=2, sigma=0.0)  # sigma 0: greedy once all are seen
    first = ucb.allocate(30.0, CAP)
    np.testing.assert_allclose(first, [10.0, 20.0, 0.0, 0.0])  # unseen, lowest index first
    ucb.observe(first, P)
    second = ucb.allocate(30.0, CAP)
    np.testing.assert_allclose(second, [0.0, 0.0, 15.0, 15.0])  # the two still unseen
    ucb.observe(second, P)
    np.testing.assert_allclose(ucb.mean, P)
    np.testing.assert_allclose(ucb.allocate(30.0, CAP), [10.0, 0.0, 20.0, 0.0])  # p 8 and 5
    assert ucb.allocate(0.0, CAP).sum() == 0
