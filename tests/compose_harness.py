"""docker-compose.yml without Docker: its services run from the repository's own files, mounted
at their container paths by bubblewrap, in one private network namespace.

What stands in for what (docs/monitoring.md, "Testing the stack without Docker"):

- **network**: one network namespace of our own (``unshare --net``); every service and
  healthcheck joins it (``nsenter``). Inside, compose's service names resolve to 127.0.0.1
  (a bind-mounted /etc/hosts), so the compose ports (1883, 8086) are used as written and
  nothing reaches the host's loopback.
- **images**: the host's Debian root, read-only (mosquitto and its clients from Debian), under
  a tmpfs root where each volume is bind-mounted at its in-container path (``:ro`` honoured),
  named volumes as directories of the test. ``lastwatt:local`` is this checkout: the test's
  venv (an editable install of the worktree) is mounted at its own path and its ``bin`` leads
  PATH, where the image would have ``/usr/local/bin``.
- **commands**: the service's ``entrypoint``/``command``, else the image's: for
  ``lastwatt:local`` the Dockerfile's ``CMD``/``ENTRYPOINT``/``WORKDIR``, for
  ``eclipse-mosquitto`` its documented ``CMD`` (plus its entrypoint's chown of /mosquitto).
- **environment**: the ``.env`` that ``scripts/gen-env.sh`` wrote, interpolated into the
  service's ``environment:`` as compose does (``${VAR:?msg}``, ``${VAR:-x}``, ``$$``).
- **InfluxDB 2.x** cannot run here: VictoriaMetrics (v2 write API) listens on influxdb:8086,
  and the token files deploy/influxdb/create-tokens.sh would make are written by the harness.
- **healthchecks**: the compose ``test`` as written, in a sandbox with the service's mounts and
  environment (what ``docker exec`` gives), with its timeout.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.servers import require_binary

ROOT = Path(__file__).resolve().parents[1]
IMAGE_DEFAULTS = {  # what the pinned third-party images run when compose does not say
    "eclipse-mosquitto": {"cmd": ["/usr/sbin/mosquitto", "-c", "/mosquitto/config/mosquitto.conf"],
                          "workdir": "/"},
}
_VAR = re.compile(r"\$\$|\$\{([A-Za-z0-9_]+)(?:(:?[?-])([^}]*))?\}|\$([A-Za-z0-9_]+)")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution; a missing ``${VAR:?msg}`` fails as compose would."""
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        value, op, arg = env.get(name), m.group(2), m.group(3)
        if op in (":?", "?") and not value:
            raise ValueError(f"compose: {name}: {arg}")
        if op in (":-", "-") and not value:
            return arg
        return value or ""
    return _VAR.sub(sub, text)


def dockerfile_defaults(path: Path) -> dict:
    """CMD, ENTRYPOINT and WORKDIR of the Dockerfile's last stage (JSON forms)."""
    out: dict = {"cmd": [], "entrypoint": [], "workdir": "/"}
    for line in path.read_text().splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "FROM":
            out = {"cmd": [], "entrypoint": [], "workdir": "/"}
        elif word in ("CMD", "ENTRYPOINT"):
            out[word.lower()] = json.loads(rest)
        elif word == "WORKDIR":
            out["workdir"] = rest.strip()
    return out


@dataclass
class Service:
    name: str
    spec: dict
    argv: list[str]
    env: dict[str, str]
    mounts: list[tuple[Path, str, bool]]  # (host source, container target, read-only)
    workdir: str
    proc: subprocess.Popen | None = None
    log: Path | None = None


@dataclass
class Stack:
    workdir: Path
    env_file: Path
    compose_file: Path = ROOT / "docker-compose.yml"
    replace_files: dict[str, Path] = field(default_factory=dict)  # repo path -> test's copy
    services: dict[str, Service] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bwrap = require_binary("bwrap")
        self.vm_binary = require_binary("victoria-metrics")
        self.root = os.geteuid() == 0
        self.compose = yaml.safe_load(self.compose_file.read_text())
        self.dotenv = dict(line.split("=", 1) for line in self.env_file.read_text().splitlines()
                           if re.match(r"^[A-Z0-9_]+=", line))
        self.volumes = {name: self.workdir / "volumes" / name for name in self.compose["volumes"]}
        for path in self.volumes.values():
            path.mkdir(parents=True, exist_ok=True)
        self.hosts = self.workdir / "hosts"
        self.hosts.write_text("127.0.0.1 localhost " + " ".join(self.compose["services"]) + "\n")
        self.netns: subprocess.Popen | None = None
        self.vm: subprocess.Popen | None = None

    # --- the network namespace ---------------------------------------------------------

    def enter(self) -> list[str]:
        assert self.netns is not None
        user = [] if self.root else ["--user", "--preserve-credentials"]
        return [require_binary("nsenter"), "-t", str(self.netns.pid), "--net", *user]

    def open_network(self) -> None:
        user = [] if self.root else ["--user", "--map-root-user"]
        self.netns = subprocess.Popen([require_binary("unshare"), "--net", *user, "sleep",
                                       "infinity"], start_new_session=True)
        own = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 10
        while True:  # until unshare has made the namespace, the pid is still in ours
            try:
                if os.readlink(f"/proc/{self.netns.pid}/ns/net") != own:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("unshare --net did not create a network namespace")
            time.sleep(0.02)
        subprocess.run([*self.enter(), require_binary("ip"), "link", "set", "lo", "up"],
                       check=True, capture_output=True)

    def http_get(self, url: str) -> bytes:
        """GET inside the namespace (the test itself lives outside it)."""
        code = ("import sys, urllib.request; sys.stdout.buffer.write("
                "urllib.request.urlopen(sys.argv[1], timeout=10).read())")
        done = subprocess.run([*self.enter(), sys.executable, "-c", code, url],
                              capture_output=True, timeout=30)
        if done.returncode:
            raise RuntimeError(f"GET {url}: {done.stderr.decode()[-500:]}")
        return done.stdout

    # --- services ------------------------------------------------------------------------

    def service(self, name: str) -> Service:
        if name in self.services:
            return self.services[name]
        spec = self.compose["services"][name]
        image = spec.get("image", "")
        if image == "lastwatt:local":
            defaults = dockerfile_defaults(ROOT / "Dockerfile")
        else:
            defaults = {"entrypoint": [], **IMAGE_DEFAULTS[image.split(":")[0]]}
        entrypoint = spec.get("entrypoint", defaults["entrypoint"])
        command = spec.get("command", defaults["cmd"] if "entrypoint" not in spec else [])
        argv = [interpolate(a, self.dotenv) for a in _as_list(entrypoint) + _as_list(command)]
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin:"
                       "/usr/sbin:/sbin",
               "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}
        raw_env = spec.get("environment", {})
        if isinstance(raw_env, list):
            raw_env = dict(item.split("=", 1) for item in raw_env)
        env |= {k: interpolate(str(v), self.dotenv) for k, v in raw_env.items()}
        mounts = []
        for vol in spec.get("volumes", []):
            src, target, *mode = vol.split(":")
            if src.startswith("."):
                host = self.replace_files.get(src, (ROOT / src).resolve())
            else:
                host = self.volumes[src]
            mounts.append((host, target, mode == ["ro"]))
        svc = Service(name, spec, argv, env, mounts, spec.get("working_dir", defaults["workdir"]))
        self.services[name] = svc
        return svc

    def sandbox(self, svc: Service) -> list[str]:
        args = [self.bwrap, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--tmpfs", "/"]
        for top in ("usr", "bin", "sbin", "lib", "lib64", "etc", "var"):
            p = Path("/") / top
            if p.is_symlink():
                args += ["--symlink", os.readlink(p), str(p)]
            elif p.exists():
                args += ["--ro-bind", str(p), str(p)]
        args += ["--ro-bind", str(self.hosts), "/etc/hosts", "--dev", "/dev", "--proc", "/proc",
                 "--tmpfs", "/tmp", "--tmpfs", "/run"]
        # the python package: this venv (editable install of the checkout), at its own path
        for path in sorted({Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), ROOT}):
            args += ["--ro-bind", str(path), str(path)]
        # bwrap would create missing parents as 0700 root: the image's are world-readable
        parents = {str(p) for _, target, _ in svc.mounts for p in Path(target).parents} - {"/"}
        for parent in sorted(parents, key=lambda p: p.count("/")):
            args += ["--perms", "0755", "--dir", parent]
        for host, target, ro in sorted(svc.mounts, key=lambda m: m[1].count("/")):
            args += ["--ro-bind" if ro else "--bind", str(host), target]
        return [*args, "--chdir", svc.workdir]

    def start(self, name: str) -> Service:
        svc = self.service(name)
        if svc.spec.get("image", "").startswith("eclipse-mosquitto") and self.root:
            # the image's entrypoint: chown -R mosquitto /mosquitto (volumes it writes)
            for host, _target, ro in svc.mounts:
                if not ro and host.is_dir():
                    subprocess.run(["chown", "-R", "mosquitto:mosquitto", str(host)], check=True)
        svc.log = self.workdir / f"{name}.log"
        with open(svc.log, "ab") as log:
            svc.proc = subprocess.Popen([*self.enter(), *self.sandbox(svc), *svc.argv],
                                        env=svc.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        return svc

    def run_to_completion(self, name: str, timeout_s: float = 60) -> int:
        svc = self.start(name)
        assert svc.proc is not None
        return svc.proc.wait(timeout_s)

    def healthcheck(self, name: str) -> subprocess.CompletedProcess:
        """The service's compose healthcheck, once, as written, beside the running service."""
        svc = self.service(name)
        test = svc.spec["healthcheck"]["test"]
        kind, *rest = test if isinstance(test, list) else ["CMD-SHELL", test]
        argv = ["/bin/sh", "-c", rest[0]] if kind == "CMD-SHELL" else rest
        argv = [interpolate(a, self.dotenv) for a in argv]
        timeout = float(str(svc.spec["healthcheck"].get("timeout", "30s")).rstrip("s"))
        try:
            return subprocess.run([*self.enter(), *self.sandbox(svc), *argv], env=svc.env,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as err:
            return subprocess.CompletedProcess(argv, 124, str(err.stdout), "healthcheck timeout")

    def wait_healthy(self, name: str, timeout_s: float = 30) -> subprocess.CompletedProcess:
        deadline = time.monotonic() + timeout_s
        while True:
            done = self.healthcheck(name)
            if done.returncode == 0 or time.monotonic() > deadline:
                return done
            time.sleep(0.5)

    def start_influxdb_stand_in(self) -> None:
        """VictoriaMetrics on influxdb:8086 and the token files create-tokens.sh would make."""
        for consumer in ("controller", "grafana"):
            token = self.volumes[f"influx-token-{consumer}"] / "token"
            token.write_text(f"harness-{consumer}-token\n")
        self.vm = subprocess.Popen(
            [*self.enter(), self.vm_binary, "-httpListenAddr=127.0.0.1:8086",
             f"-storageDataPath={self.workdir / 'vm'}", "-search.latencyOffset=0s",
             "-loggerLevel=ERROR"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.http_get("http://127.0.0.1:8086/health")
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self, name: str, timeout_s: float = 30) -> int | None:
        """As `docker stop`: the service's stop_signal (default SIGTERM), then SIGKILL."""
        svc = self.services.get(name)
        if svc is None or svc.proc is None or svc.proc.poll() is not None:
            return None if svc is None or svc.proc is None else svc.proc.returncode
        sig = getattr(signal, svc.spec.get("stop_signal", "SIGTERM"))
        # docker signals the container's main process only (bwrap itself would just die)
        os.kill(_main_process(svc.proc.pid), sig)
        try:
            return svc.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(svc.proc.pid, signal.SIGKILL)
            return svc.proc.wait(10)

    def close(self) -> None:
        for name in list(self.services):
            self.stop(name, 10)
        for proc in (self.vm, self.netns):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)

    def main_pid(self, name: str) -> int:
        proc = self.services[name].proc
        assert proc is not None
        return _main_process(proc.pid)

    def logs(self, name: str) -> str:
        svc = self.services.get(name)
        return svc.log.read_text(errors="replace") if svc and svc.log else ""


def _as_list(value: str | list[str]) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else list(value)


def _main_process(pid: int) -> int:
    """The innermost process under ``pid`` (nsenter -> bwrap -> bwrap's init -> command)."""
    while True:
        children = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rpartition(")")[2].split()[1]) == pid:
                    children.append(int(entry.name))
        if not children:
            return pid
        pid = min(children)
