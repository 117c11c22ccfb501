"""200 Modbus TCP relays + SDM120 meters polled at 1 s by one bridge process.

Starts its own mosquitto on a free port, the simulated Modbus fleet in a child process
(``lastwatt devices --dialect modbus``: pymodbus servers on loopback, ``--units-per-server``
unit ids behind each, like an RS485 gateway), and the bridge in this process. All devices
get a setpoint (relay on). After a warm-up it measures for ``--seconds``: the polling cycle
of one device (coil + energy + power requests, start to end), how late each poll ended
against its schedule, and the bridge process's CPU share (process CPU time / wall time; the
fleet and the broker run in other processes). Prints the figures; asserts nothing.

    .venv/bin/python benchmarks/bench_modbus.py --count 200 --units-per-server 10
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from firmware_bridge.bridge import Bridge  # noqa: E402
from lastwatt.config.bridge import load_bridge_config  # noqa: E402
from lastwatt.messages import Setpoint, encode  # noqa: E402
from lastwatt.transport import topics  # noqa: E402
from tests.servers import mosquitto_server  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--interval-s", type=float, default=1.0)
    ap.add_argument("--units-per-server", type=int, default=10)
    ap.add_argument("--warmup-s", type=float, default=5.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()

    workdir = Path(tempfile.mkdtemp())
    broker = mosquitto_server(workdir).start()
    url = f"mqtt://127.0.0.1:{broker.port}"
    cfg_path = workdir / "bridge.toml"
    fleet = subprocess.Popen(
        [sys.executable, "-m", "lastwatt.cli", "devices", "--dialect", "modbus", "--count",
         str(args.count), "--modbus-port", "0", "--units-per-server",
         str(args.units_per_server), "--bridge-config", str(cfg_path)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bridge = None
    try:
        deadline = time.monotonic() + 120
        while not cfg_path.exists():
            if time.monotonic() > deadline or fleet.poll() is not None:
                raise SystemExit("the Modbus fleet did not start")
            time.sleep(0.1)
        time.sleep(0.5)  # the file is written once the servers listen
        cfg = load_bridge_config(cfg_path)
        cfg = cfg.model_copy(update={"modbus": cfg.modbus.model_copy(
            update={"interval_s": args.interval_s, "timeout_s": 1.0})})
        bridge = Bridge(cfg, url).start()
        now = time.time()
        for d in cfg.devices:
            sp = Setpoint(d.id, 0, True, 1000.0, 1e12, now + 3600)
            bridge.client.publish(topics.set_topic(cfg.site, d.id), encode(sp), 1, True)
        time.sleep(args.warmup_s)
        poller = bridge.dialects["modbus"].poller
        poller.cycles_s.clear()
        poller.late_s.clear()
        readings0 = bridge.counts["readings"]
        cpu0, wall0 = time.process_time(), time.monotonic()
        time.sleep(args.seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        cycles = np.array(poller.cycles_s) * 1e3
        late = np.array(poller.late_s) * 1e3
        readings = bridge.counts["readings"] - readings0
        on = sum(bridge.worker.call(lambda: [bool(st.on) for st in bridge.devices.values()]))
        print(f"devices {args.count} ({args.units_per_server} per Modbus TCP server), "
              f"interval {args.interval_s:g} s, measured {wall:.1f} s, {os.cpu_count()} cores")
        print(f"polls {len(cycles)} ({len(cycles) / wall:.0f}/s, expected "
              f"{args.count / args.interval_s:.0f}/s), readings published {readings}, "
              f"relays on {on}/{args.count}")
        print(f"polling cycle per device (3 requests) ms: p50 {np.percentile(cycles, 50):.1f}"
              f"  p99 {np.percentile(cycles, 99):.1f}  max {cycles.max():.1f}")
        print(f"poll end after its due time ms: p50 {np.percentile(late, 50):.1f}"
              f"  p99 {np.percentile(late, 99):.1f}")
        print(f"bridge process CPU: {cpu / wall:.1%} of one core")
        print(f"rejected {dict(bridge.rejected)} worker errors {bridge.worker.errors}")
    finally:
        if bridge is not None:
            bridge.stop()
        fleet.send_signal(signal.SIGTERM)
        fleet.wait(20)
        broker.stop()


if __name__ == "__main__":
    main()
