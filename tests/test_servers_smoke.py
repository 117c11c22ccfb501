import urllib.request

from tests.servers import tcp_open


def test_mosquitto_fixture_accepts_tcp_connections(mosquitto):
    assert tcp_open(mosquitto.port)


def test_influxd_fixture_answers_ping(influxd):
    with urllib.request.urlopen(f"http://127.0.0.1:{influxd.port}/ping") as r:
        assert r.status == 204


def test_victoria_metrics_fixture_reports_healthy(victoria_metrics):
    with urllib.request.urlopen(f"http://127.0.0.1:{victoria_metrics.port}/health") as r:
        assert r.read().strip() == b"OK"
