"""Setup shared by the end-to-end tests (controller + bridge + devices on a real mosquitto):
the run config, the persistent broker, the controller run and the killed-controller process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lastwatt.config import Config, load_config
from lastwatt.simulation import RunOutput, run_simulation
from lastwatt.transport.mqtt import MqttTransport, make_mqtt_transport
from tests.servers import Server, mosquitto_server

REPO = Path(__file__).parents[1]


def run_config_toml(rounds: int, speed: float, businesses: int, devices: list[str]) -> str:
    """A sunny-morning accelerated real-time run: each round's pool is below the selected
    businesses' caps. ``devices`` are the bodies of the ``[devices] map`` inline tables."""
    device_map = "".join(f"  {{{d}}},\n" for d in devices)
    return f"""
rounds = {rounds}
seed = 3
site = "village"
[time]
round_s = 3600
metering_interval_s = 180
start = 2026-03-01T08:00:00Z
realtime = true
speed = {speed}
[container]
peak_power_w = 2e6
[businesses]
count = {businesses}
active_set = 3
max_power_w_low = 8e5
max_power_w_high = 1.5e6
[devices]
noise_sd = 0.0
map = [
{device_map}]
[mqtt]
reconnect_min_delay_s = 0.1
reconnect_max_delay_s = 0.5
"""


def write_config(path: Path, toml: str) -> Config:
    path.write_text(toml)
    return load_config(path)


def persistent_broker(tmp_path: Path) -> Iterator[Server]:
    """A mosquitto with the deployment's persistence settings (deploy/mosquitto): state saved
    on every change. For a fixture: ``yield from persistent_broker(tmp_path)``."""
    srv = mosquitto_server(tmp_path, "autosave_on_changes true\nautosave_interval 1\n").start()
    yield srv
    srv.stop()


def run_controller(cfg: Config, url: str, on_round=None) -> tuple[RunOutput, MqttTransport]:
    """Run the controller in-process over MQTT; returns its output and transport."""
    ids = [d.id for d in cfg.devices.map]
    transport = make_mqtt_transport(url, cfg.mqtt, cfg.site, ids)
    return run_simulation(cfg, None, (), transport, progress=on_round,
                          settle_grace_s=0.5), transport


def business_wh(cfg: Config, true: dict[str, float], speed: float) -> np.ndarray:
    """Per-device physical Wh summed per business, in simulated Wh."""
    out = np.zeros(cfg.businesses.count)
    for d in cfg.devices.map:
        out[d.business] += true[d.id] * speed
    return out


def start_endless_controller(toml: str, rounds: int, url: str,
                             tmp_path: Path) -> subprocess.Popen:
    """The controller CLI on ``toml`` with its rounds made endless, to be killed by the test."""
    path = tmp_path / "e2e.toml"
    path.write_text(toml.replace(f"rounds = {rounds}", "rounds = 1000"))
    return subprocess.Popen(
        [sys.executable, "-m", "lastwatt.cli", "run", str(path), "--mqtt", url, "--quiet",
         "--out", str(tmp_path / "runs")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
