"""Resumable state of a run: everything that changes from round to round, pickled whole.

A checkpoint is taken every ``output.checkpoint_rounds`` rounds, after the journal was
flushed: the market (with its numpy Generators, which pickle with their state), the engine's
state (its meter book and device bookkeeping; the wiring to the environment, the clock and
the transport is rebuilt), and with in-process mock devices their device models and where
each one's metering timer stands, or the analytic headless devices' state (counters, relays,
quotas, noise Generator; no event is pending between rounds). Whole objects are pickled
rather than chosen fields, so a field added to the market or the engine is checkpointed
without touching this module.
Everything computed up front from the seed (weather, demand, the split) is recomputed.
Resuming rebuilds the run as at its start, then swaps this state in (docs/storage.md).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lastwatt.engine import Engine
from lastwatt.errors import InputError
from lastwatt.storage.journal import atomic_write
from lastwatt.transport.analytic import AnalyticState, AnalyticTransport
from lastwatt.transport.memory import MemoryTransport

CHECKPOINT = "checkpoint.pkl"
# 2: the market composed of Ledger, fastpath caches and site (issue 12); 3: analytic
# headless devices (issue 11); 4: the market's Presence (entry and exit) and Adversaries (issue 9);
# 5: the engine's device-quota and availability caches (issue 11)
FORMAT = 5
# the engine's wiring, rebuilt on resume; every other attribute is state and is pickled
WIRING = frozenset({"cfg", "env", "clock", "market", "production_wh", "split", "devices",
                    "transport", "record", "draw_factor", "first_round"})


@dataclass(slots=True)
class Checkpoint:
    run_id: str
    rounds: int  # rounds completed
    market: Any
    engine: dict[str, Any]
    mocks: list[tuple[str, Any, float | None]] | None  # (device, model, next tick) in queue order
    rejected: dict[str, int]
    analytic: AnalyticState | None = None  # the analytic headless devices (issue 11)
    format: int = FORMAT


def _mock_timers(transport: MemoryTransport) -> list[tuple[str, Any, float | None]]:
    """Each mock device's model and pending metering tick, in the order SimPy would fire them
    (same-time ticks draw metering noise from one shared Generator: order matters)."""
    env = next(iter(transport.devices.values())).env
    queued = {id(event): (t, eid) for t, _, eid, event in env._queue}
    ticking, asleep = [], []
    for device_id, mock in transport.devices.items():
        key = queued.get(id(mock.process.target))
        if key is None:
            asleep.append((device_id, mock.model, None))
        else:
            ticking.append((key, (device_id, mock.model, key[0])))
    return asleep + [entry for _, entry in sorted(ticking, key=lambda e: e[0])]


def save(run_dir: Path, run_id: str, rounds: int, engine: Engine) -> None:
    transport = engine.transport
    mocks = _mock_timers(transport) if isinstance(transport, MemoryTransport) else None
    state = {k: v for k, v in vars(engine).items() if k not in WIRING}
    analytic = transport.state if isinstance(transport, AnalyticTransport) else None
    cp = Checkpoint(run_id, rounds, engine.market, state, mocks, dict(transport.rejected),
                    analytic)
    # no fsync (see FileRecorder.write_run_json): atomic against a killed process
    atomic_write(run_dir / CHECKPOINT, pickle.dumps(cp, protocol=pickle.HIGHEST_PROTOCOL),
                 fsync=False)


def load(run_dir: Path, run_id: str) -> Checkpoint | None:
    path = run_dir / CHECKPOINT
    if not path.exists():
        return None  # killed before the first checkpoint: the run starts over
    try:
        cp = pickle.loads(path.read_bytes())
    except Exception as err:  # a damaged or foreign file
        raise InputError(str(path), f"cannot read the checkpoint: {err}",
                         "rerun with --overwrite instead of --resume") from None
    if not isinstance(cp, Checkpoint) or cp.format != FORMAT or cp.run_id != run_id:
        raise InputError(str(path), "checkpoint of another run or LastWatt version",
                         "rerun with --overwrite instead of --resume")
    return cp


def restore(engine: Engine, cp: Checkpoint) -> None:
    """Swap the checkpointed state into a freshly built engine (and its mock devices)."""
    for k, v in cp.engine.items():
        setattr(engine, k, v)
    engine.first_round = cp.rounds
    transport = engine.transport
    transport.rejected.update(cp.rejected)
    if cp.mocks is not None and isinstance(transport, MemoryTransport):
        for device_id, model, next_tick in cp.mocks:  # queue order: same-time ticks stay so
            transport.devices[device_id].resume(model, next_tick)
    if cp.analytic is not None and isinstance(transport, AnalyticTransport):
        transport.state = cp.analytic
