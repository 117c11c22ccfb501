"""Every staker's tokens: what each holds, has been paid and has lost, and how often it abstained.

Per-staker arrays (S,); the market books each settled round's gains and losses here
(:meth:`Ledger.pay`) and reads the holdings metrics (supply, stake Gini, wealth per policy),
which change only when it pays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lastwatt.model import fastpath
from lastwatt.model.metrics import BlockSums, gini
from lastwatt.model.stakes import gains_and_losses


@dataclass(frozen=True, slots=True)
class Holdings:
    """Metrics of the token holdings."""

    supply_tokens: float
    gini: float
    per_policy_tokens: np.ndarray  # (P,)


class Ledger:
    """Token accounts of the stakers, starting from their endowments ``wealth`` (S,)."""

    def __init__(self, wealth: np.ndarray, block_sums: BlockSums, threads: bool) -> None:
        n_stakers = len(wealth)
        self.wealth = wealth  # tokens held
        self.rewards = np.zeros(n_stakers)  # received, inflation included
        self.slashed = np.zeros(n_stakers)
        self.abstained = fastpath.counters(n_stakers)  # rounds abstained
        self.stake = np.zeros(n_stakers)  # bonded this round: 0 for abstaining / unbonding
        self.gain = np.empty(n_stakers)  # of the last settled round
        self.loss = np.empty(n_stakers)
        self._block_sums, self._threads = block_sums, threads
        self._sort_work = np.empty(n_stakers)
        self._holdings = fastpath.Deferred(self._measure, threads)

    def bond(self, bonded: np.ndarray) -> np.ndarray:
        """This round's stake per staker: all its tokens when bonded, else 0."""
        return np.multiply(self.wealth, bonded, out=self.stake)

    def pay(self, credit_per_token: np.ndarray, slash_per_token: np.ndarray,
            choice: np.ndarray) -> None:
        """Book a settled round: each staker gains the credit and loses the slash per token of
        stake over its slots (``choice`` (k, S))."""
        credit, slash = credit_per_token, slash_per_token

        def per_staker(*arrays: np.ndarray) -> None:  # elementwise: pieces agree with one pass
            choice, stake, gain, loss, wealth, rewards, slashed = arrays
            gains_and_losses(credit, slash, choice, stake, gain, loss)
            wealth += gain  # in two steps: no temporary of S values
            wealth -= loss
            rewards += gain
            slashed += loss

        accounts = [self.wealth, self.rewards, self.slashed]
        fastpath.split(per_staker, [choice, self.stake, self.gain, self.loss, *accounts],
                       self._threads)
        self._holdings.invalidate()

    def holdings(self) -> Holdings:
        """Supply, stake Gini and wealth per policy of the current holdings."""
        return self._holdings.get()

    def _measure(self) -> Holdings:
        supply = float(self.wealth.sum())
        gini_ = gini(self.wealth, self._sort_work, supply)
        return Holdings(supply, gini_, self._block_sums(self.wealth))
