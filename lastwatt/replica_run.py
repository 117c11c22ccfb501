"""Headless runs of many seeds of one config at once: one :class:`ReplicaMarket`, one engine and
headless devices per seed, all in one SimPy environment (docs/replicas.md).

Every replica's weather, demand, split, devices and recorders are its single run's
(:func:`lastwatt.simulation.run_simulation`); only the market is shared. Round k is planned for
every replica at the first engine's call (each pool is known in advance), and the engines wait
at the end of the round until every replica's meters are in, then settle together. So each
replica's tables are byte-identical to ``lastwatt run`` with its seed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import simpy

from lastwatt import __version__, replica_devices
from lastwatt.config import Config
from lastwatt.demand import business_load_factor, demand_series
from lastwatt.engine import Clock, Engine
from lastwatt.model.contract import Outcome, Plan
from lastwatt.model.market import Market
from lastwatt.model.replica_support import unsupported
from lastwatt.model.replicas import ReplicaMarket
from lastwatt.model.split import split_energy
from lastwatt.replica_engine import run_vectorised
from lastwatt.result import RunMeta
from lastwatt.rng import streams
from lastwatt.simulation import RunOutput, headless_transport, run_id_of
from lastwatt.site import site
from lastwatt.storage.files import FileRecorder, prepare_run_dir
from lastwatt.summary import summarise
from lastwatt.weather import production_series


def batchable(cfg: Config) -> bool:
    """Whether the seeds of ``cfg`` can run as one batch (else: one seed at a time)."""
    return unsupported(cfg) is None and not cfg.time.realtime


def vectorised(cfg: Config) -> bool:
    """Whether a batch of ``cfg`` runs as one round loop (:mod:`lastwatt.replica_engine`):
    virtual time with the analytic headless devices; else one engine per seed, as below."""
    return batchable(cfg) and replica_devices.batched(cfg)


class _Batch:
    """The shared market and the round in flight: the plan, the meters, the outcome."""

    def __init__(self, cfg: Config, seeds: Sequence[int], pools: np.ndarray,
                 env: simpy.Environment) -> None:
        self.market = ReplicaMarket(cfg, seeds)
        self.pools, self.env = pools, env  # (R, rounds)
        self.round = -1
        self.plan: Any = None
        self.metered = np.zeros((len(seeds), self.market.n_businesses))
        self.waiting = 0
        self.settled = env.event()
        self.outcome: Any = None

    def plan_round(self, k: int, round_s: float, draw_factor: np.ndarray | None) -> None:
        if k != self.round:
            self.round = k
            self.plan = self.market.plan(k, self.pools[:, k], round_s, draw_factor)

    def submit(self, r: int, metered_wh: np.ndarray) -> simpy.Event:
        """Replica ``r``'s meters; the last one settles the round for all."""
        self.metered[r] = metered_wh
        self.waiting += 1
        event = self.settled
        if self.waiting == len(self.metered):
            self.outcome = self.market.settle(self.plan, self.metered)
            self.waiting, self.settled = 0, self.env.event()
            event.succeed()
        return event


class _ReplicaView:
    """Replica ``r`` of the batch, with the ``Market`` attributes the engine and run read."""

    def __init__(self, batch: _Batch, r: int) -> None:
        self.batch, self.r = batch, r
        market = batch.market
        self.n_businesses, self.n_stakers = market.n_businesses, market.n_stakers
        self.business_names, self.policy_names = market.business_names, market.policy_names

    def plan(self, round_index: int, business_pool_wh: float, round_s: float,
             available: np.ndarray | None = None,
             draw_factor: np.ndarray | None = None) -> Plan:
        if available is not None and not np.all(available):
            raise RuntimeError("a replica batch runs in-process devices, which are always online")
        if business_pool_wh != self.batch.pools[self.r, round_index]:
            raise RuntimeError("a replica's pool differs from its precomputed split")
        self.batch.plan_round(round_index, round_s, draw_factor)
        return cast(Plan, self.batch.plan.replica(self.r))

    def outcome(self) -> Outcome:
        out, r = self.batch.outcome, self.r
        return Outcome(
            out.performance[r], out.result[r], out.revenue_tokens[r], out.reward_tokens[r],
            out.slashed_tokens[r], {k: float(v[r]) for k, v in out.scalars.items()},
            {k: v[r] for k, v in out.policy.items()},
        )

    def stakers_table(self) -> Any:
        return self.batch.market.stakers_table(self.r)


class _ReplicaEngine(Engine):
    def _settled(self, plan: Plan, metered_wh: np.ndarray):
        view = cast(_ReplicaView, self.market)
        yield view.batch.submit(view.r, metered_wh)
        return view.outcome()


class _Replica:
    """One seed's run around the shared market: its data path, engine and file recorder."""

    def __init__(self, cfg: Config, out_dir: Path | None) -> None:
        self.cfg, self.run_id = cfg, run_id_of(cfg)
        self.run_dir = None if out_dir is None else Path(out_dir) / self.run_id
        if self.run_dir is not None:
            prepare_run_dir(self.run_dir)
        self.rs = streams(cfg.seed)
        self.production_wh = production_series(cfg, self.rs.weather)
        demand = demand_series(cfg, self.rs.demand)
        self.split = split_energy(self.production_wh, demand.community_wh,
                                  demand.household_wh, cfg.demand.reserve_fraction,
                                  cfg.demand.reserve_w * cfg.time.round_s / 3600.0)
        self.site = site(cfg, self.rs.businesses)

    def engine(self, env: simpy.Environment, view: _ReplicaView) -> _ReplicaEngine:
        cfg, devices = self.cfg, self.site.devices
        clock = Clock(env, cfg.time.start.timestamp(), False, cfg.time.speed)
        load = business_load_factor(cfg)
        transport = headless_transport(cfg, env, clock, devices, self.rs.devices, load, False)
        self.files = FileRecorder(self.run_dir, cfg.output.format)
        meta = RunMeta(self.run_id, cfg.site, cfg.scenario, cfg.seed, view.business_names,
                       view.policy_names, devices.dialects, cfg.model_dump(mode="json"))
        self.files.open(meta, 0)
        self.view = view
        self.engine_ = _ReplicaEngine(
            cfg, env, clock, cast(Market, view), self.production_wh, self.split, devices,
            transport, self.files.record, 0.0, None if np.all(load == 1.0) else load,
        )
        return self.engine_

    def finish(self, wall_s: float) -> RunOutput:
        """Tables, summary and (with a run folder) the files, as ``run_simulation`` ends."""
        engine, cfg = self.engine_, self.cfg
        engine.transport.close()
        stakers = self.view.stakers_table()
        tables = self.files.build_tables(stakers)
        summary = summarise(tables["rounds"], tables["stakers"])
        summary.update(
            version=__version__, run_id=self.run_id, seed=cfg.seed,
            rounds_completed=len(tables["rounds"]), rounds_configured=cfg.rounds,
            wall_time_s=round(wall_s, 3), max_lag_s=engine.max_lag_s,
            rejected=engine.rejected(), meter=dict(engine.book.counts),
            no_off_timer=sorted(engine.no_off_timer), read_timeouts=engine.read_timeouts,
            error=None,
        )
        self.files.close(summary, stakers)
        return RunOutput(self.run_dir, summary, self.files.tables)


def run_replicas(cfg: Config, seeds: Sequence[int],
                 out_dir: Path | None = None) -> list[RunOutput]:
    """``run_simulation(cfg.with_overrides(seed=s), out_dir)`` for every seed, as one batch
    (headless, in-process devices; ``batchable(cfg)`` must hold). Wall time is shared evenly."""
    if not batchable(cfg):
        raise ValueError(f"not batchable: {unsupported(cfg) or 'time.realtime'}")
    if vectorised(cfg):
        return run_vectorised(cfg, seeds, out_dir)
    wall0 = time.perf_counter()
    replicas = [_Replica(cfg.with_overrides(seed=s), out_dir) for s in seeds]
    env = simpy.Environment()
    pools = np.stack([r.split.business_pool_wh for r in replicas])
    batch = _Batch(cfg, list(seeds), pools, env)
    engines = [rep.engine(env, _ReplicaView(batch, i)) for i, rep in enumerate(replicas)]
    for engine in engines:
        engine.transport.start(engine.on_reading, engine.on_status)
    done = [env.process(engine.rounds_process()) for engine in engines]
    env.run(until=env.all_of(done))
    wall_s = (time.perf_counter() - wall0) / len(replicas)
    return [rep.finish(wall_s) for rep in replicas]
