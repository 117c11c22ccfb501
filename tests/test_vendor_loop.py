"""The hardware loop against plugs written from the vendors' documents, not LastWatt's own
simulated firmware (tests/vendor_emulators.py): controller + bridge + 2 Tasmota (one build
without PulseTime) + 2 Shelly Gen2 + native devices on a real mosquitto, in accelerated
real time. The plugs' own energy registers are the reference for what is recorded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from firmware_bridge.bridge import Bridge
from firmware_bridge.simulated.fleet import Fleet
from firmware_bridge.simulated.site import fleet_devices, fleet_options
from lastwatt.config import Config
from lastwatt.config.bridge import BridgeConfig
from lastwatt.messages import DeviceStatus, decode
from lastwatt.result import RoundResult
from lastwatt.simulation import RunOutput
from lastwatt.transport import topics
from lastwatt.transport.mqtt_client import MqttClient
from tests.e2e_helpers import persistent_broker, run_config_toml, run_controller, write_config
from tests.mqtt_helpers import FAST, url_of
from tests.servers import wait_for
from tests.vendor_emulators import Emulator, ShellyEmulator, TasmotaEmulator

pytestmark = pytest.mark.integration

ROUNDS = 6
SPEED = 720.0  # a 1 h round in 5 s: one metering interval is 0.25 s of wall time
VENDOR = {"t1": 1, "t2": 2, "s3": 3, "s4": 5}  # device -> business
# the pool is below the selected businesses' caps: plugs stop at their quotas mid-round
CONFIG_TOML = run_config_toml(ROUNDS, SPEED, 6, [
    'id = "n0", business = 0',
    'id = "t1", business = 1, dialect = "tasmota", topic = "tasmota_A1B2C3"',
    'id = "t2", business = 2, dialect = "tasmota", topic = "tasmota_D4E5F6"',
    'id = "s3", business = 3, dialect = "shelly", topic = "shellyplus1pm-a8032ab12345"',
    'id = "n4", business = 4',
    'id = "s4", business = 5, dialect = "shelly", topic = "shellyplusplugs-e465b8aa0101"',
    'id = "n5", business = 5',
])
ON_POLL_S = 0.05  # wall: 36 simulated seconds, a fifth of one metering interval


@pytest.fixture()
def cfg(tmp_path) -> Config:
    return write_config(tmp_path / "vendor.toml", CONFIG_TOML)


@pytest.fixture()
def broker(tmp_path):
    yield from persistent_broker(tmp_path)


class VendorSite:
    """Emulated vendor plugs and the native fleet; the bridge in-process unless told not to."""

    def __init__(self, cfg: Config, url: str, port: int, bridge: bool = True) -> None:
        self.cfg, self.url = cfg, url
        power = {d.id: d.max_power_w for d in fleet_devices(cfg)}
        topic = {d.id: d.topic for d in cfg.devices.map}
        self.plugs: dict[str, Emulator] = {
            "t1": TasmotaEmulator(port, topic["t1"], power["t1"]),
            "t2": TasmotaEmulator(port, topic["t2"], power["t2"], pulsetime=False),
            "s3": ShellyEmulator(port, topic["s3"], power["s3"]),
            "s4": ShellyEmulator(port, topic["s4"], power["s4"]),
        }
        for plug in self.plugs.values():
            plug.start()
        natives = [d for d in fleet_devices(cfg) if d.dialect == "native"]
        self.fleet = Fleet(url, natives, fleet_options(cfg, connections=0)).start()
        self.power = power
        self.bridge = (Bridge(BridgeConfig.from_lastwatt(cfg, poll_s=0, on_poll_s=ON_POLL_S),
                              url).start() if bridge else None)

    def counters(self) -> dict[str, float]:
        """Every device's own register now, physical Wh (the plugs' and the natives')."""
        return {**self.fleet.true_energy_wh(),
                **{d: p.counter_wh for d, p in self.plugs.items()}}

    def run(self, on_round=None) -> RunOutput:
        out, self.transport = run_controller(self.cfg, self.url, on_round)
        return out

    def close(self) -> None:
        if self.bridge is not None:
            self.bridge.stop()
        self.fleet.stop()
        for plug in self.plugs.values():
            plug.stop()


def _check_run(cfg: Config, site: VendorSite, out: RunOutput,
               snapshots: list[dict[str, float]]) -> None:
    s = out.summary
    assert s["rounds_completed"] == ROUNDS and s["error"] is None
    assert sum(s["rejected"].values()) == 0 and s["read_timeouts"] == 0
    assert s["no_off_timer"] == ["t2"]  # the build without PulseTime is flagged
    rounds = out.rounds
    assert len(rounds.selected[0]) > 0 and rounds.metered_wh[0] > 0  # round 0 selects
    dev = out.tables["devices"]
    recorded = dev.groupby("device").metered_wh.sum() / SPEED  # physical Wh
    drawn = {d: snapshots[-1][d] - snapshots[0][d] for d in snapshots[0]}
    for d in VENDOR:
        assert drawn[d] >= 0
        # recorded energy equals the plug's own register (its full-precision counter)
        assert recorded[d] == pytest.approx(drawn[d], rel=0.01, abs=1e-6), d
    assert sum(drawn[d] for d in VENDOR) > 0
    # quotas hold within one metering interval of draw, the plug without PulseTime included
    # (read at its predicted time to quota)
    for row in dev.itertuples():
        k = row.round
        used = (snapshots[k + 1][row.device] - snapshots[k][row.device]) * SPEED
        slack_wh = site.power[row.device] * cfg.time.metering_interval_s / 3600
        assert used <= row.quota_wh + slack_wh, row


def test_vendor_plugs_meter_what_their_own_counters_count_in_two_runs(cfg, broker) -> None:
    """Two runs against the same running bridge, plugs and fleet: the second run's round 0
    outranks the first run's last round (run epoch), and both meter to 1 %."""
    site = VendorSite(cfg, url_of(broker), broker.port)
    try:
        for _ in range(2):
            snapshots = [site.counters()]
            out = site.run(lambda r, snaps=snapshots: snaps.append(site.counters()))
            time.sleep(0.3)
            snapshots[-1] = site.counters()  # after the last final read: nothing draws
            _check_run(cfg, site, out, snapshots)
        assert site.bridge is not None and site.bridge.counts["no_off_timer"] == 1
        # the bridge raised the Tasmota registers' resolution to 0.01 Wh (EnergyRes 5)
        assert [site.plugs[t].energy_res for t in ("t1", "t2")] == [5, 5]  # type: ignore[attr-defined]
    finally:
        site.close()


def _bridge_toml(cfg: Config, url: str, path: Path) -> Path:
    lines = [f'site = "{cfg.site}"', "poll_s = 0", f"on_poll_s = {ON_POLL_S}", "[mqtt]",
             f'url = "{url}"', "reconnect_min_delay_s = 0.1", "reconnect_max_delay_s = 0.5"]
    for d in cfg.devices.map:
        lines += ["[[devices]]", f'id = "{d.id}"', f"business = {d.business}",
                  f'dialect = "{d.dialect}"'] + ([f'topic = "{d.topic}"'] if d.topic else [])
    path.write_text("\n".join(lines) + "\n")
    return path


def _start_bridge(config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "firmware_bridge", "--config", str(config),
         "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=Path(__file__).parents[1],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_bridge_sigkill_takes_its_devices_offline_and_a_restart_replays_nothing(
        cfg, broker, tmp_path) -> None:
    url = url_of(broker)
    config = _bridge_toml(cfg, url, tmp_path / "bridge.toml")
    bridge_id = BridgeConfig(site=cfg.site).resolved_client_id()
    watcher = MqttClient(url, FAST, "watcher",
                         subscriptions=[topics.bridge_status_topic(cfg.site, bridge_id)]).start()
    site = VendorSite(cfg, url, broker.port, bridge=False)
    proc = _start_bridge(config)
    marks: dict[str, float] = {}
    seen: list[tuple[float, bool]] = []  # the bridge's statuses: (received, online)

    def bridge_says(online: bool, since: float = 0.0) -> bool:
        while (m := watcher.get_nowait()) is not None:
            seen.append((m.received_monotonic_s, decode(DeviceStatus, m.payload).online))
        return any(t >= since and o == online for t, o in seen)

    def kill() -> None:  # mid-round 2, plugs on
        marks["kill"] = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def restart() -> None:  # mid-round 4
        nonlocal proc
        marks["restart"] = time.monotonic()
        proc = _start_bridge(config)
        wait_for(lambda: bridge_says(True, marks["restart"]), 20, "the bridge's birth")
        time.sleep(0.3)  # the reconnect burst, before round 5's setpoints
        marks["burst_end"] = time.monotonic()

    def on_round(r: RoundResult) -> None:
        if r.round in (1, 3):
            threading.Timer(1.0, kill if r.round == 1 else restart).start()

    try:
        wait_for(lambda: bridge_says(True), 20, "the bridge's birth")
        out = site.run(on_round)
        wait_for(lambda: "burst_end" in marks, 20, "the restarted bridge")
    finally:
        proc.kill()
        proc.wait(10)
        watcher.stop()
        site.close()
    assert out.summary["rounds_completed"] == ROUNDS and out.summary["error"] is None
    # the broker published the Will at once (a killed process's socket closes)
    will_at = min(t for t, online in seen if not online and t >= marks["kill"])
    assert will_at - marks["kill"] < cfg.mqtt.keepalive_s
    dev = out.tables["devices"].set_index(["round", "device"])
    biz = out.businesses.set_index(["round", "business"])
    names = sorted(out.businesses.business.unique())
    for d, b in VENDOR.items():
        row = dev.loc[(3, d)]  # the round after the kill: offline, unknown, no energy
        assert row.online == 0 and row.quota_wh == 0, d
        assert pd.isna(row.on) and pd.isna(row.power_w), d
        if b != 5:  # business 5 has a native device too
            assert biz.loc[(3, names[b]), "planned_wh"] == 0
        assert dev.loc[(ROUNDS - 1, d), "online"] == 1  # back after the restart
    assert out.rounds.planned_wh[3] > 0  # the pool went to the businesses still online
    # after the restart each plug got its current state once, not a backlog of commands
    for d, plug in site.plugs.items():
        switched = [c for t, c in plug.commands
                    if marks["restart"] <= t <= marks["burst_end"]
                    and (c in ("POWER ON", "POWER OFF") or c.startswith("Switch.Set"))]
        assert len(switched) <= 2, (d, switched)
