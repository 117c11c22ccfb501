"""Step 2: the priority split of production (community > households > reserve > businesses)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lastwatt.errors import InputError
from lastwatt.model.split import split_energy

energy = st.floats(0, 1e6, allow_nan=False)


def test_split_serves_all_demand_and_leaves_rest_to_businesses():
    s = split_energy(100.0, 20.0, 30.0, 0.1, 5.0)
    assert (s.community_wh, s.household_wh, s.reserve_wh) == (20.0, 30.0, 15.0)
    assert s.business_pool_wh == pytest.approx(35.0)
    assert s.unserved_community_wh == 0 and s.unserved_household_wh == 0


def test_shortfall_serves_community_first_and_records_unserved():
    s = split_energy(50.0, 20.0, 40.0, 0.1, 0.0)
    assert s.community_wh == 20.0
    assert s.household_wh == 30.0
    assert s.unserved_household_wh == 10.0
    assert s.reserve_wh == 0.0 and s.business_pool_wh == 0.0


def test_shortfall_below_community_demand_leaves_households_unserved():
    s = split_energy(10.0, 20.0, 40.0, 0.0, 0.0)
    assert s.community_wh == 10.0 and s.unserved_community_wh == 10.0
    assert s.household_wh == 0.0 and s.unserved_household_wh == 40.0


def test_reserve_only_takes_what_the_loads_leave():
    s = split_energy(100.0, 50.0, 40.0, 0.2, 0.0)  # reserve target 20, only 10 left
    assert s.reserve_wh == 10.0 and s.business_pool_wh == 0.0


def test_split_is_vectorised_over_rounds():
    s = split_energy(np.array([0.0, 100.0]), 20.0, 30.0, 0.0, 0.0)
    np.testing.assert_allclose(s.business_pool_wh, [0.0, 50.0])
    np.testing.assert_allclose(s.unserved_community_wh, [20.0, 0.0])


def test_negative_production_is_an_input_error_naming_the_field():
    with pytest.raises(InputError, match="production_wh"):
        split_energy(-1.0, 0.0, 0.0, 0.0, 0.0)


@given(energy, energy, energy, st.floats(0, 1), energy)
def test_split_sums_to_production_and_nothing_is_negative(prod, com, hh, frac, res):
    s = split_energy(prod, com, hh, frac, res)
    parts = [s.community_wh, s.household_wh, s.reserve_wh, s.business_pool_wh]
    assert sum(parts) == pytest.approx(prod, rel=1e-9, abs=1e-6)
    assert min(*parts, s.unserved_community_wh, s.unserved_household_wh) >= 0
    assert s.community_wh + s.unserved_community_wh == pytest.approx(com)
    assert s.household_wh + s.unserved_household_wh == pytest.approx(hh)
