"""A default-scenario `lastwatt run` stopped by SIGTERM, SIGKILL or a double SIGINT at seeded
random instants leaves a folder that `lastwatt report` reads, holding a prefix of the
uninterrupted run; `--resume` after SIGKILL gives byte-identical tables.

One uninterrupted reference run (through the CLI, so the run id is the same) serves every
case. It runs three years: a default year with the analytic headless devices can end within
the 0-3 s the instants span; the instants are also capped by the reference run's own span
after its first journalled rounds, so that they fall inside the run on a fast machine.
LASTWATT_SIGNAL_INSTANTS sets the instants per signal (~1 s of CPU each): 8 by default to
keep a local run short, 20 in CI (.ci/run).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lastwatt.report import load_run
from lastwatt.storage.files import TABLES

INSTANTS = int(os.environ.get("LASTWATT_SIGNAL_INSTANTS", "8"))
RUN = [sys.executable, "-m", "lastwatt.cli", "run", "--quiet"]
CMD = [*RUN, "--rounds", str(3 * 8760)]
MAX_DELAY_S = 3.0


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, float]:
    """The uninterrupted run, and how long it ran after its first journalled rounds (s)."""
    out = tmp_path_factory.mktemp("ref")
    proc = _start(out)
    _wait_for_first_rounds(proc, out)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    [run_dir] = out.iterdir()
    return run_dir, time.monotonic() - t0


def _max_delay_s(reference: tuple[Path, float]) -> float:
    return min(MAX_DELAY_S, 0.7 * reference[1])


def _start(out: Path) -> subprocess.Popen:
    return subprocess.Popen([*CMD, "--out", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_first_rounds(proc: subprocess.Popen, out: Path) -> None:
    """Until some rounds are journalled (before that the folder has none to show)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any(p.stat().st_size > 0 for p in out.glob("*/journal/rounds.arrows")):
            return
        time.sleep(0.02)


def _assert_prefix(run_dir: Path, reference: Path) -> int:
    got = load_run(run_dir)  # what `lastwatt report` reads
    ref = load_run(reference)
    n = len(got.rounds)
    assert 0 < n <= len(ref.rounds)
    for name in ("rounds", "businesses", "policies"):
        a, b = getattr(got, name), getattr(ref, name)
        b = b[b["round"] < n].reset_index(drop=True)
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b, check_dtype=False)
    return n


def _stop(out: Path, how: str, delay_s: float) -> subprocess.Popen:
    proc = _start(out)
    _wait_for_first_rounds(proc, out)
    time.sleep(delay_s)
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)
    elif how == "sigkill":
        proc.kill()
    else:  # a second Ctrl-C while the first is being handled
        proc.send_signal(signal.SIGINT)
        time.sleep(0.1 + 0.3 * (delay_s % 1.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    proc.wait(timeout=300)
    return proc


@pytest.mark.parametrize("how", ["sigterm", "sigkill", "double_sigint"])
def test_signal_at_random_instants_leaves_a_readable_prefix(tmp_path, reference, how):
    rng = np.random.default_rng({"sigterm": 1, "sigkill": 2, "double_sigint": 3}[how])
    prefixes = []
    for j, delay in enumerate(rng.uniform(0.0, _max_delay_s(reference), INSTANTS)):
        out = tmp_path / f"{j}"
        proc = _stop(out, how, float(delay))
        if how != "sigkill":
            assert "Traceback" not in proc.stderr.read()
        [run_dir] = out.iterdir()
        prefixes.append(_assert_prefix(run_dir, reference[0]))
    # the folder of a run ended by a signal is also what the CLI reports from
    report = subprocess.run([sys.executable, "-m", "lastwatt.cli", "report", str(run_dir)],
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    assert len(set(prefixes)) > 1  # the instants really differ


def test_resume_after_sigkill_gives_byte_identical_tables(tmp_path, reference):
    out = tmp_path / "killed"
    _stop(out, "sigkill", _max_delay_s(reference) / 2)
    [run_dir] = out.iterdir()
    reference = reference[0]
    assert run_dir.name == reference.name
    proc = subprocess.run([*RUN, "--resume", str(run_dir)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    for name in TABLES:
        f = f"{name}.parquet"
        assert (run_dir / f).read_bytes() == (reference / f).read_bytes(), name


def test_a_signal_inside_a_device_process_ends_the_run_without_booking_a_short_round(
        tmp_path, monkeypatch):
    # SimPy catches what a process raises and carries on with the events already due: a
    # KeyboardInterrupt raised inside a mock device let the engine book that round short
    from lastwatt.config import Config
    from lastwatt.devices import DeviceModel
    from lastwatt.signals import terminate_as_interrupt
    from lastwatt.simulation import run_simulation

    # per-minute mock devices: the analytic headless ones run no device process
    cfg = Config().with_overrides(rounds=120, **{"output.meter_readings": True})
    start, round_s = cfg.time.start.timestamp(), cfg.time.round_s
    advance, calls = DeviceModel.advance, [0, 0]  # made, after which to signal

    def advance_then_signal(self, now_ts):
        calls[0] += 1
        # at a round's end, before the engine's final read: the round is still to be booked
        if calls[1] and calls[0] > calls[1] and self.on and (now_ts - start) % round_s == 0:
            calls[1] = 0
            os.kill(os.getpid(), signal.SIGTERM)
        return advance(self, now_ts)

    monkeypatch.setattr(DeviceModel, "advance", advance_then_signal)
    ref = run_simulation(cfg, tmp_path / "ref").run_dir
    calls[:] = [0, calls[0] // 2]
    with terminate_as_interrupt(), pytest.raises(KeyboardInterrupt):
        run_simulation(cfg, tmp_path / "cut")
    assert calls[1] == 0  # the signal was sent
    [run_dir] = (tmp_path / "cut").iterdir()
    assert _assert_prefix(run_dir, ref) < cfg.rounds
