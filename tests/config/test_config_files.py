"""The config files the project ships (examples/, deploy/compose/) load and validate, the bridge
configs serve the devices of the run configs beside them, and `lastwatt check` describes a
valid config."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lastwatt.cli import app
from lastwatt.config import Config, load_config
from lastwatt.config.bridge import BridgeConfig, load_bridge_config

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted([*(ROOT / "examples").glob("*.toml"),
                  *(ROOT / "deploy" / "compose").glob("*.toml")])


def test_the_shipped_config_files_are_the_ones_this_test_knows():
    names = {str(p.relative_to(ROOT)) for p in SHIPPED}
    assert {"examples/bridge.toml", "examples/default.toml", "examples/fleet.toml",
            "deploy/compose/bridge.toml", "deploy/compose/village.toml"} <= names
    assert len(names) >= 9


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_config_file_validates(path: Path):
    loaded = load_bridge_config(path) if path.name == "bridge.toml" else load_config(path)
    assert isinstance(loaded, BridgeConfig if path.name == "bridge.toml" else Config)


def test_compose_bridge_serves_the_compose_village_devices():
    bridge = load_bridge_config(ROOT / "deploy" / "compose" / "bridge.toml")
    village = load_config(ROOT / "deploy" / "compose" / "village.toml")
    assert bridge.site == village.site
    assert bridge.devices == list(village.devices.map)
    assert {d.dialect for d in bridge.devices} == {"native", "tasmota", "shelly"}


def test_example_bridge_serves_the_vendor_devices_of_the_example_fleet():
    bridge = load_bridge_config(ROOT / "examples" / "bridge.toml")
    fleet = load_config(ROOT / "examples" / "fleet.toml")
    assert bridge.site == fleet.site
    assert bridge.vendor_devices == [d for d in fleet.devices.map if d.dialect != "native"]
    assert [d.id for d in bridge.vendor_devices] == ["b003-plug", "b004-relay"]


def _check(path: Path) -> str:
    result = CliRunner().invoke(app, ["check", str(path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def test_check_describes_the_default_scenario():
    out = _check(ROOT / "examples" / "default.toml")
    assert "default.toml: valid" in out
    for expected in ("default / village / 42", "8760 x 3600 s (metering every 60 s)",
                     "320 households x 1 token", "softmax 60%, herding 30%, loyal 10%",
                     "N = 20, active set I = 5", "20 (mock, auto)", "markov"):
        assert expected in out, expected
    assert "244413.3" in out  # the default year's production, as README's run prints it


def test_check_prints_the_specific_yield_of_a_tmy_year():
    out = _check(ROOT / "examples" / "greensboro.toml")
    assert "specific_yield_kwh_per_kwp" in out and "1389.3" in out  # README's figure


def test_check_counts_a_mapped_fleet():
    assert "5 (mapped)" in _check(ROOT / "examples" / "fleet.toml")
