"""From decisions to bonded stake: abstaining, switching with an unbonding delay, splitting.

A staker bonds all its tokens, split equally over its ``k`` chosen businesses, unless it
abstains this round or its stake is unbonding (Livepeer's unbonding period: after a switch the
stake sits idle, earning and risking nothing, for ``unbonding_rounds`` rounds). Choices are laid
out slots-first, ``(k, S)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lastwatt.model import fastpath


@dataclass(slots=True)
class Bonds:
    """Per-staker bonding state."""

    choice: np.ndarray  # (k, S) intp: business of each slot (meaningful where has_choice)
    has_choice: np.ndarray  # (S,) bool: bonded at least once
    unbond_left: np.ndarray  # (S,) int32: idle rounds still to sit out after this one
    spare: np.ndarray  # (k, S) intp: a buffer for the next round's wishes (allocated once)

    @classmethod
    def empty(cls, n_stakers: int, k: int) -> Bonds:
        """Nobody bonded yet."""
        return cls(
            choice=np.zeros((k, n_stakers), dtype=np.intp),
            has_choice=np.zeros(n_stakers, dtype=bool),
            unbond_left=np.zeros(n_stakers, dtype=np.int32),
            spare=np.zeros((k, n_stakers), dtype=np.intp),
        )

    def idle(self) -> np.ndarray:
        """Start a round: stakers still unbonding cannot decide or bond."""
        idle = self.unbond_left > 0
        np.subtract(self.unbond_left, 1, out=self.unbond_left, where=idle)
        return idle

    def apply(
        self,
        new_choice: np.ndarray,
        deciding: np.ndarray,
        unbonding_rounds: int,
        threads: bool = False,
    ) -> np.ndarray:
        """Take ``new_choice`` (k, S) for the deciding stakers; return who is bonded this round
        (``deciding`` itself when nobody can be unbonding). ``threads``: per staker, in
        pieces on two threads (:func:`lastwatt.model.fastpath.split`).

        A switch (another set of businesses than before) with ``unbonding_rounds = u > 0``
        leaves the stake idle this round and the next ``u - 1``.
        """
        if unbonding_rounds == 0 and not threads:  # the common small case, without detours
            np.copyto(self.choice, new_choice, where=deciding)
            self.has_choice |= deciding
            return deciding
        bonded = deciding if unbonding_rounds == 0 else np.empty_like(deciding)

        def stakers(*arrays: np.ndarray) -> None:
            new, now, bonded, choice, has_choice, unbond_left = arrays
            if unbonding_rounds > 0:
                changed = np.any(np.sort(new, axis=0) != np.sort(choice, axis=0), axis=0)
                switching = now & has_choice & changed
                unbond_left[switching] = unbonding_rounds - 1
                np.greater(now, switching, out=bonded)  # deciding and not switching
            np.copyto(choice, new, where=now)
            has_choice |= now

        state = [self.choice, self.has_choice, self.unbond_left]
        fastpath.split(stakers, [new_choice, deciding, bonded, *state], threads)
        return bonded


def bonded_stake_per_business(
    choice: np.ndarray, staker_stake_tokens: np.ndarray, n_businesses: int
) -> np.ndarray:
    """Stake (N,) bonded to each business; each staker's stake is split equally over its slots."""
    k = choice.shape[0]
    if k == 1:
        return np.bincount(choice[0], weights=staker_stake_tokens, minlength=n_businesses)
    weights = np.tile(staker_stake_tokens / k, k)
    return np.bincount(choice.ravel(), weights=weights, minlength=n_businesses)


def gains_and_losses(
    credit_per_token: np.ndarray,
    slash_per_token: np.ndarray,
    choice: np.ndarray,
    staker_stake_tokens: np.ndarray,
    gain: np.ndarray | None = None,
    loss: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Tokens (S,) each staker gains and loses from per-token rates (N,) over its slots,
    into ``gain`` and ``loss`` when given."""
    k, n_stakers = choice.shape
    gain = np.empty(n_stakers) if gain is None else gain
    loss = np.empty(n_stakers) if loss is None else loss
    if k == 1:  # a business is credited or slashed, never both: one gather, split by sign
        delta = np.take(credit_per_token - slash_per_token, choice[0], out=loss, mode="clip")
        delta *= staker_stake_tokens
        np.maximum(delta, 0.0, out=gain)
        return gain, np.subtract(gain, delta, out=delta)  # max(d, 0) - d == max(-d, 0)
    share = staker_stake_tokens / k
    np.multiply(credit_per_token[choice].sum(axis=0), share, out=gain)
    return gain, np.multiply(slash_per_token[choice].sum(axis=0), share, out=loss)
