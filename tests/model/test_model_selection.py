"""Step 4: the active set (top-I by stake, seeded tie-break, availability)."""

import numpy as np

from lastwatt.model.selection import select_active_set


def test_selects_the_largest_stakes_in_descending_order():
    stake = np.array([1.0, 5.0, 3.0, 4.0, 2.0])
    sel = select_active_set(stake, 3, np.random.default_rng(0))
    assert sel.tolist() == [1, 3, 2]


def test_tie_break_is_deterministic_given_the_seed_and_varies_with_it():
    stake = np.array([2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 1.0])
    picks = {
        tuple(select_active_set(stake, 2, np.random.default_rng(s)).tolist()) for s in range(30)
    }
    again = select_active_set(stake, 2, np.random.default_rng(7)).tolist()
    assert again == select_active_set(stake, 2, np.random.default_rng(7)).tolist()
    assert len(picks) > 5  # ties are not won by index
    assert all(6 not in p for p in picks)


def test_unavailable_business_is_not_selected_and_its_place_goes_to_the_next():
    stake = np.array([10.0, 5.0, 3.0, 1.0])
    available = np.array([False, True, True, True])
    sel = select_active_set(stake, 2, np.random.default_rng(0), available)
    assert sel.tolist() == [1, 2]


def test_business_without_stake_is_never_selected():
    sel = select_active_set(np.array([0.0, 1.0, 0.0]), 3, np.random.default_rng(0))
    assert sel.tolist() == [1]
