"""MqttTransport against a real mosquitto: setpoints out, readings and statuses in, Last Wills."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from lastwatt.config.mqtt import MqttConfig
from lastwatt.messages import DeviceStatus, MeterReading, RoundInfo, Setpoint, decode, encode
from lastwatt.transport import topics
from lastwatt.transport.mqtt_client import BrokerError, MqttClient
from tests.mqtt_helpers import FAST, SITE, Controller, collect, device_client, url_of

pytestmark = pytest.mark.integration


def _sp(device: str, rnd: int, on: bool = True) -> Setpoint:
    return Setpoint(device, rnd, on, 500.0, 250.0, 1_800_000_000.0)


def test_setpoint_is_retained_so_a_device_connecting_later_gets_it(mosquitto) -> None:
    url = url_of(mosquitto)
    ctl = Controller(url, ["d1", "d2"]).start()
    ctl.transport.send_setpoint(_sp("d1", 3))
    info = RoundInfo(3, 1000.0, 4600.0, 9000.0, 4000.0, [1, 4])
    ctl.transport.publish_round(info)
    dev = device_client(url, "d1").start()
    try:
        [msg] = collect(dev, 1)
        assert msg.topic == topics.set_topic(SITE, "d1")
        # stamped with the run's epoch on the wire
        assert decode(Setpoint, msg.payload) == replace(_sp("d1", 3), epoch=ctl.transport.epoch)
        watcher = MqttClient(url, FAST, "watcher", subscriptions=[topics.round_topic(SITE)]).start()
        [rnd] = collect(watcher, 1)
        assert decode(RoundInfo, rnd.payload) == replace(info, epoch=ctl.transport.epoch)
        watcher.stop()
    finally:
        dev.stop()
        ctl.transport.close()


def test_readings_and_statuses_are_decoded_and_delivered_in_the_draining_thread(mosquitto) -> None:
    url = url_of(mosquitto)
    ctl = Controller(url, ["d1"]).start()
    dev = device_client(url, "d1").start()
    sent = [MeterReading("d1", 100.0 + i, 10.0 * i, 600.0, True) for i in range(5)]
    online = encode(DeviceStatus("d1", True, 99.0))
    dev.publish(topics.status_topic(SITE, "d1"), online, retain=True)
    for r in sent:
        dev.publish(topics.meter_topic(SITE, "d1"), encode(r))
    try:
        ctl.drain_until(lambda: len(ctl.readings) == 5 and len(ctl.statuses) == 1)
        assert ctl.readings == sent
        assert ctl.statuses == [DeviceStatus("d1", True, 99.0)]
        assert ctl.callback_threads == {threading.get_ident()}
        assert ctl.transport.received == {"meter": 5, "status": 1}
        assert sum(ctl.transport.rejected.values()) == 0
    finally:
        dev.stop()
        ctl.transport.close()


def test_killed_device_reaches_the_controller_as_offline_via_last_will(mosquitto) -> None:
    url = url_of(mosquitto)
    ctl = Controller(url, ["d1"]).start()
    dev = device_client(url, "d1").start()
    dev.kill()
    ctl.drain_until(lambda: DeviceStatus("d1", False) in ctl.statuses)
    ctl.transport.close()


def test_controller_status_is_online_then_offline_by_last_will_when_killed(mosquitto) -> None:
    url = url_of(mosquitto)
    watcher = MqttClient(url, FAST, "watcher", subscriptions=[topics.controller_status_topic(SITE)])
    watcher.start()
    ctl = Controller(url, ["d1"]).start()
    assert decode(DeviceStatus, collect(watcher, 1)[0].payload).online is True
    ctl.transport.client.kill()
    assert decode(DeviceStatus, collect(watcher, 1)[0].payload).online is False
    watcher.stop()


def test_close_says_offline_and_leaves_the_setpoints_retained(mosquitto) -> None:
    url = url_of(mosquitto)
    ctl = Controller(url, ["d1"]).start()
    ctl.transport.send_setpoint(_sp("d1", 0))
    ctl.transport.close()
    watcher = MqttClient(
        url, FAST, "watcher",
        subscriptions=[topics.controller_status_topic(SITE), topics.set_topic(SITE, "d1")],
    ).start()
    got = {m.topic: m.payload for m in collect(watcher, 2)}
    assert decode(DeviceStatus, got[topics.controller_status_topic(SITE)]).online is False
    assert decode(Setpoint, got[topics.set_topic(SITE, "d1")]).order() == (
        ctl.transport.epoch, 0)
    watcher.stop()


def test_setpoint_for_a_device_outside_the_map_is_a_programming_error(mosquitto) -> None:
    ctl = Controller(url_of(mosquitto), ["d1"]).start()
    with pytest.raises(ValueError, match="not in the device map"):
        ctl.transport.send_setpoint(_sp("d9", 0))
    ctl.transport.close()


def test_unreachable_broker_is_a_one_line_error_naming_the_url() -> None:
    from tests.servers import free_port

    port = free_port()
    cfg = MqttConfig(connect_timeout_s=0.5)
    with pytest.raises(BrokerError, match=rf"--mqtt: cannot connect to mqtt://127.0.0.1:{port}"):
        Controller(f"mqtt://127.0.0.1:{port}", ["d1"], cfg).start()
