"""Business entry and exit in the market (``world.presence``; docs/model.md, "A world that
moves"): which businesses are open each round, and what the stakers' beliefs and bonds do when
one enters or exits.

- A business that has not entered yet, or has exited, is *closed*: unavailable to the
  selection, the allocation, the oracles and every baseline (the market folds it into
  ``available``), and valued far below any belief by the stakers (``PublicBeliefs.leave``).
- On entry its belief restarts from a *neutral prior*, with no published news: by default
  (``world.entry_prior = "rating"``) what every business has at round 0, the rating q_i + e_i
  (its current true quality plus the shared rating error, clipped); ``"uninformed"``: the
  middle of the quality range, what a staker expects of a business it knows nothing about.
  Each staker adds its personal rating noise either way.
- Bonds on a closed business are returned: those stakers choose afresh at their next decision,
  without an unbonding delay.
"""

from __future__ import annotations

import numpy as np

from lastwatt.config.world import PresenceConfig
from lastwatt.model.agents import Consideration
from lastwatt.model.beliefs import PublicBeliefs
from lastwatt.model.decisions import Decisions
from lastwatt.model.stakes import Bonds
from lastwatt.model.world import QUALITY_MAX, QUALITY_MIN, open_rounds, present_at


class Presence:
    """Entry and exit rounds (N,) and the open mask of the latest round.

    ``rating_error`` (N,): the shared rating error of each business (zeros without one);
    ``uninformed``: the prior of every entrant, None: its rating.
    """

    def __init__(self, n_businesses: int, presence: list[PresenceConfig],
                 rating_error: np.ndarray, uninformed: float | None = None) -> None:
        self.tracked = bool(presence)  # nothing to do when no business is listed
        self.enters, self.exits = open_rounds(
            n_businesses, [(p.business, p.enters, p.exits) for p in presence]
        )
        self.open = present_at(0, self.enters, self.exits)
        self.entrants = np.flatnonzero(self.enters > 0)  # businesses entering after round 0
        self._rating_error, self._uninformed = rating_error, uninformed

    def closed(self) -> np.ndarray | None:
        """(N,) closed businesses; None when every business is open."""
        return None if self.open.all() else ~self.open

    def open_entrants(self) -> np.ndarray:
        """The entrants open now (for ``entrant_capture``)."""
        return self.entrants[self.open[self.entrants]]

    def update(self, round_index: int, quality: np.ndarray, beliefs: PublicBeliefs,
               consideration: Consideration, decisions: Decisions) -> np.ndarray:
        """The businesses open in ``round_index`` (N,); entries and exits reach the beliefs
        (neutral prior or closed), the cached values and the policies."""
        now = present_at(round_index, self.enters, self.exits)
        entered = np.flatnonzero(now & ~self.open)
        left = np.flatnonzero(self.open & ~now)
        if entered.size or left.size:
            prior = quality[entered] + self._rating_error[entered]
            if self._uninformed is not None:
                prior = np.full(entered.size, self._uninformed)
            beliefs.enter(entered, np.clip(prior, QUALITY_MIN, QUALITY_MAX))
            beliefs.leave(left)
            consideration.refresh(beliefs, np.concatenate([entered, left]))
            self.open = now
            decisions.absent = self.closed()
        return now

    def release(self, bonds: Bonds, decisions: Decisions) -> None:
        """Bonds on a closed business are returned: those stakers choose afresh (loyal ones
        too), without an unbonding delay."""
        on_closed = ~self.open[bonds.choice].all(axis=0) & bonds.has_choice
        if on_closed.any():
            bonds.has_choice[on_closed] = False
            decisions.release()
