"""Shared fixtures: real servers started per test session (see tests/servers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import Server, influxd_server, mosquitto_server, victoria_metrics_server


@pytest.fixture()
def mosquitto(tmp_path) -> Iterator[Server]:
    """A fresh anonymous mosquitto on a free loopback port (function scope: tests kill it)."""
    srv = mosquitto_server(tmp_path).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def influxd(tmp_path_factory) -> Iterator[Server]:
    srv = influxd_server(tmp_path_factory.mktemp("influxd")).start(timeout_s=60)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def victoria_metrics(tmp_path_factory) -> Iterator[Server]:
    srv = victoria_metrics_server(tmp_path_factory.mktemp("vm")).start(timeout_s=30)
    yield srv
    srv.stop()
