"""Step 7: rewards, slashing and optional inflation, per business and per token of stake.

- revenue_i = max(R_i, 0) * revenue_per_result;
- a selected business with R_i > 0 pays ``reward_share`` of its revenue to its stakers, pro
  rata to stake; optional inflation (Livepeer's per-round minting) goes to the same stakers,
  pro rata to stake;
- ``slash_fraction`` of the stake is burned when the business was selected and R_i <= 0;
  ``slash_unselected x slash_fraction`` when it was not selected (an unavailable business, whose
  device is offline, only when ``slash_unavailable``);
- revenue mode: revenue_i is what business i paid for its metered energy; bribery: a named
  business pays its stakers a share of its revenue (its metered energy at its value per kWh),
  whatever its R_i;
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
    credit_per_token: np.ndarray  # (N,) reward + minted + bribe per bonded token
    slash_per_token: np.ndarray  # (N,) share of bonded stake burned
    bribe_tokens: np.ndarray  # (N,) bribes paid to stakers


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
    slash_unselected: float,
    slash_unavailable: bool,
    minted_tokens: float = 0.0,
    revenue_tokens: np.ndarray | None = None,
    bribe_tokens: np.ndarray | None = None,
) -> BusinessSettlement:
    """Step 7 per business (N,): revenue of the results ``result``, the reward and the minted
    tokens paid to the stakers of the rewarded businesses, and the credit and slash per token
    of stake. ``settled`` False (a round without a pool): revenue only, nothing paid or
    slashed. The keyword terms are the config's (``Market`` passes them all);
    ``revenue_tokens`` (revenue mode): what the businesses paid, replacing
    max(R, 0) x revenue_per_result; ``bribe_tokens``: paid to the stakers on top, whatever R."""
    revenue = _revenue(result, revenue_per_result, revenue_tokens)
    n = len(revenue)
    if not settled:
        return BusinessSettlement(revenue, *(np.zeros(n) for _ in range(5)))
    positive = result > 0
    staked = stake_tokens > 0
    rewarded = selected & positive & staked
    reward = revenue * reward_share
    reward *= rewarded
    minted = _inflation_shares(minted_tokens, stake_tokens, rewarded)
    bribe = np.zeros(n) if bribe_tokens is None else bribe_tokens * staked
    earned = reward + minted + bribe
    credit = np.divide(earned, stake_tokens, out=np.zeros(n), where=staked)
    slash = slash_rates(selected, positive, available, slash_fraction, slash_unselected,
                        slash_unavailable)
    return BusinessSettlement(revenue, reward, minted, credit, slash, bribe)


def _revenue(result: np.ndarray, revenue_per_result: float,
             revenue_tokens: np.ndarray | None) -> np.ndarray:
    """Minted mode: max(R, 0) x revenue_per_result; revenue mode: what was paid."""
    if revenue_tokens is not None:
        return np.asarray(revenue_tokens, dtype=float)
    revenue: np.ndarray = np.maximum(result, 0.0)
    revenue *= revenue_per_result
    return revenue


def _inflation_shares(minted_tokens: float, stake_tokens: np.ndarray,
                      rewarded: np.ndarray) -> np.ndarray:
    """The round's minted tokens (N,), pro rata to the stake of the rewarded businesses."""
    minted = np.zeros(len(stake_tokens))
    if minted_tokens > 0:
        rewarded_stake = stake_tokens[rewarded].sum()
        if rewarded_stake > 0:
            np.divide(minted_tokens * stake_tokens, rewarded_stake, out=minted, where=rewarded)
    return minted


def slash_rates(selected: np.ndarray, positive: np.ndarray, available: np.ndarray,
                slash_fraction: float, slash_unselected: float,
                slash_unavailable: bool) -> np.ndarray:
    """Share of bonded stake burned (N,): ``slash_fraction`` for a selected business with
    R <= 0, ``slash_unselected x slash_fraction`` for an unselected one (an offline one only
    with ``slash_unavailable``)."""
    slash: np.ndarray = (selected & ~positive) * slash_fraction  # result is finite: R_i <= 0
    if slash_unselected > 0:
        unselected = ~selected if slash_unavailable else ~selected & available
        slash[unselected] = slash_fraction * float(slash_unselected)
    return slash


def energy_payments(metered_wh: np.ndarray, price_per_kwh: float) -> np.ndarray:
    """Tokens (N,) each business pays for its metered energy (revenue mode)."""
    return np.asarray(metered_wh, dtype=float) * (price_per_kwh / 1000.0)


def bribes(metered_wh: np.ndarray, value_per_kwh: float, share: float,
           business: int) -> np.ndarray:
    """Tokens (N,) the bribing ``business`` pays its stakers: ``share`` of its revenue, its
    metered energy at ``value_per_kwh`` (zero for every other business)."""
    out = np.zeros(len(metered_wh))
    out[business] = share * float(metered_wh[business]) * (value_per_kwh / 1000.0)
    return out


TOKEN_FLOWS = ("rewards_tokens", "slashed_tokens", "minted_tokens", "bribes_tokens",
               "paid_in_tokens", "treasury_tokens", "created_tokens")


def token_flows(biz: BusinessSettlement, stake_tokens: np.ndarray,
                revenue_mode: bool) -> dict[str, float]:
    """A settled round's token flows (``TOKEN_FLOWS``). The stakers' supply moves by
    rewards + minted + bribes - slashed (slashes are burned); where the credits come from:
    rewards + minted + bribes + treasury = created + paid_in (businesses' payments and bribes;
    the treasury keeps what the stakers are not paid of the payments)."""
    rewards, minted = float(biz.reward_tokens.sum()), float(biz.minted_tokens.sum())
    bribed = float(biz.bribe_tokens.sum())
    paid = float(biz.revenue_tokens.sum()) if revenue_mode else 0.0
    values = (rewards, float((biz.slash_per_token * stake_tokens).sum()), minted, bribed,
              paid + bribed, paid - rewards if revenue_mode else 0.0,
              minted if revenue_mode else minted + rewards)
    return dict(zip(TOKEN_FLOWS, values, strict=True))


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
