"""The telemetry sweep's backlog check, on a fake broker and clock: it bounds what a
command's answer queues behind, and a connection that can no longer write must not stop the
other connections' telemetry."""

from __future__ import annotations

from firmware_bridge.simulated.fleet import (
    BACKLOG_PAUSE_S,
    BACKLOG_WAIT_MAX_S,
    SWEEP_CHECK,
    Fleet,
    FleetDevice,
    FleetOptions,
)
from lastwatt.transport import topics
from tests.fake_mqtt import FakeBroker, FakeClock

SITE = "village"


def connected_fleet(n: int) -> tuple[Fleet, FakeBroker, FakeClock]:
    broker, clock = FakeBroker(), FakeClock()
    fleet = Fleet("mqtt://127.0.0.1:1", [FleetDevice(f"d{i:03d}") for i in range(n)],
                  FleetOptions(site=SITE, telemetry_s=1.0, connections=2), clock=clock,
                  connect=broker.connect).connect()
    fleet.worker.run_pending()  # births
    return fleet, broker, clock


def reported(broker: FakeBroker, n: int) -> int:
    meters = {topics.meter_topic(SITE, f"d{i:03d}") for i in range(n)}
    return len(meters & set(broker.topics()))


def step(fleet: Fleet, clock: FakeClock, seconds: float) -> None:
    clock.advance(seconds)
    fleet.worker.run_pending()


def test_sweep_pauses_while_a_connection_has_not_written_the_previous_batch():
    fleet, broker, clock = connected_fleet(100)
    broker.hold = True  # nothing the sweep gives the connections is written yet
    step(fleet, clock, 1.0)  # every device is due
    # the first check marks what was queued; the second finds it unwritten and pauses
    assert fleet.counts["telemetry"] == 2 * SWEEP_CHECK - 1
    assert fleet.counts["backlog_pauses"] == 1
    broker.release()
    step(fleet, clock, BACKLOG_PAUSE_S)
    assert fleet.counts["telemetry"] == 100
    assert fleet.counts["backlog_pauses"] == 1


def test_sweep_does_not_wait_for_publishes_refused_for_want_of_a_connection():
    fleet, broker, clock = connected_fleet(100)
    broker.refuse = True
    step(fleet, clock, 1.0)
    assert fleet.counts["telemetry"] == 100
    assert fleet.counts["backlog_pauses"] == 0


def test_sweep_gives_up_on_a_batch_a_lost_connection_will_never_write():
    fleet, broker, clock = connected_fleet(200)
    broker.hold = True  # written never
    step(fleet, clock, 1.0)  # all due; 2 * SWEEP_CHECK - 1 sent, then a pause
    for _ in range(3):
        step(fleet, clock, BACKLOG_WAIT_MAX_S + 0.01)
    # each step gives up on the stale batch and sends two batches: all 200 by now; waiting
    # on it would let through one batch per step, 63 + 3 * 31 = 156
    assert reported(broker, 200) == 200
