"""Broker URL and credentials: one-line errors, never a secret on the command line."""

from __future__ import annotations

import pytest

from lastwatt.config import validate_config
from lastwatt.config.mqtt import (
    BrokerAddress,
    MqttConfig,
    parse_broker_url,
    resolve_credentials,
)
from lastwatt.errors import ConfigError, InputError
from lastwatt.transport.mqtt import make_mqtt_transport


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1:1884", BrokerAddress("127.0.0.1", 1884, False)),
        ("mqtt://broker.local", BrokerAddress("broker.local", 1883, False)),
        ("mqtts://broker.local", BrokerAddress("broker.local", 8883, True)),
        ("mqtts://broker.local:9000/", BrokerAddress("broker.local", 9000, True)),
    ],
)
def test_parse_broker_url_accepts_mqtt_and_mqtts(url: str, expected: BrokerAddress) -> None:
    assert parse_broker_url(url) == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://h:1883", "scheme"),
        ("h:1883", "scheme"),
        ("mqtt://:1883", "no host"),
        ("mqtt://h:99999", "not a broker URL"),
        ("mqtt://h:1883/topic", "path"),
        ("mqtt://user:secret@h:1883", "credentials in the broker URL are refused"),
    ],
)
def test_parse_broker_url_rejects_bad_urls_with_one_line(url: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as err:
        parse_broker_url(url)
    assert str(err.value).startswith("--mqtt: ")
    assert "\n" not in str(err.value)


def test_bad_mqtt_url_in_config_is_a_config_error_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.url.*scheme"):
        validate_config({"mqtt": {"url": "tcp://h:1"}})


def test_unknown_mqtt_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.pasword.*unknown key"):
        validate_config({"mqtt": {"pasword": "x"}})


def test_tls_cert_without_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="tls_cert and tls_key go together"):
        validate_config({"mqtt": {"tls_cert": "c.pem"}})


def test_password_comes_from_the_named_environment_variable(monkeypatch) -> None:
    monkeypatch.setenv("MY_PW", "s3cret")
    cfg = MqttConfig(username="ctl", password_env="MY_PW")
    assert resolve_credentials(cfg) == ("ctl", "s3cret")


def test_password_file_wins_over_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LASTWATT_MQTT_PASSWORD", "from-env")
    pw = tmp_path / "pw"
    pw.write_text("from-file\n")
    assert resolve_credentials(MqttConfig(username="ctl", password_file=pw)) == ("ctl", "from-file")


def test_missing_password_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.password_file: cannot read"):
        resolve_credentials(MqttConfig(username="ctl", password_file=tmp_path / "nope"))


def test_password_without_username_is_a_config_error(monkeypatch) -> None:
    monkeypatch.delenv("LASTWATT_MQTT_USERNAME", raising=False)
    monkeypatch.setenv("LASTWATT_MQTT_PASSWORD", "pw")
    with pytest.raises(ConfigError, match=r"mqtt\.username"):
        resolve_credentials(MqttConfig())


def test_make_mqtt_transport_without_any_url_names_the_option() -> None:
    with pytest.raises(InputError, match="--mqtt: no broker given"):
        make_mqtt_transport(None, MqttConfig(), "village", ["d1"])
