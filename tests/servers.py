"""Real servers for integration tests: mosquitto, influxd (1.x), victoria-metrics.

Each runs as a plain user process on a free loopback port in a temp dir. When a binary is
missing the test skips on a developer's machine but fails under CI=true: CI must never go
green by skipping the servers it was asked to test against.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def require_binary(name: str) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None
    )
    if path is None:
        msg = f"{name} not installed (apt-get install -y the package that provides it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout_s} s")


def tcp_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as r:
        return 200 <= r.status < 300


@dataclass
class Server:
    """A server process that can be killed and restarted on the same port and data dir."""

    argv: list[str]
    port: int
    ready: Callable[[], bool]
    workdir: Path
    proc: subprocess.Popen | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.workdir / f"{Path(self.argv[0]).name}.log"

    def start(self, timeout_s: float = 20.0) -> Server:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                start_new_session=True,
            )
        try:
            wait_for(self.ready, timeout_s, self.argv[0])
        except TimeoutError:
            self.stop()
            log = self.log.read_text()[-2000:]
            raise RuntimeError(f"{self.argv[0]} did not start; log:\n{log}") from None
        return self

    def kill(self) -> None:
        """Hard kill (SIGKILL): the crash case."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def mosquitto_server(workdir: Path, extra_conf: str = "", port: int | None = None) -> Server:
    binary = require_binary("mosquitto")
    port = port or free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        + ("allow_anonymous true\n" if "allow_anonymous" not in extra_conf else "")
        + f"persistence true\npersistence_location {workdir}/\n"
        # as root, mosquitto drops to user "mosquitto", which cannot write workdir: stay ourselves
        + f"user {getpass.getuser()}\n"
        + "max_queued_messages 100000\nmax_inflight_messages 1000\n"
        + extra_conf
    )
    return Server([binary, "-c", str(conf)], port, lambda: tcp_open(port), workdir)


def influxd_server(workdir: Path, auth: bool = False) -> Server:
    """influxd 1.x; ``auth``: authentication on (create the first admin with CREATE USER)."""
    binary = require_binary("influxd")
    port, rpc = free_port(), free_port()
    raw = subprocess.run([binary, "config"], capture_output=True, text=True, check=True).stdout
    lines, section = [], ""
    for line in raw.splitlines():
        s = line.strip()
        if s.startswith("["):
            section = s
        key = s.split("=")[0].strip()
        if section == "" and key == "bind-address":
            line = f'bind-address = "127.0.0.1:{rpc}"'
        elif section == "[meta]" and key == "dir":
            line = f'  dir = "{workdir}/meta"'
        elif section == "[data]" and key == "dir":
            line = f'  dir = "{workdir}/data"'
        elif section == "[data]" and key == "wal-dir":
            line = f'  wal-dir = "{workdir}/wal"'
        elif section == "[http]" and key == "bind-address":
            line = f'  bind-address = "127.0.0.1:{port}"'
        elif section == "[http]" and key == "auth-enabled":
            line = f"  auth-enabled = {'true' if auth else 'false'}"
        elif key == "reporting-disabled":
            line = "reporting-disabled = true"
        elif section == "[[udp]]" or section == "[[graphite]]" or section == "[[opentsdb]]":
            pass
        lines.append(line)
    conf = workdir / "influxd.conf"
    conf.write_text("\n".join(lines) + "\n")
    return Server(
        [binary, "-config", str(conf)], port, lambda: http_ok(f"http://127.0.0.1:{port}/ping"),
        workdir,
    )


def victoria_metrics_server(workdir: Path, *extra: str) -> Server:
    """``extra``: more flags, e.g. ``-retentionPeriod=1d``."""
    binary = require_binary("victoria-metrics")
    port = free_port()
    return Server(
        [binary, f"-httpListenAddr=127.0.0.1:{port}", f"-storageDataPath={workdir}/vm",
         "-search.latencyOffset=0s", "-loggerLevel=ERROR", *extra],
        port, lambda: http_ok(f"http://127.0.0.1:{port}/health"), workdir,
    )
