"""Consideration sets on the replica axis (docs/replicas.md): each staker values only its c
candidate businesses (``population.consideration_set``, drawn per replica by its single run's
``agents.Consideration``), so values, noise and the softmax weights are ``(R, c, S)`` and a
chosen candidate row maps to its business through the replica's ``business`` (R, c, S).
Every business considered (c = N, candidate j is business j) keeps ``business`` None.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from lastwatt.model.market import Market
    from lastwatt.model.replica_state import ReplicaState


def stacked_business(markets: list[Market]) -> np.ndarray | None:
    """Each replica's candidate businesses (R, c, S), or None when all consider every one."""
    if markets[0]._consideration.all_businesses:
        return None
    return np.stack([m._consideration.business for m in markets]).astype(np.intp)


def to_business(business: np.ndarray | None, at: Any, block: slice,
                rows: np.ndarray) -> np.ndarray:
    """``Consideration.to_business``: the businesses (n, S_block) of candidate ``rows`` of the
    block's stakers in the replicas ``at``."""
    if business is None:
        return rows
    candidates = business[at][:, :, block]
    return np.take_along_axis(candidates, rows[:, None, :].astype(np.intp), axis=1)[:, 0]


def refresh(st: ReplicaState, rows: np.ndarray, changed: np.ndarray | None) -> None:
    """``Consideration.refresh`` of every cell in the replicas ``rows`` (R,) bool, or those with a
    ``changed`` business (R, N): decay * noise + base of each cell's business, in float32
    (cells of unchanged businesses come out as they were)."""
    assert st.business is not None
    at = np.flatnonzero(rows if changed is None else changed.any(axis=1))
    if at.size == 0:
        return
    business = st.business[at]
    replica = np.arange(at.size)[:, None, None]
    base = (st.decay[at] * st.rating[at] + st.news[at]).astype(np.float32)
    value = np.multiply(st.decay[at].astype(np.float32)[replica, business], st.noise[at])
    value += base[replica, business]
    st.value[at] = value
    st.soft_stale[at] = True


def payoff(business: np.ndarray | None, rows: Any, net: np.ndarray,
           block: slice) -> np.ndarray:
    """Each candidate's per-token payoff (n, c, S_block) in the replicas ``rows``, from the
    businesses' ``net`` (n, N): ``payoff_per_token[business[:, block]]``."""
    n_stakers = block.stop - block.start
    if business is None:
        return np.broadcast_to(net[:, :, None], (*net.shape, n_stakers))
    replica = np.arange(len(net))[:, None, None]
    return net[replica, business[rows][:, :, block]]
