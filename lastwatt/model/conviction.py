"""Stake-time (conviction-like) selection weight: a bond that stays grows its weight.

Per staker, c_t = a c_{t-1} + stake_t while it stays bonded to the same businesses, with
a = 0.5 ** (1 / half_life) per round with a business pool; a staker that moves its bond,
abstains or sits out an unbonding period starts again from its stake (it loses what it had
accrued). A business's selection weight is the conviction of its stakers, split over their
slots like stake. Pure functions over (S,) and (k, S) arrays, plus a small holder of the
last round's state.
"""

from __future__ import annotations

import numpy as np


def decay_factor(half_life_rounds: float) -> float:
    """a such that accrued conviction halves in ``half_life_rounds`` rounds."""
    return float(0.5 ** (1.0 / half_life_rounds))


def stayed(choice: np.ndarray, bonded: np.ndarray, last_choice: np.ndarray,
           last_bonded: np.ndarray) -> np.ndarray:
    """(S,) bool: bonded now and last round, to the same set of businesses (k, S)."""
    if choice.shape[0] == 1:
        same = choice[0] == last_choice[0]
    else:
        same = np.all(np.sort(choice, axis=0) == np.sort(last_choice, axis=0), axis=0)
    return bonded & last_bonded & same


def accrue(conviction: np.ndarray, stake_tokens: np.ndarray, kept: np.ndarray,
           a: float) -> np.ndarray:
    """A new (S,) array: a c + stake where the bond was kept, the stake alone elsewhere."""
    return np.where(kept, a * conviction + stake_tokens, stake_tokens)


class Conviction:
    """The stakers' conviction between rounds (S,), with the bonds it was accrued on."""

    def __init__(self, n_stakers: int, k: int, half_life_rounds: float) -> None:
        self.a = decay_factor(half_life_rounds)
        self.value = np.zeros(n_stakers)
        self._choice = np.zeros((k, n_stakers), dtype=np.intp)
        self._bonded = np.zeros(n_stakers, dtype=bool)

    def update(self, choice: np.ndarray, bonded: np.ndarray,
               stake_tokens: np.ndarray) -> np.ndarray:
        """Accrue one round with a pool; the stakers' conviction (S,)."""
        kept = stayed(choice, bonded, self._choice, self._bonded)
        self.value = accrue(self.value, stake_tokens, kept, self.a)
        self._choice = choice.copy()
        self._bonded = bonded.copy()
        return self.value
