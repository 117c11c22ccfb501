"""Modbus config and register maps: bad config is one line naming the field and exit 2;
Eastron float32 decoding against hand-packed IEEE-754 words."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_bridge.modbus.registers import METERS, Garbage, Register, check_energy
from tests.servers import free_port

ROOT = Path(__file__).parents[2]
GOOD = """
[[devices]]
id = "r1"
business = 0
dialect = "modbus"

[modbus.devices.r1]
host = "127.0.0.1"
port = {port}
unit_id = 1
coil = 0
"""


def run_bridge(tmp_path: Path, toml: str) -> subprocess.CompletedProcess:
    path = tmp_path / "bridge.toml"
    path.write_text(toml)
    return subprocess.run(
        [sys.executable, "-m", "firmware_bridge", "--config", str(path), "--mqtt",
         f"mqtt://127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.mark.parametrize(("change", "field"), [
    (("unit_id = 1", "unit_id = 248"), "modbus.devices.r1.unit_id"),
    (("unit_id = 1", "unit_id = 0"), "modbus.devices.r1.unit_id"),
    (("coil = 0", "coil = 0\n[modbus.devices.r1.meter]\nmodel = \"generic\"\nmax_power_w = 5000"
      "\nenergy = {address = 10, type = \"float24\"}"), "modbus.devices.r1.meter.energy.type"),
    (("coil = 0", "coil = 0\n[modbus.devices.r1.meter]\nmodel = \"generic\"\nmax_power_w = 5000"
      "\nenergy = {address = 10, type = \"uint32\"}\npower = {address = 11}"),
     "modbus.devices.r1.meter"),
    (("dialect = \"modbus\"", "dialect = \"modbus\"\n[[devices]]\nid = \"r2\"\nbusiness = 0\n"
      "dialect = \"modbus\"\n[modbus.devices.r2]\nport = {port}\n"), "modbus: devices.r"),
    (("[modbus.devices.r1]", "[modbus.devices.typo]"), "(top level): devices[0] (r1)"),
])
def test_bad_modbus_config_is_one_line_naming_the_field_and_exit_2(tmp_path, change, field):
    port = free_port()
    toml = GOOD.replace(*change).replace("{port}", str(port))
    out = run_bridge(tmp_path, toml)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert field in lines[0], lines[0]


def test_unreachable_modbus_host_at_start_exits_2_naming_the_host_field(tmp_path):
    out = run_bridge(tmp_path, GOOD.replace("{port}", str(free_port())))  # nothing listens
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        line for line in out.stderr.strip().splitlines() if "modbus.devices.r1.host" in line]


def _words(value: float, order: str = ">") -> list[int]:
    return list(struct.unpack(">HH", struct.pack(f"{order}f", value)))


def test_eastron_maps_are_the_vendor_addresses_as_float32_input_registers():
    # SDM120: 30013 active power (0x000C), 30343 total active energy (0x0156);
    # SDM630: 30053 total system power (0x0034); energy in kWh
    assert (METERS["sdm120"].power.address, METERS["sdm120"].energy.address) == (0x0C, 0x156)
    assert METERS["sdm630"].power.address == 0x34
    for m in METERS.values():
        assert m.energy.type == "float32" and m.energy.table == "input"
        assert m.energy.scale == 1000.0 and m.energy.word_order == "big"


def test_float32_kwh_register_decodes_to_wh_high_word_first():
    assert check_energy(METERS["sdm120"].energy, _words(123.25)) == 123_250.0
    assert Register(0, "uint32", scale=10.0).decode([0x0001, 0x0002]) == 655_380.0
    assert Register(0, "uint32", word_order="little").decode([0x0002, 0x0001]) == 65_538.0


@pytest.mark.parametrize(("words", "kind"), [
    ([0x7FC0, 0x0000], "garbage"),  # NaN
    ([0xFF80, 0x0000], "garbage"),  # -inf
    (_words(-5.0), "garbage"),
    (list(reversed(_words(123.25))), "word_order"),  # 0xF6E9... negative; swapped reads sanely
])
def test_garbage_and_swapped_words_are_rejected_with_their_kind(words, kind):
    with pytest.raises(Garbage) as err:
        check_energy(METERS["sdm120"].energy, words)
    assert err.value.kind == kind
