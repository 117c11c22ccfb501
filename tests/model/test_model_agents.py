"""Step 3: staker policies, consideration sets, bonding state, and the round metrics."""

import numpy as np
import pytest

from lastwatt.model import agents
from lastwatt.model.beliefs import PublicBeliefs
from lastwatt.model.metrics import gini, turnover
from lastwatt.model.stakes import Bonds, bonded_stake_per_business

VALUES = np.array([[0.0, 5.0, 1.0], [1.0, 4.0, 3.0]], dtype=np.float32)  # (c=2, S=3)


def test_greedy_picks_each_stakers_best_candidates():
    assert agents.greedy(VALUES, 1).tolist() == [[1, 0, 1]]
    top2 = np.sort(agents.greedy(VALUES, 2), axis=0)
    assert top2.tolist() == [[0, 0, 0], [1, 1, 1]]


def test_softmax_choice_frequencies_follow_the_logit():
    values = np.tile(np.array([[0.0], [1.0]], dtype=np.float32), (1, 200_000))
    rows = agents.softmax(values, 1, temperature=1.0, rng=np.random.default_rng(0))
    assert rows.mean() == pytest.approx(np.e / (1 + np.e), abs=0.005)
    rows = agents.softmax(values, 1, temperature=0.5, rng=np.random.default_rng(0))
    assert rows.mean() == pytest.approx(np.e**2 / (1 + np.e**2), abs=0.005)


def test_sampling_k_draws_distinct_candidates():
    rows = agents.random_rows(5, 10_000, 3, np.random.default_rng(1))
    assert np.all(np.sort(rows, axis=0)[1:] != np.sort(rows, axis=0)[:-1])
    assert np.bincount(rows.ravel(), minlength=5) / rows.size == pytest.approx([0.2] * 5, abs=0.01)


def test_epsilon_greedy_explores_at_rate_epsilon():
    values = np.tile(np.array([[0.0], [9.0], [0.0], [0.0]], dtype=np.float32), (1, 100_000))
    rows = agents.epsilon_greedy(values, 1, 0.2, np.random.default_rng(2))
    assert (rows != 1).mean() == pytest.approx(0.2 * 3 / 4, abs=0.005)


def test_policies_are_assigned_in_deterministic_blocks_by_largest_remainder():
    blocks = agents.assign_policies({"softmax": 0.6, "herding": 0.3, "loyal": 0.1, "random": 0}, 7)
    assert [(n, b.start, b.stop) for n, b in blocks] == [
        ("softmax", 0, 4),
        ("herding", 4, 6),
        ("loyal", 6, 7),
    ]


def test_cached_values_match_the_belief_formula_after_observations():
    rng = np.random.default_rng(3)
    beliefs = PublicBeliefs(rng.uniform(-10, 10, 50), learning_rate=0.3)
    consider = agents.Consideration(1000, 50, 4, 2.0, rng, beliefs)
    for _ in range(5):
        seen = rng.choice(50, 7, replace=False)
        beliefs.observe(seen, rng.uniform(-10, 10, 7))
        consider.refresh(beliefs, seen)
    expected = beliefs.base()[consider.business] + beliefs.decay[consider.business] * consider.noise
    np.testing.assert_allclose(consider.value, expected, rtol=1e-5, atol=1e-5)


def test_beliefs_move_from_personal_rating_toward_published_performance():
    beliefs = PublicBeliefs(np.array([8.0, 0.0]), learning_rate=0.5)
    beliefs.observe(np.array([0]), np.array([2.0]))
    beliefs.observe(np.array([0]), np.array([2.0]))
    # EMA from the rating 8 (+ noise n): 0.25 * (8 + n) + 0.75 * 2
    assert beliefs.base()[0] == pytest.approx(0.25 * 8 + 1.5)
    assert beliefs.decay.tolist() == [0.25, 1.0]
    assert beliefs.base()[1] == 0.0


def test_switch_with_unbonding_sits_idle_for_exactly_that_many_rounds():
    bonds = Bonds.empty(2, 1)
    everyone = np.ones(2, dtype=bool)
    assert bonds.apply(np.array([[3, 4]]), everyone, 2).all()  # first bond: no delay
    bonded = []
    for wish in ([[5, 4]], [[5, 4]], [[5, 4]], [[5, 4]]):
        deciding = ~bonds.idle()
        bonded.append(bonds.apply(np.array(wish), deciding, 2).tolist())
    assert bonded == [[False, True], [False, True], [True, True], [True, True]]
    assert bonds.choice.tolist() == [[5, 4]]


def test_stake_is_split_equally_over_a_stakers_slots():
    choice = np.array([[0, 1], [2, 1]])  # staker 0: businesses 0 and 2; staker 1: 1 twice
    stake = bonded_stake_per_business(choice, np.array([4.0, 6.0]), 4)
    np.testing.assert_allclose(stake, [2.0, 6.0, 2.0, 0.0])


def test_gini_of_equal_and_concentrated_holdings():
    assert gini(np.ones(10)) == 0.0
    assert gini(np.array([0.0, 0.0, 0.0, 4.0])) == pytest.approx(0.75)
    assert gini(np.array([1.0, 3.0])) == pytest.approx(0.25)


def test_turnover_is_one_minus_jaccard_of_selected_sets():
    assert turnover(np.array([1, 2, 3]), np.array([2, 3, 4])) == pytest.approx(1 - 2 / 4)
    assert turnover(np.array([1, 2]), np.array([2, 1])) == 0.0
    assert np.isnan(turnover(np.array([1]), None))
