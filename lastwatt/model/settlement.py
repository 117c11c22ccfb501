"""Step 7: rewards, slashing and optional inflation, per business and per token of stake.

- revenue_i = max(R_i, 0) * revenue_per_result;
- a selected business with R_i > 0 pays ``reward_share`` of its revenue to its stakers, pro
  rata to stake; optional inflation (Livepeer's per-round minting) goes to the same stakers,
  pro rata to stake;
- ``slash_fraction`` of the stake is burned when the business was selected and R_i <= 0, or
  was not selected and ``slash_unselected`` (an unavailable business, whose device is offline,
  only when ``slash_unavailable``);
- a round with no business pool settles nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class BusinessSettlement:
    revenue_tokens: np.ndarray  # (N,)
    reward_tokens: np.ndarray  # (N,) revenue share paid to stakers
    minted_tokens: np.ndarray  # (N,) inflation paid to stakers
    credit_per_token: np.ndarray  # (N,) reward + minted per bonded token
    slash_per_token: np.ndarray  # (N,) share of bonded stake burned


def settle_businesses(
    result: np.ndarray,
    stake_tokens: np.ndarray,
    selected: np.ndarray,
    available: np.ndarray,
    *,
    settled: bool,
    revenue_per_result: float,
    reward_share: float,
    slash_fraction: float,
    slash_unselected: bool,
    slash_unavailable: bool,
    minted_tokens: float = 0.0,
) -> BusinessSettlement:
    """Step 7 per business (N,): revenue of the results ``result``, the reward and the minted
    tokens paid to the stakers of the rewarded businesses, and the credit and slash per token
    of stake. ``settled`` False (a round without a pool): revenue only, nothing paid or
    slashed. The keyword terms are the config's (``Market`` passes them all)."""
    revenue = np.maximum(result, 0.0)
    revenue *= revenue_per_result
    n = len(revenue)
    if not settled:
        return BusinessSettlement(revenue, np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n))
    positive = result > 0
    rewarded = selected & positive & (stake_tokens > 0)
    reward = revenue * reward_share
    reward *= rewarded
    earned = reward
    minted = np.zeros(n)
    if minted_tokens > 0:
        rewarded_stake = stake_tokens[rewarded].sum()
        if rewarded_stake > 0:
            np.divide(minted_tokens * stake_tokens, rewarded_stake, out=minted, where=rewarded)
            earned = reward + minted
    credit = np.divide(earned, stake_tokens, out=np.zeros(n), where=rewarded)
    punished = selected & ~positive  # result is finite: not positive means R_i <= 0
    if slash_unselected:
        punished |= ~selected if slash_unavailable else ~selected & available
    return BusinessSettlement(revenue, reward, minted, credit, punished * slash_fraction)


@dataclass(slots=True)
class Inflation:
    """Livepeer-style per-round inflation steered toward a target bonding rate.

    After every settled round the rate moves by ``change`` up when the bonded share of the
    supply is below target, down otherwise (never below 0). The market only creates one when
    ``mechanism.inflation_rate > 0``.
    """

    rate: float
    target_bonding_rate: float
    change: float

    def mint(self, token_supply: float) -> float:
        """Tokens minted this round for a supply of ``token_supply``."""
        return self.rate * token_supply

    def steer(self, bonded_tokens: float, token_supply: float) -> None:
        """Move the rate toward the target bonding rate (after a settled round)."""
        bonding_rate = bonded_tokens / token_supply if token_supply > 0 else 0.0
        step = self.change if bonding_rate < self.target_bonding_rate else -self.change
        self.rate = max(self.rate + step, 0.0)
