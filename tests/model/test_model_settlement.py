"""Step 7: reward and slash arithmetic, per business and per staker, and inflation steering."""

import numpy as np
import pytest

from lastwatt.model.settlement import Inflation, settle_businesses
from lastwatt.model.stakes import gains_and_losses

# business 0: selected, R > 0; 1: selected, R < 0; 2: not selected; 3: offline (not selected)
RESULT = np.array([1000.0, -200.0, 0.0, 0.0])
STAKE = np.array([10.0, 4.0, 2.0, 5.0])
SELECTED = np.array([True, True, False, False])
AVAILABLE = np.array([True, True, True, False])


def settle(**overrides):
    kwargs = dict(
        settled=True,
        revenue_per_result=0.01,
        reward_share=0.5,
        slash_fraction=0.1,
        slash_unselected=True,
        slash_unavailable=False,
    )
    kwargs.update(overrides)
    return settle_businesses(RESULT, STAKE, SELECTED, AVAILABLE, **kwargs)


def test_reward_is_share_of_revenue_of_selected_positive_business():
    s = settle()
    np.testing.assert_allclose(s.revenue_tokens, [10.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(s.reward_tokens, [5.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(s.credit_per_token, [0.5, 0.0, 0.0, 0.0])


def test_slash_applies_to_selected_nonpositive_and_unselected_business_when_enabled():
    np.testing.assert_allclose(settle().slash_per_token, [0.0, 0.1, 0.1, 0.0])


def test_slash_spares_unselected_business_when_disabled():
    s = settle(slash_unselected=False)
    np.testing.assert_allclose(s.slash_per_token, [0.0, 0.1, 0.0, 0.0])


def test_offline_business_is_slashed_only_when_slash_unavailable():
    np.testing.assert_allclose(settle(slash_unavailable=True).slash_per_token, [0, 0.1, 0.1, 0.1])


def test_unsettled_round_pays_and_slashes_nothing():
    s = settle(settled=False)
    assert not s.reward_tokens.any() and not s.slash_per_token.any()
    assert not s.credit_per_token.any() and not s.minted_tokens.any()


def test_minted_tokens_go_pro_rata_to_stake_of_rewarded_businesses():
    result = np.array([1000.0, 500.0, 0.0, 0.0])
    s = settle_businesses(
        result,
        STAKE,
        SELECTED,
        AVAILABLE,
        settled=True,
        revenue_per_result=0.0,
        reward_share=0.5,
        slash_fraction=0.1,
        slash_unselected=True,
        slash_unavailable=False,
        minted_tokens=7.0,
    )
    np.testing.assert_allclose(s.minted_tokens, [5.0, 2.0, 0.0, 0.0])
    np.testing.assert_allclose(s.credit_per_token, [0.5, 0.5, 0.0, 0.0])


def test_stakers_get_pro_rata_rewards_and_lose_slash_fraction_of_their_stake():
    s = settle()
    choice = np.array([[0, 0, 1, 2, 3]])
    stake = np.array([6.0, 4.0, 4.0, 2.0, 5.0])  # bonded per staker; sums match STAKE
    gain, loss = gains_and_losses(s.credit_per_token, s.slash_per_token, choice, stake)
    np.testing.assert_allclose(gain, [3.0, 2.0, 0.0, 0.0, 0.0])  # reward 5 split 6:4
    np.testing.assert_allclose(loss, [0.0, 0.0, 0.4, 0.2, 0.0])


def test_split_stake_earns_and_loses_per_slot():
    s = settle()
    choice = np.array([[0], [1]])  # one staker, half on business 0, half on business 1
    gain, loss = gains_and_losses(s.credit_per_token, s.slash_per_token, choice, np.array([4.0]))
    assert gain[0] == pytest.approx(2 * 0.5) and loss[0] == pytest.approx(2 * 0.1)


def test_inflation_steers_toward_target_bonding_rate():
    infl = Inflation(rate=0.01, target_bonding_rate=0.5, change=0.002)
    assert infl.mint(200.0) == pytest.approx(2.0)
    infl.steer(bonded_tokens=20.0, token_supply=100.0)  # 20 % bonded < 50 %: mint more
    assert infl.rate == pytest.approx(0.012)
    infl.steer(bonded_tokens=90.0, token_supply=100.0)
    infl.steer(bonded_tokens=90.0, token_supply=100.0)
    assert infl.rate == pytest.approx(0.008)
    for _ in range(10):
        infl.steer(bonded_tokens=90.0, token_supply=100.0)
    assert infl.rate == 0.0
