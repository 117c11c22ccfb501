"""Broker crash and restart: setpoints come back, readings are neither lost nor double-counted."""

from __future__ import annotations

import pytest

from lastwatt.messages import MeterReading, Setpoint, decode, encode
from lastwatt.meters import MeterBook
from lastwatt.transport import topics
from lastwatt.transport.mqtt_client import MqttClient
from tests.mqtt_helpers import FAST, SITE, Controller, collect, device_client, url_of
from tests.servers import mosquitto_server, wait_for

pytestmark = pytest.mark.integration


def test_setpoints_are_reasserted_within_2_s_of_reconnect_after_broker_crash(tmp_path) -> None:
    # no persistence: the restarted broker has forgotten every retained setpoint, so only the
    # controller's reassertion can bring them back
    broker = mosquitto_server(tmp_path, "persistence false\n").start()
    url = url_of(broker)
    try:
        ctl = Controller(url, ["d1", "d2"]).start()
        for rnd in (0, 1):  # the latest setpoint must win, not the first one
            for d in ("d1", "d2"):
                ctl.transport.send_setpoint(Setpoint(d, rnd, rnd == 1, 100.0, 50.0, 2e9))
        broker.kill()
        broker.start()
        wait_for(lambda: ctl.transport.client.connects == 2, 10, "controller reconnect")
        reconnected_at = ctl.transport.client.last_connect_monotonic_s
        wait_for(lambda: ctl.transport.reasserts == 1, 2, "reassertion")
        watcher = MqttClient(url, FAST, "watcher",
                             subscriptions=[topics.all_setpoints_pattern(SITE)]).start()
        got = collect(watcher, 2)
        watcher.stop()
        assert {decode(Setpoint, m.payload) for m in got} == {
            Setpoint(d, 1, True, 100.0, 50.0, 2e9, epoch=ctl.transport.epoch) for d in ("d1", "d2")
        }
        assert all(m.received_monotonic_s - reconnected_at < 2.0 for m in got)
        ctl.transport.close()
    finally:
        broker.stop()


def test_no_reading_is_lost_or_double_counted_across_a_broker_crash(tmp_path) -> None:
    # the deployment config saves the broker state on every change (deploy/mosquitto), so the
    # controller's persistent session survives a crash and queues what arrives before it is back
    broker = mosquitto_server(tmp_path, "autosave_on_changes true\nautosave_interval 1\n").start()
    url = url_of(broker)
    try:
        ctl = Controller(url, ["d1"]).start()
        dev = device_client(url, "d1").start()
        book = MeterBook(["d1"])
        book.open_round(0.0)
        sent = [MeterReading("d1", 1.0 + i, 2.0 * i, 120.0, True) for i in range(200)]
        for r in sent[:100]:
            dev.publish(topics.meter_topic(SITE, "d1"), encode(r))
        ctl.drain_until(lambda: len(ctl.readings) >= 100)
        broker.kill()
        wait_for(lambda: not dev.connected.is_set(), 5, "device sees the broker down")
        for r in sent[100:]:  # queued by the device's client while the broker is down
            dev.publish(topics.meter_topic(SITE, "d1"), encode(r))
        broker.start()
        ctl.drain_until(lambda: {r.ts for r in ctl.readings} >= {r.ts for r in sent}, 20)
        for r in ctl.readings:
            book.ingest(r)
        assert {r.ts for r in ctl.readings} == {r.ts for r in sent}  # none lost, none invented
        assert book.counts["booked"] == len(sent)
        assert book.counts["duplicate"] == len(ctl.readings) - len(sent)
        assert book.round_wh[0] == pytest.approx(sent[-1].energy_wh - sent[0].energy_wh)
        dev.stop()
        ctl.transport.close()
    finally:
        broker.stop()
