"""One way to read a secret and one way to pick the broker, shared by every client."""

from __future__ import annotations

import pytest

from lastwatt.config.mqtt import BrokerAddress, MqttConfig, resolve_broker
from lastwatt.config.secret import read_secret
from lastwatt.errors import ConfigError, InputError


def test_secret_file_wins_over_the_environment_and_gives_its_first_line(tmp_path, monkeypatch):
    monkeypatch.setenv("LW_TEST_SECRET", "from-env")
    path = tmp_path / "secret"
    path.write_text("  s3cret \nsecond line\n")
    assert read_secret(path, "LW_TEST_SECRET", "x.file") == "s3cret"
    assert read_secret(None, "LW_TEST_SECRET", "x.file") == "from-env"


def test_empty_secret_file_or_unset_variable_is_no_secret(tmp_path, monkeypatch):
    monkeypatch.delenv("LW_TEST_SECRET", raising=False)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert read_secret(empty, "LW_TEST_SECRET", "x.file") is None
    assert read_secret(None, "LW_TEST_SECRET", "x.file") is None


def test_unreadable_secret_file_is_a_config_error_naming_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"^influx\.token_file: cannot read .*missing"):
        read_secret(tmp_path / "missing", "LW_TEST_SECRET", "influx.token_file")


def test_broker_from_the_command_line_wins_over_the_config():
    cfg = MqttConfig(url="mqtts://broker.lan")
    assert resolve_broker("mqtt://127.0.0.1:1999", cfg) == BrokerAddress("127.0.0.1", 1999, False)
    assert resolve_broker(None, cfg) == BrokerAddress("broker.lan", 8883, True)


def test_no_broker_anywhere_is_one_line_naming_both_ways_to_give_one():
    with pytest.raises(InputError, match=r"--mqtt: no broker given.*mqtt\.url"):
        resolve_broker(None, MqttConfig())
