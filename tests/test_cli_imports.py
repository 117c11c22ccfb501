"""`lastwatt --help` and `lastwatt run` import only what they need: the heavy optional
libraries (plotting, solar geometry, cluster, MQTT, Modbus) load only when a command uses
them. Each case runs the CLI in a fresh interpreter and lists the top-level packages it
loaded."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, runpy, sys
sys.argv = ["lastwatt", *sys.argv[1:]]
try:
    runpy.run_module("lastwatt.cli", run_name="__main__")
except SystemExit:
    pass
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""
LAZY = {"matplotlib", "pvlib", "dask", "distributed", "paho", "pymodbus", "scipy"}


def _loaded(*args: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True,
                          text=True, timeout=300, check=True)
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_help_imports_neither_the_data_stack_nor_optional_libraries():
    loaded = _loaded("--help")
    assert "typer" in loaded  # the probe saw the CLI load
    assert not loaded & (LAZY | {"pandas", "pyarrow", "numpy", "simpy"})


@pytest.mark.parametrize("extra", [[], ["--meter-readings"]])
def test_run_imports_no_optional_library(tmp_path, extra):
    loaded = _loaded("run", "--rounds", "3", "--quiet", "--out", str(tmp_path), *extra)
    assert {"pandas", "simpy"} <= loaded  # it ran
    assert not loaded & LAZY
    # and the flag chose the devices: analytic ones book every device once per round
    [run] = (json.loads(p.read_text()) for p in tmp_path.glob("*/run.json"))
    assert run["config"]["output"]["meter_readings"] is bool(extra)
    assert (run["summary"]["meter"]["booked"] == 3 * 20) is not bool(extra)
