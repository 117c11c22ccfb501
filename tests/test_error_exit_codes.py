"""Bad input exits 2; a service failing at run time exits 3 — both one line, no traceback."""

from tests.servers import free_port
from tests.test_bad_input import lastwatt


def test_an_unreachable_broker_exits_3_as_a_service_failure_not_as_bad_input(tmp_path):
    (tmp_path / "c.toml").write_text("[mqtt]\nconnect_timeout_s = 0.5\n")
    url = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens there
    proc = lastwatt("run", "c.toml", "--rounds", "1", "--quiet", "--mqtt", url, cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"cannot connect to {url}" in errors[0]
    assert "Traceback" not in proc.stderr + proc.stdout


def test_a_bad_argument_still_exits_2(tmp_path):
    proc = lastwatt("run", "--rounds", "0", cwd=tmp_path)
    assert proc.returncode == 2 and "--rounds: must be > 0" in proc.stderr
