"""The vectorised batch engine: R headless runs of one config as ONE round loop over (R, .)
arrays (docs/replicas.md, "The vectorised batch engine").

For virtual time with the analytic headless devices there is nothing for SimPy to schedule
but the round boundaries, so no environment: per round, the shared
:class:`~lastwatt.model.replicas.ReplicaMarket` plans every replica, the devices of every
replica meter it (:class:`~lastwatt.replica_devices.ReplicaDevices`, each replica's draws from
its own seed's ``devices`` stream) and the market settles it. The summaries are built from the
rounds as they pass (:class:`~lastwatt.replica_summary.SummaryColumns`); with ``out_dir`` each
replica's rounds also go to its own :class:`~lastwatt.storage.files.FileRecorder`, as
:class:`~lastwatt.engine.Engine` hands them over, so its run folder is ``lastwatt run``'s.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lastwatt import __version__
from lastwatt.config import Config
from lastwatt.demand import business_load_factor, demand_series
from lastwatt.meters import REJECTS, MeterBook
from lastwatt.model.replica_settle import ReplicaOutcome
from lastwatt.model.replicas import ReplicaMarket, ReplicaPlan
from lastwatt.model.split import split_energy
from lastwatt.replica_devices import ReplicaDevices, device_shares_rows, per_business_rows
from lastwatt.replica_summary import SPLIT_ENERGY, SummaryColumns
from lastwatt.result import RoundResult, RunMeta
from lastwatt.rng import streams
from lastwatt.simulation import RunOutput, run_id_of
from lastwatt.site import Devices, site
from lastwatt.storage.files import FileRecorder, prepare_run_dir
from lastwatt.weather import production_series


@dataclass(slots=True)
class _Seed:
    """One seed's data path before round 0 (its single run's code)."""

    cfg: Config
    run_id: str
    columns: dict[str, np.ndarray]  # the rounds table's weather and split columns (Wh)
    devices: Devices
    rng: np.random.Generator  # its devices' noise
    energy_wh: dict[str, float]  # the split's column sums (summary)


def _prepare(cfg: Config) -> _Seed:
    rs = streams(cfg.seed)
    production_wh = production_series(cfg, rs.weather)
    demand = demand_series(cfg, rs.demand)
    split = split_energy(production_wh, demand.community_wh, demand.household_wh,
                         cfg.demand.reserve_fraction,
                         cfg.demand.reserve_w * cfg.time.round_s / 3600.0)
    columns = {f"{k}_wh": np.asarray(v, dtype=np.float64) for k, v in (
        ("production", production_wh),
        *((k, getattr(split, f"{k}_wh")) for k in (*SPLIT_ENERGY[1:], "reserve")))}
    energy = {k: float(columns[f"{k}_wh"].sum()) for k in SPLIT_ENERGY}
    return _Seed(cfg, run_id_of(cfg), columns, site(cfg, rs.businesses).devices, rs.devices,
                 energy)


class _Files:
    """Each replica's run folder, fed the RoundResults its single run's engine makes."""

    def __init__(self, seeds: list[_Seed], market: ReplicaMarket, out_dir: Path) -> None:
        self.seeds, self.recorders = seeds, []
        for s in seeds:
            run_dir = Path(out_dir) / s.run_id
            prepare_run_dir(run_dir)
            files = FileRecorder(run_dir, s.cfg.output.format)
            files.open(RunMeta(s.run_id, s.cfg.site, s.cfg.scenario, s.cfg.seed,
                               market.business_names, market.policy_names,
                               s.devices.dialects, s.cfg.model_dump(mode="json")), 0)
            self.recorders.append(files)
        d = len(seeds[0].devices.ids)
        self.fixed = {"online": np.ones(d, dtype=np.int8), "rejected_readings": np.zeros(d)}

    def record(self, k: int, plan: ReplicaPlan, out: ReplicaOutcome, row: dict[str, np.ndarray],
               dev: dict[str, np.ndarray]) -> None:
        cfg = self.seeds[0].cfg
        t0 = k * cfg.time.round_s
        start, end = cfg.time.start.timestamp() + t0 / 1.0, cfg.time.start.timestamp() + (
            t0 + cfg.time.round_s) / 1.0  # engine.Clock.ts in virtual time
        names = list(row)
        values = np.stack([row[c] for c in names], axis=1).tolist()
        for r, files in enumerate(self.recorders):
            seed = self.seeds[r]
            business = {
                "stake_tokens": plan.stake_tokens[r], "selected": plan.selected[r].astype(np.int8),
                "planned_wh": plan.planned_wh[r], "metered_wh": dev["metered"][r],
                "performance": out.performance[r], "result": out.result[r],
                "revenue_tokens": out.revenue_tokens[r], "reward_tokens": out.reward_tokens[r],
                "slashed_tokens": out.slashed_tokens[r],
            }
            device = {"business": seed.devices.business, "quota_wh": dev["quota_wh"][r],
                      "metered_wh": dev["round_wh"][r], "power_w": dev["power_w"][r],
                      "on": dev["on"][r].astype(np.float64), **self.fixed}
            files.record(RoundResult(
                k, start, end, dict(zip(names, values[r], strict=True)),
                plan.order[r, : plan.n_selected[r]].tolist(), business,
                {p: v[r] for p, v in out.policy.items()}, seed.devices.ids, device))


class VectorBatch:
    """R seeds of one config, one round loop (``vectorised(cfg)`` must hold)."""

    def __init__(self, cfg: Config, seeds: Sequence[int], out_dir: Path | None) -> None:
        self.cfg = cfg
        self.seeds = [_prepare(cfg.with_overrides(seed=s)) for s in seeds]
        self.market = ReplicaMarket(cfg, list(seeds))
        self.pools = np.stack([s.columns["business_pool_wh"] for s in self.seeds])
        self.reserve = np.stack([s.columns.pop("reserve_wh") for s in self.seeds])
        # the other columns: only the run folders need them round by round
        self.split_columns = None if out_dir is None else {
            name: np.stack([s.columns[name] for s in self.seeds]) for name in self.seeds[0].columns}
        for s in self.seeds:  # a year per seed: keep only the stacked arrays
            s.columns = {}
        load = business_load_factor(cfg)
        self.draw_factor = None if np.all(load == 1.0) else load
        devs = self.seeds[0].devices
        self.business = devs.business
        self.devices = ReplicaDevices(
            cfg, devs.business, np.stack([s.devices.max_power_w for s in self.seeds]), load,
            [s.rng for s in self.seeds])
        # quotas as device_quotas_wh at speed 1 (x / 1.0 is x): planned energy times the share
        self.share = device_shares_rows(devs.business, self.devices.max_power_w,
                                        self.market.n_businesses)
        self.columns = SummaryColumns(cfg.rounds, self.pools > 0, self.market.n_businesses)
        self.files = None if out_dir is None else _Files(self.seeds, self.market, out_dir)

    def run(self) -> None:
        round_s = self.cfg.time.round_s
        for k in range(self.cfg.rounds):
            draw = None if self.draw_factor is None else self.draw_factor[k]
            plan = self.market.plan(k, self.pools[:, k], round_s, draw)
            quota = plan.planned_wh[:, self.business] * self.share
            round_wh, on, power_w = self.devices.meter(k, quota)
            metered = per_business_rows(round_wh, self.business, self.market.n_businesses)
            out = self.market.settle(plan, metered)
            row = self._row(k, plan, out, metered)
            self.columns.add(k, row, out.performance, plan.selected)
            if self.files is not None:
                dev = {"quota_wh": quota, "round_wh": round_wh, "power_w": power_w, "on": on,
                       "metered": metered}
                self.files.record(k, plan, out, row, dev)

    def _row(self, k: int, plan: ReplicaPlan, out: ReplicaOutcome,
             metered: np.ndarray) -> dict[str, np.ndarray]:
        """The rounds table's columns of round ``k`` (R,), as ``Engine._result`` fills them."""
        row = {"reserve_wh": self.reserve[:, k] + plan.unplaced_wh,
               "planned_wh": plan.planned_wh.sum(axis=1), "metered_wh": metered.sum(axis=1),
               **out.scalars}
        if self.split_columns is not None:  # the run folders' other columns
            zero = np.zeros(len(self.seeds))
            row.update({name: v[:, k].astype(np.float64)
                        for name, v in self.split_columns.items()})
            row["lag_s"] = zero
            row.update({f"rejected_{c}": zero for c in REJECTS})
        return row

    def outputs(self, wall_s: float) -> list[RunOutput]:
        """Every replica's summary (and closed run folder), as ``run_simulation`` ends."""
        outs = []
        d = len(self.business)
        meter = dict(MeterBook(self.seeds[0].devices.ids).counts, booked=d * self.cfg.rounds)
        for r, seed in enumerate(self.seeds):
            stakers = self.market.stakers_table(r)
            summary = self.columns.summary(r, seed.energy_wh, stakers)
            summary.update(
                version=__version__, run_id=seed.run_id, seed=seed.cfg.seed,
                rounds_completed=self.cfg.rounds, rounds_configured=self.cfg.rounds,
                wall_time_s=round(wall_s, 3), max_lag_s=0.0, rejected={}, meter=dict(meter),
                no_off_timer=[], read_timeouts=0, error=None,
            )
            run_dir = None
            if self.files is not None:
                files = self.files.recorders[r]
                files.close(summary, stakers)
                files.tables = {}  # written; a batch does not hold R years of tables
                run_dir = files.run_dir
            tqs = self.columns.top_quality_share(r, self.cfg.businesses.active_set)
            outs.append(RunOutput(run_dir, summary, {"stakers": stakers}, tqs))
        return outs


def run_vectorised(cfg: Config, seeds: Sequence[int],
                   out_dir: Path | None = None) -> list[RunOutput]:
    """``run_simulation(cfg.with_overrides(seed=s), out_dir)`` for every seed as one round
    loop; wall time is shared evenly."""
    wall0 = time.perf_counter()
    batch = VectorBatch(cfg, seeds, out_dir)
    batch.run()
    return batch.outputs((time.perf_counter() - wall0) / len(batch.seeds))
