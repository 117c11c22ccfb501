"""The ``[mqtt]`` config section and the broker URL (see docs/topics.md, docs/security.md).

Secrets never travel on the command line (``ps`` shows it to every user): the URL carries only
scheme, host and port; the password comes from a file or an environment variable named here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from lastwatt.config.base import Section
from lastwatt.config.secret import read_secret
from lastwatt.errors import ConfigError, InputError

DEFAULT_PASSWORD_ENV = "LASTWATT_MQTT_PASSWORD"
DEFAULT_USERNAME_ENV = "LASTWATT_MQTT_USERNAME"


class MqttConfig(Section):
    """The broker connection: URL, identity, credentials, TLS, session and QoS."""
    url: str | None = Field(
        None, description="broker, mqtt://host:port or mqtts://host:port; --mqtt overrides it"
    )
    client_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="MQTT client id, the persistent session's key; "
        "default lastwatt-<site>-controller",
    )
    username: str | None = Field(None, description=f"broker user; else ${DEFAULT_USERNAME_ENV}")
    password_env: str = Field(
        DEFAULT_PASSWORD_ENV, description="environment variable holding the password"
    )
    password_file: Path | None = Field(
        None, description="file holding the password (first line); wins over password_env"
    )
    tls_ca: Path | None = Field(
        None, description="CA bundle; setting it (or an mqtts:// URL) turns TLS on"
    )
    tls_cert: Path | None = Field(None, description="client certificate (mutual TLS)")
    tls_key: Path | None = Field(None, description="client private key (mutual TLS)")
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keepalive; Last Will fires ~1.5x")
    session_expiry_s: int = Field(
        3600, ge=0, le=2**32 - 1, description="broker keeps the session this long after a drop"
    )
    reconnect_min_delay_s: float = Field(0.5, gt=0, le=60, description="first reconnect delay")
    reconnect_max_delay_s: float = Field(30.0, gt=0, le=3600, description="backoff ceiling")
    connect_timeout_s: float = Field(10.0, gt=0, le=600, description="wait for the first CONNACK")
    qos: Literal[0, 1, 2] = Field(1, description="QoS of setpoints, readings and statuses")
    max_inflight: int = Field(1000, ge=1, le=65535, description="unacked QoS>0 messages in flight")
    log_interval_s: float = Field(
        10.0, gt=0, description="at most one log line per reject kind per interval"
    )

    @model_validator(mode="after")
    def _consistent(self) -> MqttConfig:
        if self.reconnect_max_delay_s < self.reconnect_min_delay_s:
            raise ValueError("reconnect_max_delay_s must be >= reconnect_min_delay_s")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together (mutual TLS needs both)")
        return self

    @field_validator("url")
    @classmethod
    def _url_parses(cls, url: str | None) -> str | None:
        if url is not None:
            try:
                parse_broker_url(url, where="mqtt.url")
            except InputError as err:  # pydantic reports ValueErrors with the field path
                raise ValueError(f"{err.problem} ({err.fix})") from None
        return url


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """A parsed broker URL: host, port and whether to use TLS."""
    host: str
    port: int
    tls: bool


def parse_broker_url(url: str, where: str = "--mqtt") -> BrokerAddress:
    """``mqtt://host[:1883]`` or ``mqtts://host[:8883]`` -> address; else an InputError."""
    example = "use mqtt://HOST:PORT or mqtts://HOST:PORT"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise InputError(where, f"{url!r} is not a broker URL: {err}", example) from None
    if parts.scheme not in ("mqtt", "mqtts"):
        raise InputError(where, f"scheme {parts.scheme!r} in {url!r} is not supported", example)
    if parts.username or parts.password:
        raise InputError(
            where,
            "credentials in the broker URL are refused (the command line is visible to all users)",
            "set mqtt.username and mqtt.password_file or the password environment variable",
        )
    if not parts.hostname:
        raise InputError(where, f"{url!r} has no host", example)
    if parts.path not in ("", "/") or parts.query:
        raise InputError(where, f"{url!r} has a path or query; a broker URL has neither", example)
    tls = parts.scheme == "mqtts"
    return BrokerAddress(parts.hostname, port or (8883 if tls else 1883), tls)


def resolve_broker(url: str | None, cfg: MqttConfig) -> BrokerAddress:
    """The broker to connect to: ``url`` (from ``--mqtt``) wins over ``mqtt.url``; neither is an
    InputError."""
    if url:
        return parse_broker_url(url, where="--mqtt")
    if cfg.url:
        return parse_broker_url(cfg.url, where="mqtt.url")
    raise InputError("--mqtt", "no broker given", "pass --mqtt mqtt://HOST:PORT or set mqtt.url")


def resolve_credentials(cfg: MqttConfig) -> tuple[str | None, str | None]:
    """(username, password) from config, file or environment; a missing file is a ConfigError."""
    username = cfg.username or os.environ.get(DEFAULT_USERNAME_ENV) or None
    password = read_secret(cfg.password_file, cfg.password_env, "mqtt.password_file")
    if password is not None and username is None:
        raise ConfigError(
            "mqtt.username", "a password is configured but no username",
            f"set mqtt.username or ${DEFAULT_USERNAME_ENV}",
        )
    return username, password
