"""The example broker config (deploy/mosquitto): no anonymous clients, each device fenced in."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from lastwatt.config.mqtt import MqttConfig
from lastwatt.messages import MeterReading, Setpoint, decode, encode
from lastwatt.transport import topics
from lastwatt.transport.mqtt_client import BrokerError, MqttClient
from tests.mqtt_helpers import SITE, Controller, collect, device_client, url_of
from tests.servers import mosquitto_server, require_binary

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).parents[2] / "deploy" / "mosquitto"
USERS = {"controller": "ctl-pw", "d1": "d1-pw", "d2": "d2-pw"}
# the harness writes its own listener and persistence lines; paths point into the test dir
HARNESS_OWNED = ("listener", "persistence", "password_file", "acl_file", "cafile", "certfile",
                 "keyfile", "user")


@pytest.fixture()
def secured(tmp_path):
    passwd = tmp_path / "passwd"
    tool = require_binary("mosquitto_passwd")
    passwd.touch()
    for user, pw in USERS.items():
        subprocess.run([tool, "-b", str(passwd), user, pw], check=True, capture_output=True)
    conf = [
        line for line in (DEPLOY / "mosquitto.conf").read_text().splitlines()
        if not line.split(" ", 1)[0].lstrip("#").startswith(HARNESS_OWNED)
    ]
    conf += [f"password_file {passwd}", f"acl_file {DEPLOY / 'acl'}"]
    srv = mosquitto_server(tmp_path, "\n".join(conf) + "\n").start()
    yield srv
    srv.stop()


def _cfg(tmp_path: Path, user: str | None, pw: str | None = None) -> MqttConfig:
    if user is None:
        return MqttConfig(connect_timeout_s=2, password_env="LASTWATT_TEST_NO_SUCH_VAR")
    pw_file = tmp_path / f"{user}.pw"
    pw_file.write_text((pw or USERS[user]) + "\n")
    return MqttConfig(username=user, password_file=pw_file, connect_timeout_s=5,
                      reconnect_min_delay_s=0.1, reconnect_max_delay_s=0.5)


def test_anonymous_connection_is_refused(secured, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("LASTWATT_MQTT_USERNAME", raising=False)
    with pytest.raises(BrokerError, match=r"cannot connect.*[Nn]ot authori[sz]ed"):
        MqttClient(url_of(secured), _cfg(tmp_path, None), "anon").start()


def test_wrong_password_is_refused_with_a_hint_at_the_credentials(secured, tmp_path) -> None:
    with pytest.raises(BrokerError, match=r"check mqtt\.username"):
        MqttClient(url_of(secured), _cfg(tmp_path, "d1", "guess"), "d1").start()


def test_device_cannot_publish_to_another_devices_topics(secured, tmp_path) -> None:
    url = url_of(secured)
    ctl = Controller(url, ["d1", "d2"], _cfg(tmp_path, "controller")).start()
    d1 = device_client(url, "d1", _cfg(tmp_path, "d1")).start()
    try:
        forged = MeterReading("d2", 1.0, 1e6, 0.0, False)
        d1.publish(topics.meter_topic(SITE, "d2"), encode(forged))
        d1.publish(topics.status_topic(SITE, "d2"), b'{"v":1,"device":"d2","online":false}')
        own = MeterReading("d1", 2.0, 5.0, 1.0, True)  # sent last: when it is in, so are those
        d1.publish(topics.meter_topic(SITE, "d1"), encode(own))
        ctl.drain_until(lambda: own in ctl.readings)  # the forged ones went ahead of it
        assert ctl.readings == [own]
        assert ctl.statuses == []
    finally:
        d1.stop()
        ctl.transport.close()


def test_device_reads_only_its_own_setpoint(secured, tmp_path) -> None:
    url = url_of(secured)
    ctl = Controller(url, ["d1", "d2"], _cfg(tmp_path, "controller")).start()
    d1 = device_client(url, "d1", _cfg(tmp_path, "d1"))
    d1.subscriptions.append(topics.set_topic(SITE, "d2"))  # tries to eavesdrop
    d1.start()
    try:
        ctl.transport.send_setpoint(Setpoint("d2", 0, True, 1.0, 1.0, 2e9))
        ctl.transport.send_setpoint(Setpoint("d1", 0, True, 2.0, 2.0, 2e9))
        # d2's setpoint went out first on the same connection: had d1 been allowed to read it,
        # it would have arrived before d1's own
        (got,) = collect(d1, 1)
        assert decode(Setpoint, got.payload).device == "d1"
    finally:
        d1.stop()
        ctl.transport.close()


def test_a_device_account_cannot_take_the_controllers_session(secured, tmp_path) -> None:
    # use_username_as_clientid: the broker renames the intruder's session to its account
    url = url_of(secured)
    ctl = MqttClient(url, _cfg(tmp_path, "controller"), "lastwatt-village-controller").start()
    intruder = MqttClient(url, _cfg(tmp_path, "d1"), "lastwatt-village-controller").start()
    try:
        time.sleep(0.5)
        assert ctl.connected.is_set() and ctl.connects == 1  # never kicked off
        assert intruder.connected.is_set()
    finally:
        intruder.stop()
        ctl.stop()


def test_a_native_device_account_cannot_write_the_bridges_rpc_reply_topic(secured, tmp_path):
    # the denial comes back as the PUBACK's MQTT 5 reason code (what the fleet reports)
    d1 = MqttClient(url_of(secured), _cfg(tmp_path, "d1"), "d1").start()
    try:
        info = d1.publish("lastwatt-bridge-village/rpc", b'{"id":1,"src":"x","result":{}}', 1)
        info.wait_for_publish(5)
        time.sleep(0.3)
        assert d1.denied == {"Not authorized": 1}
    finally:
        d1.stop()


def test_the_fleet_reports_denied_publishes_instead_of_saying_up(secured, tmp_path) -> None:
    import os
    import signal
    import sys
    env = os.environ | {"LASTWATT_MQTT_USERNAME": "d1", "LASTWATT_MQTT_PASSWORD": USERS["d1"]}
    # account d1 may publish only d1's topics: the fleet's sim-0000x publishes are refused
    proc = subprocess.Popen(
        [sys.executable, "-c", "from lastwatt.cli import main; main()", "devices", "--mqtt",
         url_of(secured), "--count", "2", "--connections", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "DENIED" in line or "devices up" in line:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert "DENIED" in lines[-1] and "Not authorized" in lines[-1], lines
    assert not any("devices up" in line for line in lines)
