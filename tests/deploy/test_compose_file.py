"""docker-compose.yml checked without an engine: the Compose specification's schema, mounted
files, the commands it runs, the variables it needs, and the .env generator."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if re.match(r"^[A-Z0-9_]+=", line))


def check_compose_schema(path: Path) -> subprocess.CompletedProcess:
    """The validator from this interpreter's environment (CI does not put the venv on PATH)."""
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(path)], capture_output=True, text=True, timeout=120)


def test_compose_file_is_valid_against_the_compose_specification_schema():
    # check-jsonschema ships the compose-spec schema (vendor.compose-spec) and keeps it current
    done = check_compose_schema(COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_schema_check_rejects_a_broken_compose_file(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  web:\n    image: nginx\n"
                      "    depends_on: {db: {condition: soon}}\n")
    done = check_compose_schema(broken)
    assert done.returncode == 1, done.stdout + done.stderr  # 1: invalid (not 2: tool error)
    assert "condition" in done.stdout + done.stderr


def _bind_sources(service: dict) -> list[str]:
    sources = []
    for v in service.get("volumes", []):
        src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
        if src.startswith((".", "/")):
            sources.append(src)
    return sources


def test_every_mounted_file_exists_in_the_repository():
    missing = [f"{name}: {src}" for name, svc in _compose()["services"].items()
               for src in _bind_sources(svc) if not (ROOT / src).exists()]
    assert not missing, "mounted but absent: " + ", ".join(missing)


def test_every_config_file_a_command_names_is_in_the_mounted_config_folder():
    for name, svc in _compose()["services"].items():
        for arg in svc.get("command", []) if isinstance(svc.get("command"), list) else []:
            if arg.startswith("/config/"):
                assert (ROOT / "deploy/compose" / arg.removeprefix("/config/")).is_file(), name


def test_every_lastwatt_command_is_a_console_script_the_package_installs():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    from lastwatt.cli import app
    subcommands = {c.name or c.callback.__name__ for c in app.registered_commands}
    built = {n: s for n, s in _compose()["services"].items() if s.get("image") == "lastwatt:local"}
    assert set(built) == {"controller", "bridge", "devices"}
    for name, svc in built.items():
        cmd = svc["command"]
        assert cmd[0] in scripts, f"{name} runs {cmd[0]}, not a console script"
        if cmd[0] == "lastwatt":
            assert cmd[1] in subcommands, f"{name} runs `lastwatt {cmd[1]}`: no such command"


def test_every_variable_the_compose_file_uses_is_in_env_example():
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    assert used, "the compose file takes its settings from .env"
    assert used <= set(_env_example()), used - set(_env_example())


def test_env_example_holds_no_usable_secret():
    for key, value in _env_example().items():
        if re.search(r"PASSWORD|TOKEN|SECRET", key):
            assert value == "", f"{key} must be empty in .env.example"


def test_secrets_have_no_default_and_grafana_allows_no_anonymous_access():
    text = COMPOSE.read_text()
    for key in _env_example():
        if re.search(r"PASSWORD|TOKEN", key):
            assert re.findall(rf"\$\{{{key}(.*?)\}}", text), key
            assert all(s.startswith(":?") for s in re.findall(rf"\$\{{{key}(.*?)\}}", text)), key
    grafana = _compose()["services"]["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def test_services_wait_for_healthy_dependencies_and_keep_data_in_named_volumes():
    compose = _compose()
    services = compose["services"]
    for name in ("mosquitto", "influxdb", "grafana"):
        assert "healthcheck" in services[name], name
    assert services["controller"]["depends_on"]["influxdb"]["condition"] == "service_healthy"
    assert services["controller"]["depends_on"]["mosquitto"]["condition"] == "service_healthy"
    named = set(compose["volumes"])
    for svc in services.values():
        for v in svc.get("volumes", []):
            src = v.split(":")[0]
            assert src.startswith(".") or src in named, src


def gen_env(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(ROOT / "scripts/gen-env.sh"), str(path)],
                          capture_output=True, text=True, timeout=30)


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_gen_env_fills_every_secret_with_fresh_random_values(tmp_path):
    assert gen_env(tmp_path / "a.env").returncode == 0
    assert gen_env(tmp_path / "b.env").returncode == 0
    first, second = read_env(tmp_path / "a.env"), read_env(tmp_path / "b.env")
    assert set(first) == set(_env_example())
    for key, value in first.items():
        if _env_example()[key] == "":
            assert re.fullmatch(r"[0-9a-f]{64}", value), key
            assert value != second[key]
        else:
            assert value == _env_example()[key]


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_gen_env_writes_the_file_itself_readable_only_by_its_owner(tmp_path):
    done = gen_env(tmp_path / ".env")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    assert done.stdout.count("\n") == 1 and "=" not in done.stdout  # no secret on stdout


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_gen_env_never_replaces_an_existing_env_file(tmp_path):
    (tmp_path / ".env").write_text("MQTT_CONTROLLER_PASSWORD=in-use\n")
    done = gen_env(tmp_path / ".env")
    assert done.returncode == 2 and done.stderr.startswith("error: ")
    assert len(done.stderr.strip().splitlines()) == 1
    assert (tmp_path / ".env").read_text() == "MQTT_CONTROLLER_PASSWORD=in-use\n"


def test_each_influx_token_goes_only_to_its_one_consumer():
    services = _compose()["services"]
    # the operator token stays with InfluxDB (setup and create-tokens.sh)
    holders = [n for n, s in services.items() if "${INFLUX_TOKEN" in str(s.get("environment"))]
    assert holders == ["influxdb"]
    influx_mounts = services["influxdb"]["volumes"]
    assert "influx-token-controller:/tokens/controller" in influx_mounts
    assert "influx-token-grafana:/tokens/grafana" in influx_mounts
    assert "influx-token-controller:/influx-token:ro" in services["controller"]["volumes"]
    assert "influx-token-grafana:/influx-token:ro" in services["grafana"]["volumes"]
    for name, svc in services.items():  # nobody else sees either token
        for vol in svc.get("volumes", []):
            if vol.startswith("influx-token-"):
                assert name in ("influxdb", vol.split("-")[2].split(":")[0]), (name, vol)
    village = tomllib.loads((ROOT / "deploy/compose/village.toml").read_text())["influx"]
    assert village["token_file"] == "/influx-token/token"
    datasource = (ROOT / "grafana/provisioning/datasources/lastwatt.yaml").read_text()
    assert "$__file{/influx-token/token}" in datasource and "INFLUX_TOKEN" not in datasource
    script = (ROOT / "deploy/influxdb/create-tokens.sh").read_text()
    assert "--write-bucket" in script and "--read-bucket" in script


@pytest.mark.parametrize("script, shell", [
    ("deploy/influxdb/create-tokens.sh", "bash"), ("deploy/mosquitto/make-passwd.sh", "sh"),
    ("deploy/mosquitto/healthcheck.sh", "sh"), ("scripts/gen-env.sh", "sh"),
])
def test_init_and_health_scripts_parse_and_keep_passwords_off_argv(script, shell):
    # InfluxDB 2.x cannot run here: create-tokens.sh is only syntax-checked
    assert subprocess.run([shell, "-n", str(ROOT / script)], capture_output=True).returncode == 0
    text = (ROOT / script).read_text()
    assert not re.search(r"mosquitto_passwd\s+[^\n]*-b\b|\s-P\s+\"?\$|--password", text), script


def test_org_and_bucket_come_from_env_only():
    village = tomllib.loads((ROOT / "deploy/compose/village.toml").read_text())["influx"]
    assert "org" not in village and "bucket" not in village
    assert (village["org_env"], village["bucket_env"]) == ("INFLUX_ORG", "INFLUX_BUCKET")
    env = _compose()["services"]["controller"]["environment"]
    assert env["INFLUX_ORG"].startswith("${INFLUX_ORG") and env["INFLUX_BUCKET"].startswith(
        "${INFLUX_BUCKET")
