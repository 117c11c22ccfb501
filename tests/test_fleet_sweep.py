"""The telemetry sweep's backlog check: it bounds what a command's answer queues behind,
and a connection that can no longer write must not stop the other connections' telemetry."""

from __future__ import annotations

import time
from dataclasses import dataclass

from paho.mqtt.enums import MQTTErrorCode

from firmware_bridge.simulated.fleet import BACKLOG_WAIT_MAX_S, Fleet, FleetDevice


@dataclass
class Sent:
    """Stands in for paho's MQTTMessageInfo: what the check reads of it."""
    published: bool
    rc: MQTTErrorCode = MQTTErrorCode.MQTT_ERR_SUCCESS

    def is_published(self) -> bool:
        return self.published


def fleet_with(marks: list, last_sent: list, marks_age_s: float = 0.0) -> Fleet:
    fleet = Fleet("mqtt://127.0.0.1:1", [FleetDevice("d0"), FleetDevice("d1")])  # not started
    fleet._marks, fleet._last_sent = marks, last_sent
    fleet._marks_mono = time.monotonic() - marks_age_s
    return fleet


def test_sweep_waits_while_a_connection_has_not_written_the_previous_batch():
    newest = [Sent(False), Sent(False)]
    fleet = fleet_with([Sent(True), Sent(False)], newest)
    assert fleet._backlogged()
    fleet._marks[1].published = True
    assert not fleet._backlogged()
    assert fleet._marks == newest  # the next check waits for what was queued since


def test_sweep_does_not_wait_for_a_publish_refused_for_want_of_a_connection():
    fleet = fleet_with([Sent(False, MQTTErrorCode.MQTT_ERR_NO_CONN), None], [None, None])
    assert not fleet._backlogged()


def test_sweep_gives_up_on_a_batch_a_lost_connection_will_never_write():
    fleet = fleet_with([Sent(False), Sent(True)], [None, None],
                       marks_age_s=BACKLOG_WAIT_MAX_S + 0.1)
    assert not fleet._backlogged()
