"""The hardware loop with Modbus TCP relays + SDM120 meters: controller (run_simulation +
MqttTransport), firmware bridge and simulated Modbus devices on pymodbus servers, on a real
mosquitto, in accelerated real time."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from firmware_bridge.bridge import Bridge
from firmware_bridge.simulated.modbus import ModbusFleet
from firmware_bridge.simulated.site import fleet_devices
from lastwatt.config import Config
from lastwatt.config.bridge import BridgeConfig
from lastwatt.config.modbus import ModbusOptions
from lastwatt.messages import Setpoint, decode
from lastwatt.result import RoundResult
from lastwatt.simulation import RunOutput
from lastwatt.transport import topics
from lastwatt.transport.mqtt_client import MqttClient
from tests.e2e_helpers import (
    business_wh,
    persistent_broker,
    run_config_toml,
    run_controller,
    start_endless_controller,
    write_config,
)
from tests.mqtt_helpers import FAST, url_of
from tests.servers import wait_for

pytestmark = pytest.mark.integration

ROUNDS = 6
SPEED = 1440.0  # a 1 h round in 2.5 s; the 180 s metering interval is 0.125 s
# as tests/transport/test_mqtt_end_to_end.py: each round's pool is below the selected
# businesses' caps, so every relay stops at its quota before the round ends
CONFIG_TOML = run_config_toml(ROUNDS, SPEED, 5, [
    'id = "r0a", business = 0, dialect = "modbus"',
    'id = "r0b", business = 0, dialect = "modbus"',
    'id = "r1", business = 1, dialect = "modbus"',
    'id = "r2", business = 2, dialect = "modbus"',
    'id = "r3", business = 3, dialect = "modbus"',
    'id = "r4", business = 4, dialect = "modbus"',
])


@pytest.fixture()
def cfg(tmp_path) -> Config:
    return write_config(tmp_path / "e2e.toml", CONFIG_TOML)


@pytest.fixture()
def broker(tmp_path):
    yield from persistent_broker(tmp_path)


class Site:
    """Modbus fleet (two gateways, unit ids 1..3 each) and bridge for ``cfg`` on a broker."""

    def __init__(self, cfg: Config, url: str) -> None:
        self.cfg, self.url = cfg, url
        self.interval_s = cfg.time.metering_interval_s / SPEED
        devices = fleet_devices(cfg)
        self.max_power_w = {d.id: d.max_power_w for d in devices}
        self.fleet = ModbusFleet([(d.id, d.max_power_w) for d in devices]).start()
        self.bridge = self.new_bridge()

    def new_bridge(self) -> Bridge:
        _, modbus = self.fleet.bridge_devices()
        options = ModbusOptions(interval_s=self.interval_s, timeout_s=0.5, startup_grace_s=0.3,
                                devices=modbus)
        return Bridge(BridgeConfig.from_lastwatt(self.cfg, poll_s=0, modbus=options),
                      self.url).start()

    def run(self, on_round=None) -> RunOutput:
        out, _ = run_controller(self.cfg, self.url, on_round)
        return out

    def true_business_wh(self) -> np.ndarray:
        return business_wh(self.cfg, self.fleet.true_energy_wh(), SPEED)

    def close(self) -> None:
        self.bridge.stop()
        self.fleet.stop()


def test_modbus_relays_meter_what_they_draw_and_stop_at_quota(cfg, broker) -> None:
    url = url_of(broker)
    setpoints = MqttClient(url, FAST, "watcher",
                           subscriptions=[topics.all_setpoints_pattern(cfg.site)]).start()
    site = Site(cfg, url)
    snapshots: list[dict[str, float]] = [site.fleet.true_energy_wh()]
    try:
        out = site.run(lambda r: snapshots.append(site.fleet.true_energy_wh()))
        time.sleep(0.5)
        true_wh = site.true_business_wh()
    finally:
        site.close()
        setpoints.stop()
    s = out.summary
    assert s["rounds_completed"] == ROUNDS and s["error"] is None
    got = set()
    while (m := setpoints.get_nowait()) is not None:
        sp = decode(Setpoint, m.payload)
        got.add((sp.device, sp.round))
    assert got == {(d.id, k) for d in cfg.devices.map for k in range(ROUNDS)}
    metered_wh = out.businesses.pivot(index="round", columns="business",
                                      values="metered_wh").sum(axis=0).to_numpy()
    assert (true_wh > 0).sum() >= 3
    np.testing.assert_allclose(metered_wh, true_wh, rtol=0.01)
    dev = out.tables["devices"]
    drawn = {(k, d): (snapshots[k + 1][d] - snapshots[k][d]) * SPEED
             for k in range(ROUNDS) for d in snapshots[0]}
    for row in dev.itertuples():
        # the relay is off within one metering interval of its quota
        slack_wh = site.max_power_w[row.device] * cfg.time.metering_interval_s / 3600
        assert drawn[(row.round, row.device)] <= row.quota_wh + slack_wh, row
        assert row.metered_wh == pytest.approx(drawn[(row.round, row.device)], rel=0.01,
                                               abs=2e3)
    assert (dev[dev.quota_wh > 0].metered_wh > 0).all()


def test_bridge_restarted_mid_round_neither_double_counts_nor_loses_a_round(cfg, broker):
    site = Site(cfg, url_of(broker))
    restarts = []

    def on_round(r: RoundResult) -> None:
        if r.round == 1:  # restart the bridge while round 2 runs
            def restart() -> None:
                time.sleep(0.8)
                site.bridge.stop()
                time.sleep(0.3)
                site.bridge = site.new_bridge()
                restarts.append(time.monotonic())
            threading.Thread(target=restart, daemon=True).start()

    try:
        out = site.run(on_round)
        time.sleep(0.5)
        true_wh = site.true_business_wh()
    finally:
        site.close()
    s = out.summary
    assert restarts and s["rounds_completed"] == ROUNDS and s["error"] is None
    assert sorted(out.rounds["round"]) == list(range(ROUNDS))
    metered_wh = out.businesses.pivot(index="round", columns="business",
                                      values="metered_wh").sum(axis=0).to_numpy()
    np.testing.assert_allclose(metered_wh, true_wh, rtol=0.01)


def test_killed_controller_leaves_relays_off_by_valid_until(cfg, broker, tmp_path) -> None:
    url = url_of(broker)
    site = Site(cfg, url)
    ctl = start_endless_controller(CONFIG_TOML, ROUNDS, url, tmp_path)
    ids = [d.id for d in cfg.devices.map]
    try:
        wait_for(lambda: any(site.fleet.is_on(d) for d in ids), 60, "a relay switched on")
        ctl.kill()
        ctl.wait(10)
        killed_at = time.monotonic()
        # valid_until = round end + one metering interval: at most 2.5 s + 0.125 s away; the
        # bridge switches the relay off then (+ one polling interval at worst)
        wait_for(lambda: not any(site.fleet.is_on(d) for d in ids), 5, "all relays off")
        assert time.monotonic() - killed_at < 2.5 + 2 * site.interval_s + 0.5
    finally:
        if ctl.poll() is None:
            ctl.kill()
        site.close()
