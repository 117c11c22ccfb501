"""The SimPy engine: one process runs the rounds; devices live behind a transport.

Headless and real time are one engine with two clocks (as in SimPy's own ``rt`` module):
:class:`Clock` maps simulated seconds onto UTC epoch timestamps — onto ``time.start`` in
virtual time, onto the wall clock in real time — and the round process reads like
docs/model.md: weather (precomputed for the run) -> split -> stakes -> selection -> allocation
-> setpoints -> devices -> meters -> result. What the engine does per transport follows the
transport's capability flags (:class:`~lastwatt.transport.base.Transport`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import simpy
import simpy.rt

from lastwatt.config import Config
from lastwatt.messages import DeviceStatus, MeterReading, RoundInfo
from lastwatt.meters import REJECTS, MeterBatch, MeterBook
from lastwatt.model.market import Market, Outcome, Plan
from lastwatt.model.split import EnergySplit
from lastwatt.result import RoundResult
from lastwatt.setpoints import QuotaSplit, make_setpoints, simulated_wh
from lastwatt.signals import Stops, between_events
from lastwatt.site import Devices
from lastwatt.transport.base import Transport

log = logging.getLogger(__name__)

LAG_WARN_S = 1.0  # real time: warn when a round starts this far behind the wall clock
# External devices: a round is settled once every online device answered the final read
# (a reading stamped at or after the request), or after this many wall seconds.
READ_WAIT_MAX_S = 2.0
READ_POLL_S = 0.01  # wall seconds between looks at the answers
REJECTED = {reason: f"rejected_{reason}" for reason in REJECTS}  # round_counts -> column


class Clock:
    """Simulated seconds -> epoch seconds; in real time also measures lag.

    ``speed`` compresses real time (1 in virtual time): devices live in physical time, so they
    meter ``speed`` times less energy per simulated round (:mod:`lastwatt.setpoints`).
    """

    def __init__(self, env: simpy.Environment, start_epoch: float, realtime: bool, speed: float):
        self.env = env
        self.realtime = realtime
        self.speed = speed if realtime else 1.0
        self.origin = time.time() if realtime else start_epoch

    def ts(self, sim_s: float | None = None) -> float:
        """``sim_s`` (default: the present) as epoch seconds; the devices' clock too."""
        return self.origin + (self.env.now if sim_s is None else sim_s) / self.speed

    def lag_s(self) -> float:
        """Real time: how far the present runs behind the wall clock (0 in virtual time)."""
        return max(0.0, time.time() - self.ts()) if self.realtime else 0.0


def make_env(cfg: Config, initial_time: float = 0.0) -> simpy.Environment:
    """A virtual-time environment, or a real-time one ``time.speed`` times faster;
    ``initial_time``: a resumed run starts at its first round's simulated second."""
    if cfg.time.realtime:
        # strict=False: a late round is measured and reported (lag_s), not an exception
        return simpy.rt.RealtimeEnvironment(initial_time, factor=1.0 / cfg.time.speed,
                                            strict=False)
    return simpy.Environment(initial_time)


class Engine:
    """Drives one run: a SimPy process per round plans the market, sends setpoints through the
    transport, meters the round and settles it, then hands the :class:`RoundResult` to
    ``record``.

    ``production_wh`` (R,) and ``split`` are precomputed for the whole run (vectorised);
    ``draw_factor`` (R, N) is each business's load profile (None: flat). Inbound readings and
    statuses arrive through :meth:`on_reading` / :meth:`on_status` in the engine's thread.
    ``settle_grace_s`` (wall seconds) waits for late readings before settling a round.
    """

    def __init__(
        self, cfg: Config, env: simpy.Environment, clock: Clock, market: Market,
        production_wh: np.ndarray, split: EnergySplit, devices: Devices, transport: Transport,
        record: Callable[[RoundResult], None], settle_grace_s: float = 0.0,
        draw_factor: np.ndarray | None = None,
    ) -> None:
        self.cfg, self.env, self.clock, self.market = cfg, env, clock, market
        self.production_wh = production_wh
        self.split, self.devices, self.transport, self.record = split, devices, transport, record
        self.settle_grace_s = settle_grace_s
        self.draw_factor = draw_factor
        skew_s = cfg.devices.max_clock_skew_s
        self.book = MeterBook(devices.ids, devices.max_power_w, cfg.devices.plausibility_margin,
                              skew_s, burst_s=skew_s + cfg.time.metering_interval_s / clock.speed)
        self.online = np.zeros(len(devices.ids), dtype=bool)
        self.quota_wh = np.zeros(len(devices.ids))  # current round, physical Wh
        self.quotas = QuotaSplit(devices.business, devices.max_power_w, clock.speed)
        self._available_for: tuple[bytes, np.ndarray] = (b"", np.zeros(0, dtype=bool))
        self.switched_off = np.zeros(len(devices.ids), dtype=bool)
        self.prev_on = np.ones(len(devices.ids), dtype=bool)  # force the first setpoints
        self.round = -1
        self.max_lag_s = 0.0
        self.unknown_readings = 0  # from devices the meter book does not know
        self.first_round = 0  # > 0: a resumed run (lastwatt.checkpoint)
        self.read_timeouts = 0  # devices that did not answer a final read in time
        self.no_off_timer: set[str] = set()  # plugs without their own off-timer (flagged)

    # -- inbound ---------------------------------------------------------------------------
    def on_reading(self, r: MeterReading | MeterBatch) -> None:
        """Book a meter reading (a device the book does not know is counted, not raised)."""
        if isinstance(r, MeterBatch):
            self.book.book_batch(r)
            return
        try:
            self.book.ingest(r, self.clock.ts())
        except KeyError:
            self.unknown_readings += 1

    def on_status(self, s: DeviceStatus) -> None:
        """A device went online or offline: its business is available while one is online."""
        i = self.book.index.get(s.device)
        if i is not None:
            self.online[i] = s.online
            if s.off_timer is False:
                self.no_off_timer.add(s.device)

    def rejected(self) -> dict[str, int]:
        """Inbound messages rejected, by kind: the transport's and the engine's own."""
        counts = dict(self.transport.rejected)
        if self.unknown_readings:
            counts["unknown_device"] = counts.get("unknown_device", 0) + self.unknown_readings
        return counts

    # -- the round process -----------------------------------------------------------------
    def rounds_process(self):
        """Round k starts at ``k * round_s`` (or at once when the last one ran late): weather
        (precomputed) -> split -> market plan -> setpoints -> devices -> meters -> settle."""
        round_s = self.cfg.time.round_s
        for k in range(self.first_round, self.cfg.rounds):
            t0 = k * round_s  # the schedule, not env.now: a settle grace must not drift it
            if t0 > self.env.now:
                yield self.env.timeout(t0 - self.env.now)
            lag = self._measure_lag(k)
            self.transport.drain()  # the statuses start() waited for: round 0 knows who is on
            if k == self.first_round and not self.transport.enforces_quotas:
                yield from self._final_read()  # counters before they draw: baselines
            plan = self.market.plan(
                k, float(self.split.business_pool_wh[k]), round_s, self._available(),
                None if self.draw_factor is None else self.draw_factor[k],
            )
            self._send_plan(k, plan, float(self.production_wh[k]), t0)
            yield from self._meter_round(t0 + round_s, last=k == self.cfg.rounds - 1)
            self.transport.drain()
            device_wh = self._device_metered_wh()
            metered_wh = np.bincount(self.devices.business, weights=device_wh,
                                     minlength=self.market.n_businesses)
            outcome = yield from self._settled(plan, metered_wh)
            self.record(self._result(k, t0, plan, outcome, metered_wh, device_wh, lag))

    # -- steps -----------------------------------------------------------------------------
    def _settled(self, plan: Plan, metered_wh: np.ndarray):
        """The market's outcome of the round. A generator: an engine of a replica batch
        (:mod:`lastwatt.replica_run`) waits here for the other replicas' meters."""
        return self.market.settle(plan, metered_wh)
        yield  # unreachable: makes this a generator

    def _measure_lag(self, k: int) -> float:
        lag = self.clock.lag_s()
        self.max_lag_s = max(self.max_lag_s, lag)
        if lag > LAG_WARN_S:
            log.warning("round %d starts %.2f s behind the wall clock", k, lag)
        return lag

    def _available(self) -> np.ndarray:
        """Businesses with a device online (a copy: the market may keep it)."""
        key = self.online.tobytes()  # devices come and go rarely: most rounds reuse it
        if key != self._available_for[0]:
            n = self.market.n_businesses
            self._available_for = (
                key, np.bincount(self.devices.business, weights=self.online, minlength=n) > 0)
        return self._available_for[1].copy()

    def _device_metered_wh(self) -> np.ndarray:
        """What each device metered this round, in simulated Wh."""
        return simulated_wh(self.book.round_wh, self.clock.speed)

    def _send_plan(self, k: int, plan: Plan, production_wh: float, t0: float) -> None:
        self.transport.drain()
        self.round = k
        start_ts, end_ts = self.clock.ts(t0), self.clock.ts(t0 + self.cfg.time.round_s)
        self.book.open_round(start_ts)
        self.quota_wh = self.quotas(plan.planned_wh, self.online)
        self.switched_off[:] = False
        self.transport.publish_round(RoundInfo(
            k, start_ts, end_ts, production_wh, plan.business_pool_wh, list(plan.selected_idx),
        ))
        valid_until = end_ts + self.cfg.time.metering_interval_s / self.clock.speed
        on = self.quota_wh > 0
        # a device that stays off need not hear it again, unless delivery may be lost
        send = on | self.prev_on | (not self.transport.delivers_reliably)
        self.prev_on = on
        idx = send.nonzero()[0]  # at night, none: every device is off and stays off
        ids = self.devices.ids
        for sp in make_setpoints(k, [ids[i] for i in idx.tolist()], self.quota_wh[idx],
                                 self.cfg.time.round_s, valid_until, self.clock.speed):
            self.transport.send_setpoint(sp)

    def _meter_round(self, t_end: float, last: bool):
        """Wait out the round; unless the devices enforce their quotas themselves, switch off
        every device that reached its quota, every metering interval.

        After the last round every device is switched off: nothing may draw unmetered.
        """
        env = self.env
        if self.transport.enforces_quotas:
            yield env.timeout(t_end - env.now)
            yield env.timeout(0)  # let the devices' readings at t_end land first
            if last:
                self._switch_off(self.quota_wh > 0)
            return
        interval = self.cfg.time.metering_interval_s
        while env.now < t_end - 1e-9:
            yield env.timeout(min(interval, t_end - env.now))
            self.transport.drain()
            self._enforce_quotas()
        if last:
            self._switch_off(~self.switched_off & (self.quota_wh > 0))
        yield from self._final_read()
        if self.settle_grace_s > 0:
            yield env.timeout(self.settle_grace_s * self.clock.speed)

    def _final_read(self):
        """Ask every device for its meter at the round's end and wait (bounded) for the
        answers, so the round books what the plugs' counters say, not their last telemetry."""
        ts = self.clock.ts()
        self.transport.request_readings(max(self.round, 0), ts)
        waiting = self.online.copy()
        deadline = time.monotonic() + READ_WAIT_MAX_S
        while True:
            self.transport.drain()
            missing = waiting & (np.asarray(self.book.last_ts) < ts)
            if not missing.any():
                return
            if time.monotonic() >= deadline:
                self.read_timeouts += int(missing.sum())
                log.warning("round %d: %d devices did not answer the final read",
                            self.round, int(missing.sum()))
                return
            if isinstance(self.env, simpy.rt.RealtimeEnvironment):
                yield self.env.timeout(READ_POLL_S * self.clock.speed)
            else:  # virtual time stands still while the devices answer on the wall clock
                time.sleep(READ_POLL_S)
                yield self.env.timeout(0)

    def _enforce_quotas(self) -> None:
        over = (self.book.round_wh >= self.quota_wh) & (self.quota_wh > 0) & ~self.switched_off
        if not over.any():
            return
        self._switch_off(over)

    def _switch_off(self, mask: np.ndarray) -> None:
        self.switched_off |= mask
        idx = np.flatnonzero(mask)
        for sp in make_setpoints(self.round, [self.devices.ids[i] for i in idx],
                                 np.zeros(len(idx)), self.cfg.time.round_s, self.clock.ts()):
            self.transport.send_setpoint(sp)

    def _result(self, k: int, t0: float, plan: Plan, out: Outcome, metered_wh: np.ndarray,
                device_wh: np.ndarray, lag: float) -> RoundResult:
        s = self.split
        scalars = {
            "production_wh": float(self.production_wh[k]),
            "community_wh": float(s.community_wh[k]),
            "household_wh": float(s.household_wh[k]),
            "reserve_wh": float(s.reserve_wh[k] + plan.unplaced_wh),
            "business_pool_wh": float(s.business_pool_wh[k]),
            "unserved_community_wh": float(s.unserved_community_wh[k]),
            "unserved_household_wh": float(s.unserved_household_wh[k]),
            "planned_wh": float(plan.planned_wh.sum()),
            "metered_wh": float(metered_wh.sum()),
            **out.scalars,
            "lag_s": lag,
            **{REJECTED[k]: float(v) for k, v in self.book.round_counts.items()},
        }
        return RoundResult(
            round=k, start_ts=self.clock.ts(t0), end_ts=self.clock.ts(t0 + self.cfg.time.round_s),
            scalars=scalars, selected=list(plan.selected_idx),
            business=self._business_columns(plan, out, metered_wh),
            policy=out.policy, device_ids=self.devices.ids,
            device=self._device_columns(device_wh),
        )

    def _business_columns(self, plan: Plan, out: Outcome,
                          metered_wh: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "stake_tokens": plan.stake_tokens,
            "selected": plan.selected.astype(np.int8),
            "planned_wh": plan.planned_wh,
            "metered_wh": metered_wh,
            "performance": out.performance,
            "result": out.result,
            "revenue_tokens": out.revenue_tokens,
            "reward_tokens": out.reward_tokens,
            "slashed_tokens": out.slashed_tokens,
        }

    def _device_columns(self, device_wh: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "business": self.devices.business,
            "quota_wh": simulated_wh(self.quota_wh, self.clock.speed),
            "metered_wh": device_wh,
            **self._last_readings(),
            "online": self.online.astype(np.int8),
            "rejected_readings": self.book.round_rejected,
        }

    def _last_readings(self) -> dict[str, np.ndarray]:
        """Power and relay state as last read; unknown (NaN) for a device now offline."""
        if self.online.all():
            return {"power_w": self.book.power_w, "on": self.book.on.astype(np.float64)}
        unknown = ~self.online
        return {
            "power_w": np.where(unknown, np.nan, self.book.power_w),
            "on": np.where(unknown, np.nan, self.book.on.astype(np.float64)),
        }

    def run(self) -> None:
        """Start the transport, then run every round to the end."""
        self.transport.start(self.on_reading, self.on_status)
        if isinstance(self.env, simpy.rt.RealtimeEnvironment):
            self.env.sync()  # connecting is not lag: the wall clock starts now
            self.clock.origin = time.time() - self.env.now / self.clock.speed
        done = self.env.process(self.rounds_process())
        step = self.env.step
        with between_events() as stops:
            if not isinstance(self.env, simpy.rt.RealtimeEnvironment):
                while not done.processed:  # a failed round process raises from step()
                    stops.check()
                    step()
                return
            while not done.processed:
                stops.check()
                self._wait_for_clock(stops)
                step()

    def _wait_for_clock(self, stops: Stops) -> None:
        """Sleep until the next event is due on the wall clock (a signal may end it)."""
        env = self.env
        assert isinstance(env, simpy.rt.RealtimeEnvironment)
        if env.peek() == simpy.core.Infinity:
            return
        due = env.real_start + (env.peek() - env.env_start) * env.factor
        with stops.waiting_for_clock():
            while (delta := due - time.monotonic()) > 0:
                time.sleep(delta)
