"""Issue 14's bad inputs: each one line naming the field and the fix, exit code 2, no traceback.

Configs go through ``lastwatt check`` (the operator's first step) and argument errors through
``lastwatt run``/``devices``/``sweep``; every case runs the real CLI in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lastwatt.errors import ConfigError, InputError
from lastwatt.messages import DeviceStatus, MessageError, MeterReading, Setpoint, decode
from lastwatt.sizing import check_fleet_size, check_run_size

INF, NAN = "inf", "nan"


def lastwatt(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lastwatt.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def assert_one_line_exit_2(proc: subprocess.CompletedProcess, says: str) -> None:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert says in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout


# (TOML, what the one line must name)
NON_FINITE = [
    (f"[container]\npeak_power_w = {INF}", "container.peak_power_w"),
    (f"[container]\npeak_power_w = {NAN}", "container.peak_power_w"),
    (f"[time]\nround_s = {INF}", "time.round_s"),
    (f"[time]\nmetering_interval_s = {NAN}", "time.metering_interval_s"),
    (f"[time]\nspeed = {INF}", "time.speed"),
    (f"[businesses]\nmax_power_w_high = {INF}", "businesses.max_power_w_high"),
    (f"[businesses]\nmax_power_w_low = {NAN}", "businesses.max_power_w_low"),
    (f"[businesses]\nperformance_sd = {INF}", "businesses.performance_sd"),
    (f"[businesses]\nrevenue_per_result = {INF}", "businesses.revenue_per_result"),
    (f"[businesses]\nqualities = [{NAN}, 1.0]\ncount = 2\nactive_set = 1",
     "businesses.qualities.0"),
    (f"[population]\ntokens_per_household = {INF}", "population.tokens_per_household"),
    (f"[population]\npolicies = {{softmax = {NAN}, herding = 1.0}}", "population.policies"),
    (f"[population]\npolicies = {{softmax = {INF}}}", "population.policies"),
    (f"[population]\nrating_noise_sd = {INF}", "population.rating_noise_sd"),
    (f"[population]\ntemperature = {INF}", "population.temperature"),
    (f"[population]\nabstain_probability = {NAN}", "population.abstain_probability"),
    (f"[mechanism]\nreward_share = {NAN}", "mechanism.reward_share"),
    (f"[mechanism]\nslash_fraction = {NAN}", "mechanism.slash_fraction"),
    (f"[mechanism]\ninflation_rate = {NAN}", "mechanism.inflation_rate"),
    (f"[demand]\ncommunity_w = {INF}", "demand.community_w"),
    (f"[demand]\nreserve_fraction = {NAN}", "demand.reserve_fraction"),
    (f"[weather]\nnoise_sd = {NAN}", "weather.noise_sd"),
    (f"[weather]\nclearness = [1.0, {NAN}, 0.2]", "weather.clearness"),
    (f"[container]\nlatitude_deg = {NAN}", "container.latitude_deg"),
    (f"[container]\ninverter_efficiency = {NAN}", "container.inverter_efficiency"),
    (f"[devices]\nnoise_sd = {NAN}", "devices.noise_sd"),
    (f"[devices]\nplausibility_margin = {INF}", "devices.plausibility_margin"),
    (f"[devices]\nmax_clock_skew_s = {INF}", "devices.max_clock_skew_s"),
]
SIZES = [
    ("rounds = 1_000_000_000", "lower rounds"),
    ("[businesses]\ncount = 100_000_000\nactive_set = 5", "businesses.count"),
    ("[population]\nhouseholds = 10_000_000_000", "population.households"),
    ("rounds = 10_000_000\n[devices]\nper_business = 1000", "devices.per_business"),
]
OTHER_CONFIGS = [
    ("[[devices.map]]\nid = 'p1'\nbusiness = 0\n[[devices.map]]\nid = 'p1'\nbusiness = 1",
     "duplicate"),
    ("[[devices.map]]\nid = 'a'\nbusiness = 0\n[[devices.map]]\nid = 'b'\nbusiness = 0\n"
     "[[devices.map]]\nid = 'a'\nbusiness = 2", "map[2].id='a' is a duplicate"),
    ("[devices]\nplausibility_margin = 0.5", "devices.plausibility_margin"),
    ("[devices]\nmax_clock_skew_s = 0", "devices.max_clock_skew_s"),
    ("[output]\ncheckpoint_rounds = 0", "output.checkpoint_rounds"),
    ("[output]\ncheckpoint_rounds = 'daily'", "output.checkpoint_rounds"),
    ("[population]\npolicies = {softmax = 1.5, herding = -0.5}", "sum to 1"),
    ("rounds = 1.5", "rounds"),
]
CONFIG_CASES = NON_FINITE + SIZES + OTHER_CONFIGS


@pytest.mark.parametrize(("text", "names"), CONFIG_CASES, ids=[c[1] for c in CONFIG_CASES])
def test_check_refuses_bad_config_in_one_line_with_exit_2(tmp_path, text, names):
    (tmp_path / "c.toml").write_text(text + "\n")
    assert_one_line_exit_2(lastwatt("check", "c.toml", cwd=tmp_path), names)


BAD_ARGS = [
    (["run", "--rounds", "1e3"], "--rounds"),
    (["run", "--rounds", ""], "--rounds"),
    (["run", "--seed", "forty-two"], "--seed"),
    (["run", "--speed", "fast"], "--speed"),
    (["run", "--speed", "inf"], "time.speed"),
    (["run", "--speed", "nan"], "time.speed"),
    (["run", "--checkpoint-every", "0"], "--checkpoint-every"),
    (["run", "--checkpoint-every", "often"], "--checkpoint-every"),
    (["run", "--rounds", "999999999999"], "lower rounds"),
    (["run", "--no-such-option"], "No such option"),
    (["run", "--resume", "nowhere"], "--resume"),
    (["run", "--resume", "nowhere", "--rounds", "3"], "--resume"),
    (["sweep", "--seeds", "x"], "--seeds"),
    (["sweep", "--workers", "0"], "--workers"),
    (["report"], "Missing argument"),
    (["check"], "Missing argument"),
    (["devices", "--mqtt", "mqtt://127.0.0.1:1", "--count", "1000000000"], "--count"),
    (["devices", "--mqtt", "mqtt://127.0.0.1:1", "--count", "many"], "--count"),
    (["devices", "--mqtt", "mqtt://127.0.0.1:1", "--telemetry-s", "soon"], "--telemetry-s"),
    (["devices", "--mqtt", "mqtt://127.0.0.1:1", "--dialect", "zigbee"], "--dialect"),
]


@pytest.mark.parametrize(("args", "says"), BAD_ARGS, ids=[" ".join(a) for a, _ in BAD_ARGS])
def test_bad_argument_is_one_line_with_exit_2(tmp_path, args, says):
    assert_one_line_exit_2(lastwatt(*args, cwd=tmp_path), says)


def test_out_naming_a_file_is_refused_before_the_run(tmp_path):
    (tmp_path / "taken").write_text("not a folder")
    proc = lastwatt("run", "--rounds", "3", "--out", "taken", cwd=tmp_path)
    assert_one_line_exit_2(proc, "is a file")
    assert (tmp_path / "taken").read_text() == "not a folder"


def test_out_below_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("")
    assert_one_line_exit_2(lastwatt("run", "--rounds", "3", "--out", "f/runs", cwd=tmp_path),
                           "is a file")


def test_out_in_a_place_that_cannot_be_created_is_refused(tmp_path):
    # /proc refuses new folders even to root (a chmod-ed folder would not stop root)
    assert_one_line_exit_2(lastwatt("run", "--rounds", "3", "--out", "/proc/lastwatt-runs",
                                    cwd=tmp_path), "cannot create the folder")


def test_rerun_into_an_existing_run_folder_is_refused_and_keeps_the_run(tmp_path):
    first = lastwatt("run", "--rounds", "3", "--quiet", "--out", "runs", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    [run_dir] = (tmp_path / "runs").iterdir()
    before = (run_dir / "rounds.parquet").read_bytes()
    again = lastwatt("run", "--rounds", "3", "--quiet", "--out", "runs", cwd=tmp_path)
    assert_one_line_exit_2(again, "--overwrite")
    assert (run_dir / "rounds.parquet").read_bytes() == before
    forced = lastwatt("run", "--rounds", "3", "--quiet", "--out", "runs", "--overwrite",
                      cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr


def test_resume_of_a_complete_run_is_refused(tmp_path):
    lastwatt("run", "--rounds", "3", "--quiet", "--out", "runs", cwd=tmp_path)
    [run_dir] = (tmp_path / "runs").iterdir()
    assert_one_line_exit_2(lastwatt("run", "--resume", str(run_dir), cwd=tmp_path),
                           "complete")


def test_resume_of_a_folder_with_a_damaged_checkpoint_is_refused(tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    from lastwatt.config import Config

    (run_dir / "run.json").write_text(json.dumps(
        {"status": "running", "config": Config().model_dump(mode="json")}))
    (run_dir / "checkpoint.pkl").write_bytes(b"garbage")
    from lastwatt.simulation import run_id_of

    good = tmp_path / run_id_of(Config())
    run_dir.rename(good)
    assert_one_line_exit_2(lastwatt("run", "--resume", str(good), cwd=tmp_path), "checkpoint")


# -- in-process: the same validators, without a subprocess each ---------------------------
def test_size_estimate_refuses_what_does_not_fit_and_names_the_fields():
    from lastwatt.config import Config

    with pytest.raises(ConfigError, match=r"businesses\.count"):
        check_run_size(Config(), available=1024)
    check_run_size(Config(), available=2**40)  # the default year fits in 1 TiB
    with pytest.raises(InputError, match="--count"):
        check_fleet_size(10**9, available=2**34)


GOOD = {"v": 1, "device": "d1", "ts": 5.0, "energy_wh": 1.0, "power_w": 2.0, "on": True}
LAX = [
    (MeterReading, {**GOOD, "energy_wh": "100"}),
    (MeterReading, {**GOOD, "power_w": "2"}),
    (MeterReading, {**GOOD, "ts": "5"}),
    (MeterReading, {**GOOD, "on": "yes"}),
    (MeterReading, {**GOOD, "on": 1}),
    (MeterReading, {**GOOD, "on": "true"}),
    (MeterReading, {**GOOD, "epoch": "1"}),
    (MeterReading, {**GOOD, "epoch": 1.5}),
    (MeterReading, {**GOOD, "energy_wh": True}),
    (DeviceStatus, {"v": 1, "device": "d1", "online": "false"}),
    (DeviceStatus, {"v": 1, "device": "d1", "online": 0}),
    (Setpoint, {"v": 1, "device": "d1", "round": "3", "on": True, "power_w": 1.0,
                "quota_wh": 1.0, "valid_until": 1.0}),
]


@pytest.mark.parametrize(("cls", "data"), LAX, ids=[str(d) for _, d in LAX])
def test_wire_values_are_not_coerced_from_strings_or_numbers(cls, data):
    with pytest.raises(MessageError) as err:
        decode(cls, json.dumps(data))
    assert err.value.kind == "schema"
