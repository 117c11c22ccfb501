"""One run: a pure function of (config, seed) -> run folder and tables.

Composes the data path: weather -> split (vectorised for the whole run), the market, the
devices behind a transport (in-process mocks unless one is given), the SimPy engine, and the
recorders. ``lastwatt run``, ``lastwatt sweep`` and the tests all come through here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import simpy

from lastwatt import __version__, checkpoint
from lastwatt.config import Config
from lastwatt.demand import business_load_factor, demand_series
from lastwatt.devices import DeviceModel, profile_fn
from lastwatt.engine import Clock, Engine, make_env
from lastwatt.errors import InputError
from lastwatt.model.market import Market
from lastwatt.model.split import split_energy
from lastwatt.result import RoundResult, RunMeta
from lastwatt.rng import streams
from lastwatt.signals import deferred
from lastwatt.site import Devices, site
from lastwatt.storage.files import FileRecorder, prepare_run_dir
from lastwatt.storage.recorder import Recorder, Recorders
from lastwatt.summary import summarise
from lastwatt.transport.analytic import AnalyticTransport
from lastwatt.transport.base import Transport
from lastwatt.transport.memory import MemoryTransport, MockDevice
from lastwatt.weather import production_series

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RunOutput:
    """What a run returns: its folder (if written), summary and tables."""
    run_dir: Path | None
    summary: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    # the sweep's top-quality share, when a replica batch computed it without keeping the
    # tables (lastwatt.replica_engine); None: computed from ``tables``
    top_quality_share: float | None = None

    @property
    def rounds(self) -> pd.DataFrame:
        """The per-round table."""
        return self.tables["rounds"]

    @property
    def businesses(self) -> pd.DataFrame:
        """The per-round, per-business table."""
        return self.tables["businesses"]


def run_id_of(cfg: Config) -> str:
    """Deterministic: the same config and seed give the same id (and identical files)."""
    blob = json.dumps(cfg.model_dump(mode="json"), sort_keys=True).encode()
    return f"{cfg.scenario}-{cfg.seed}-{hashlib.sha256(blob).hexdigest()[:8]}"


def mock_transport(cfg: Config, env: simpy.Environment, clock: Clock, devices: Devices,
                   rng: np.random.Generator, load: np.ndarray, start: bool = True
                   ) -> MemoryTransport:
    """In-process mock devices; ``load`` (R, N) is each business's draw per round.

    ``start=False``: their processes are started by a checkpoint's restore."""
    profile = profile_fn(cfg.devices.profile, cfg.time.round_s)
    mocks = [
        MockDevice(
            env,
            DeviceModel(d, float(devices.max_power_w[i]), profile, rng, cfg.devices.noise_sd),
            clock.ts, cfg.time.metering_interval_s, load[:, devices.business[i]], start,
        )
        for i, d in enumerate(devices.ids)
    ]
    return MemoryTransport(mocks)


def analytic_transport(cfg: Config, env: simpy.Environment, devices: Devices,
                       rng: np.random.Generator, load: np.ndarray) -> AnalyticTransport:
    """Headless devices integrated per round (no per-minute events), same physics."""
    return AnalyticTransport(
        env, devices.ids, devices.business, devices.max_power_w, load, cfg.devices.profile,
        cfg.time.round_s, cfg.time.metering_interval_s, cfg.devices.noise_sd, rng,
    )


def headless_transport(cfg: Config, env: simpy.Environment, clock: Clock, devices: Devices,
                       rng: np.random.Generator, load: np.ndarray, resumed: bool) -> Transport:
    """The in-process devices: integrated per round in virtual time, unless per-minute
    readings are asked for (``output.meter_readings``) or the run is on the wall clock."""
    if cfg.output.meter_readings or cfg.time.realtime:
        return mock_transport(cfg, env, clock, devices, rng, load, start=not resumed)
    return analytic_transport(cfg, env, devices, rng, load)


def run_simulation(
    cfg: Config,
    out_dir: Path | None = None,
    recorders: Sequence[Recorder] = (),
    transport: Transport | None = None,
    progress: Callable[[RoundResult], None] | None = None,
    settle_grace_s: float = 0.0,
    overwrite: bool = False,
    resume: bool = False,
) -> RunOutput:
    """Run ``cfg`` to the end. With ``out_dir`` the run folder is ``out_dir/<run id>``.

    An existing run folder is an error unless ``overwrite`` (replace it) or ``resume``
    (continue it from its last checkpoint; tables identical to an uninterrupted run)."""
    wall0 = time.perf_counter()
    run_id = run_id_of(cfg)
    run_dir = Path(out_dir) / run_id if out_dir is not None else None
    cp = None
    if run_dir is not None:
        if resume:
            cp = _resumable(run_dir, run_id)
        else:
            prepare_run_dir(run_dir, overwrite)  # before any work: a bad --out fails at once
    first = cp.rounds if cp is not None else 0
    rs = streams(cfg.seed)
    production_wh = production_series(cfg, rs.weather)
    demand = demand_series(cfg, rs.demand)
    round_h = cfg.time.round_s / 3600.0
    split = split_energy(production_wh, demand.community_wh, demand.household_wh,
                         cfg.demand.reserve_fraction, cfg.demand.reserve_w * round_h)
    the_site = site(cfg, rs.businesses)
    market = cp.market if cp is not None else Market(cfg, rs, the_site)
    devices = the_site.devices
    env = make_env(cfg, first * cfg.time.round_s)
    clock = Clock(env, cfg.time.start.timestamp(), cfg.time.realtime, cfg.time.speed)
    load = business_load_factor(cfg)  # (R, N): what each business can draw, per round
    transport = transport or headless_transport(cfg, env, clock, devices, rs.devices, load,
                                                resumed=cp is not None)

    files = FileRecorder(run_dir, cfg.output.format)  # in memory only when run_dir is None
    sinks = Recorders([files, *recorders])
    meta = RunMeta(run_id, cfg.site, cfg.scenario, cfg.seed, market.business_names,
                   market.policy_names, devices.dialects, cfg.model_dump(mode="json"))
    files.open(meta, first)
    for sink in recorders:
        sink.open(meta)
    every = cfg.output.checkpoint_rounds

    def record(result: RoundResult) -> None:
        sinks.record(result)
        done = result.round + 1
        if run_dir is not None and done % every == 0 and done < cfg.rounds:
            with deferred(reraise=True):  # a signal lands after the checkpoint, not inside
                files.flush()
                checkpoint.save(run_dir, run_id, done, engine)
                files.write_run_json("running", done)
        if progress is not None:
            progress(result)

    engine = Engine(cfg, env, clock, market, production_wh, split, devices, transport, record,
                    settle_grace_s, None if np.all(load == 1.0) else load)
    if cp is not None:
        checkpoint.restore(engine, cp)
    error: BaseException | None = None
    try:
        engine.run()
    except BaseException as err:  # keep what was recorded, then re-raise
        error = err
        raise
    finally:
        with deferred():  # a second signal must not tear the folder half-written
            transport.close()
            stakers = market.stakers_table()
            tables = files.build_tables(stakers)
            summary = summarise(tables["rounds"], tables["stakers"])
            summary.update(
                version=__version__, run_id=run_id, seed=cfg.seed,
                rounds_completed=len(tables["rounds"]), rounds_configured=cfg.rounds,
                wall_time_s=round(time.perf_counter() - wall0, 3), max_lag_s=engine.max_lag_s,
                rejected=engine.rejected(), meter=dict(engine.book.counts),
                no_off_timer=sorted(engine.no_off_timer), read_timeouts=engine.read_timeouts,
                error=None if error is None else f"{type(error).__name__}: {error}",
            )
            if cp is not None:
                summary["resumed_from_round"] = first
            sinks.close(summary, stakers)
            if run_dir is not None and len(tables["rounds"]) == cfg.rounds:
                (run_dir / checkpoint.CHECKPOINT).unlink(missing_ok=True)
    return RunOutput(run_dir, summary, files.tables)


def _resumable(run_dir: Path, run_id: str) -> checkpoint.Checkpoint | None:
    fix = "give a run folder of an interrupted `lastwatt run`"
    if not (run_dir / "run.json").is_file():
        raise InputError(f"--resume {run_dir}", "no run.json: not a run folder", fix)
    status = json.loads((run_dir / "run.json").read_text()).get("status")
    if status == "complete":
        raise InputError(f"--resume {run_dir}", "the run is complete, nothing to resume",
                         "use --overwrite to run it again")
    return checkpoint.load(run_dir, run_id)
