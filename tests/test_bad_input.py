"""Bad configs and CLI arguments: one line naming the field and the fix, exit code 2."""

import subprocess
import sys
from pathlib import Path

import pytest

from lastwatt.config import load_config
from lastwatt.errors import ConfigError

BAD_CONFIGS = [
    ("rounds = 0", "rounds", "greater than or equal to 1"),
    ("seed = -1", "seed", "greater than or equal to 0"),
    ("site = 'a b/c'", "site", "pattern"),
    ("[businesses]\nactive_set = 30", "active_set=30 exceeds count=20", ""),
    ("[businesses]\ncount = 0", "businesses.count", "greater than or equal to 1"),
    ("[businesses]\nqualities = [1.0, 2.0]", "qualities has 2 values", ""),
    ("[population]\nhouseholds = 0", "population.households", ""),
    ("[population]\npolicies = {softmax = 0.5}", "sum to 1", ""),
    ("[population]\npolicies = {psychic = 1.0}", "population.policies.psychic", ""),
    ("[population]\nabstain_probability = 1.5", "population.abstain_probability", ""),
    ("[mechanism]\nslash_fraction = 2", "mechanism.slash_fraction", ""),
    ("[mechanism]\nreward_share = 'lots'", "mechanism.reward_share", "number"),
    ("[time]\nround_s = -5", "time.round_s", "greater than 0"),
    ("[time]\nround_s = 60\nmetering_interval_s = 120", "exceeds round_s", ""),
    ("[time]\nspeed = 0", "time.speed", ""),
    ("[devices]\nprofile = 'sine'", "devices.profile", "constant"),
    ("[[devices.map]]\nid = 'plug-1'\nbusiness = 99", "devices.map[0].business=99", ""),
    ("[[devices.map]]\nid = 'bad id!'\nbusiness = 0", "devices.map.0.id", "pattern"),
    ("[mechanism]\nslash_fractoin = 0.1", "mechanism.slash_fractoin", "unknown key"),
    ("rounds = 10\nrounds = 20", "not valid TOML", ""),
    ("[output]\nformat = 'xlsx'", "output.format", "parquet"),
]


@pytest.mark.parametrize(("text", "names", "says"), BAD_CONFIGS, ids=[c[1] for c in BAD_CONFIGS])
def test_bad_config_value_is_one_line_error_naming_the_field(tmp_path, text, names, says):
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "\n" not in message
    assert names in message and says in message
    assert str(path) in message


def test_missing_config_file_names_the_path(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_override_of_unknown_field_is_rejected():
    from lastwatt.config import Config

    with pytest.raises(ConfigError, match=r"businesses\.nope: no such config field"):
        Config().with_overrides(**{"businesses.nope": 1})


def lastwatt(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lastwatt.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


BAD_ARGS = [
    (["run", "--rounds", "0"], "--rounds: must be > 0"),
    (["run", "--rounds", "many"], "Invalid value for '--rounds'"),
    (["run", "--format", "xlsx"], "--format: must be parquet or csv"),
    (["run", "--speed", "-2"], "--speed: must be > 0"),
    (["run", "missing.toml"], "config file not found"),
    (["check", "missing.toml"], "config file not found"),
    (["run", "--seed", "-3"], "seed"),
    (["sweep", "--seeds", "0"], "--seeds: must be > 0"),
    (["report", "no-such-run"], "no-such-run"),
]


@pytest.mark.parametrize(("args", "says"), BAD_ARGS, ids=[" ".join(a) for a, _ in BAD_ARGS])
def test_bad_cli_argument_exits_2_with_a_message_not_a_traceback(tmp_path, args, says):
    proc = lastwatt(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert says in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_bad_config_through_the_cli_is_one_line_on_stderr(tmp_path):
    (tmp_path / "c.toml").write_text("[businesses]\nactive_set = 30\n")
    proc = lastwatt("check", "c.toml", cwd=tmp_path)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "active_set=30 exceeds count=20" in lines[0]
