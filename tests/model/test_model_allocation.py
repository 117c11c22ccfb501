"""Step 5: pro-rata allocation with caps and water-filling."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lastwatt.model.allocation import pour_surplus, water_fill


def test_uncapped_allocation_is_pro_rata_to_stake():
    e, unplaced = water_fill(60.0, np.array([1.0, 2.0, 3.0]), np.full(3, 100.0))
    np.testing.assert_allclose(e, [10.0, 20.0, 30.0])
    assert unplaced == 0.0


def test_capped_surplus_is_reshared_among_the_uncapped():
    # pro rata would be 50/25/25; the first caps at 20, its 30 go 15/15 to the others
    e, unplaced = water_fill(100.0, np.array([2.0, 1.0, 1.0]), np.array([20.0, 100.0, 100.0]))
    np.testing.assert_allclose(e, [20.0, 40.0, 40.0])
    assert unplaced == 0.0


def test_resharing_cascades_when_a_second_business_caps():
    e, _ = water_fill(100.0, np.array([2.0, 1.0, 1.0]), np.array([20.0, 30.0, 100.0]))
    np.testing.assert_allclose(e, [20.0, 30.0, 50.0])


def test_surplus_beyond_all_caps_goes_back_to_the_reserve():
    e, unplaced = water_fill(100.0, np.array([1.0, 1.0, 0.0]), np.array([20.0, 30.0, 50.0]))
    np.testing.assert_allclose(e, [20.0, 30.0, 0.0])  # zero weight: nothing, even with room
    assert unplaced == pytest.approx(50.0)


def test_empty_pool_allocates_nothing():
    e, unplaced = water_fill(0.0, np.ones(3), np.ones(3))
    assert not e.any() and unplaced == 0.0


@given(
    st.floats(0, 1e6),
    arrays(float, 12, elements=st.floats(0, 1e3)),
    arrays(float, 12, elements=st.floats(0, 1e4)),
)
def test_allocation_respects_pool_and_caps(pool, weight, cap):
    e, unplaced = water_fill(pool, weight, cap)
    assert np.all(e >= 0) and unplaced >= -1e-9
    assert np.all(e <= cap * (1 + 1e-12))
    assert e.sum() <= pool * (1 + 1e-9) + 1e-9
    assert e.sum() + unplaced == pytest.approx(pool, rel=1e-9, abs=1e-6)
    assert not np.any(e[weight == 0])
    # water-filling never leaves energy unplaced while a weighted business has room
    if unplaced > 1e-6 * max(pool, 1):
        np.testing.assert_allclose(e[weight > 0], cap[weight > 0], rtol=1e-9, atol=1e-9)


def test_surplus_goes_only_to_eligible_businesses_or_back_to_the_reserve():
    weight = np.array([2.0, 1.0, 1.0])
    cap = np.array([10.0, 100.0, 100.0])
    # pro rata 50 / 25 / 25; the first caps at 10: 40 Wh of surplus
    energy, unplaced = pour_surplus(100.0, weight, cap, np.array([False, False, True]))
    np.testing.assert_allclose(energy, [10.0, 25.0, 65.0])
    assert unplaced == 0.0
    energy, unplaced = pour_surplus(100.0, weight, cap, None)
    np.testing.assert_allclose(energy, [10.0, 25.0, 25.0])
    assert unplaced == 40.0
    energy, unplaced = pour_surplus(100.0, weight, np.array([10.0, 100.0, 30.0]),
                                    np.array([True, True, True]))  # 30 caps too: water-fill
    np.testing.assert_allclose(energy, water_fill(100.0, weight, np.array([10.0, 100.0, 30.0]))[0])
