"""10k simulated devices at 1 Hz through mosquitto: ingest rate, loss, command latency.

    python benchmarks/bench_mqtt_fleet.py [--count 10000] [--dialect native] [--seconds 20]

Starts its own mosquitto on a free port (or uses --mqtt URL), runs the fleet in a child
process (one process carries all devices), one subscriber that counts every message in
another, and in this process a probe that sends one command per ``--cmd-interval-s`` to a
fresh device and waits for that device's acknowledgement (native: its meter reading; Tasmota:
``stat/<t>/RESULT``; Shelly: the RPC answer). Prints figures; asserts nothing. Whatever
fails (broker, fleet child, counter) ends in a one-paragraph "benchmark failed: ..." with the
fleet's error and its worker thread's stack, never a traceback; the broker and the children
are stopped on every path.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import multiprocessing as mp
import queue
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lastwatt.messages import Setpoint, encode
from lastwatt.transport import topics
from lastwatt.transport.mqtt_client import no_delay

SITE = "bench"
SWITCH_INTERVAL_S = 0.0005
CHILD_CALL_TIMEOUT_S = 60.0  # the fleet's own calls: generous, its worker may be busy


def run_fleet(url: str, count: int, dialect: str, connections: int | None, qos: int | None,
              ready, done, result) -> None:
    """The child: runs the fleet; every outcome, failure included, goes back through a queue."""
    faulthandler.enable()  # a hard crash still prints every thread's stack to stderr
    fleet = None
    try:
        from firmware_bridge.simulated.fleet import Fleet, FleetDevice, FleetOptions

        sys.setswitchinterval(SWITCH_INTERVAL_S)  # as `lastwatt devices` does
        devices = [FleetDevice(f"d{i:05d}", dialect, None, 1000.0) for i in range(count)]
        t0 = time.perf_counter()
        fleet = Fleet(url, devices, FleetOptions(site=SITE, telemetry_s=1.0,
                                                 connections=connections, telemetry_qos=qos))
        fleet.start()
        ready.put(("ok", time.perf_counter() - t0))
        done.wait()
        t0 = time.perf_counter()
        counts = fleet.worker.call(lambda: dict(fleet.counts), CHILD_CALL_TIMEOUT_S)
        phases = {"read counts": time.perf_counter() - t0}
        t0 = time.perf_counter()
        fleet.stop()
        phases["stop (goodbyes flushed)"] = time.perf_counter() - t0
        counts["published"] = fleet.counts["published"]  # including the goodbyes sent by stop()
        result.put(("ok", counts, phases))
    except BaseException as err:  # reported to the parent, which prints it
        failure = f"{type(err).__name__}: {err}".rstrip(": ")
        if fleet is not None:
            failure += f" (fleet worker errors: {fleet.worker.errors})"
        detail = traceback.format_exc() + _worker_stack(fleet)
        for q in (ready, result):  # the parent waits on one of them, depending on the phase
            q.put(("error", failure, detail))


def _worker_stack(fleet) -> str:
    """Where the fleet's worker thread is right now: the first question when a call times out."""
    thread = getattr(getattr(fleet, "worker", None), "_thread", None)
    frame = sys._current_frames().get(thread.ident) if thread is not None else None
    return "" if frame is None else "worker thread:\n" + "".join(traceback.format_stack(frame))


def count_all(port: int, ready, measuring, stop, result) -> None:
    """Its own process: counts every message from the fleet (and those in the window)."""
    counts = {"n": 0, "window": 0}

    def on_message(client, userdata, msg) -> None:
        if not is_command(msg.topic):
            counts["n"] += 1
            if measuring.is_set():
                counts["window"] += 1

    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-count")
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.subscribe("#", 1)
    sub.loop_start()
    time.sleep(0.5)
    ready.set()
    stop.wait()
    last, stable_since = -1, time.monotonic()
    while time.monotonic() - stable_since < 2.0:  # drained: no new message for 2 s
        if counts["n"] != last:
            last, stable_since = counts["n"], time.monotonic()
        time.sleep(0.1)
    sub.loop_stop()
    result.put(dict(counts))


def ack_topic(dialect: str, dev: str) -> str:
    return {"native": topics.meter_topic(SITE, dev), "tasmota": f"stat/{dev}/RESULT",
            "shelly": "bench/rpc"}[dialect]


def is_command(topic: str) -> bool:
    """Sent by the probe, not the fleet. Shelly: ``<id>/rpc`` is a request, but the answers
    (``bench/rpc``) and ``<id>/events/rpc`` notifications come from the fleet."""
    return (topic.endswith("/set") or topic.startswith("cmnd/")
            or (topic.endswith("/rpc") and topic.count("/") == 1 and topic != "bench/rpc"))


def command(dialect: str, dev: str, rid: int) -> tuple[str, bytes]:
    if dialect == "native":
        sp = Setpoint(dev, 0, True, 1000.0, 1e6, time.time() + 3600)
        return topics.set_topic(SITE, dev), encode(sp)
    if dialect == "tasmota":
        return f"cmnd/{dev}/POWER", b"ON"
    frame = {"id": rid, "src": "bench", "method": "Switch.Set", "params": {"id": 0, "on": True}}
    return f"{dev}/rpc", json.dumps(frame).encode()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--dialect", default="native", choices=["native", "tasmota", "shelly"])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup-s", type=float, default=5.0)
    # 10k devices in one Python process: paho costs ~100 us per QoS 1 publish against ~14 us
    # at QoS 0, so the load test sends telemetry at QoS 0 over 4 shared connections
    # (--telemetry-qos 1 for the firmware's own QoS; fine up to a few thousand devices)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--telemetry-qos", type=int, default=0, choices=[0, 1])
    ap.add_argument("--cmd-interval-s", type=float, default=0.05)
    ap.add_argument("--mqtt", default=None)
    ap.add_argument("--probe-devices", type=int, default=500,
                    help="devices that get commands (each probe command a device turned on)")
    args = ap.parse_args()
    try:
        figures = run(args)
    except BenchFailure as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("benchmark interrupted; servers and child processes stopped", file=sys.stderr)
        sys.exit(130)
    report(args, figures)


class BenchFailure(Exception):
    """Something in the run failed; the message says what (and the fleet's stacks, if any)."""


def run(args: argparse.Namespace) -> dict:
    """Start everything, measure, and stop everything again on every path."""
    ctx = mp.get_context("spawn")
    procs: list = []
    stops: list = []  # events that let a child end on its own
    server = probe = None
    try:
        if args.mqtt is None:
            from tests.servers import mosquitto_server
            server = mosquitto_server(Path(tempfile.mkdtemp()),
                                      "max_queued_messages 1000000\nset_tcp_nodelay true\n")
            try:
                server.start()
            except RuntimeError as err:  # the log tail is in the message
                raise BenchFailure(str(err)) from None
            url, port = f"mqtt://127.0.0.1:{server.port}", server.port
        else:
            url, port = args.mqtt, int(args.mqtt.rsplit(":", 1)[1])
        probe, measure = start_probe(args, port)

        ready, result, done = ctx.Queue(), ctx.Queue(), ctx.Event()
        c_ready, c_measuring, c_stop, c_result = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
        stops += [done, c_stop]
        counter = ctx.Process(target=count_all, daemon=True,
                              args=(port, c_ready, c_measuring, c_stop, c_result))
        procs.append(counter)
        counter.start()
        if not c_ready.wait(30):
            raise BenchFailure("the counting subscriber did not connect within 30 s")
        child = ctx.Process(target=run_fleet, daemon=True,
                            args=(url, args.count, args.dialect, args.connections,
                                  args.telemetry_qos, ready, done, result))
        procs.append(child)
        child.start()
        startup_s = await_child(ready, child, 600, "starting the fleet")[1]
        time.sleep(args.warmup_s)

        c_measuring.set()
        window_s, sent_cmds = measure()
        c_measuring.clear()
        done.set()
        _, counts, phases = await_child(result, child, CHILD_CALL_TIMEOUT_S + 120,
                                        "reading its counts and stopping")
        child.join(30)
        c_stop.set()
        received = await_child(c_result, counter, 120, "draining the counting subscriber")
        return {"startup_s": startup_s, "window_s": window_s, "sent_cmds": sent_cmds,
                "counts": counts, "phases": phases, "received": received,
                "latencies_s": probe.latencies_s}
    finally:
        for event in stops:
            event.set()
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        if probe is not None:
            probe.client.loop_stop()
        if server is not None:
            server.stop()


def await_child(q, proc, timeout_s: float, what: str):
    """The child's next message; a BenchFailure naming the phase if it fails, dies or hangs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            item = q.get(timeout=0.5)
        except queue.Empty:
            if not proc.is_alive() and q.empty():
                raise BenchFailure(f"{proc.name} died while {what} (exit code {proc.exitcode};"
                                   " its stderr is above)") from None
            continue
        if isinstance(item, tuple) and item and item[0] == "error":
            raise BenchFailure(f"fleet process failed while {what}: {item[1]}\n{item[2]}")
        return item
    raise BenchFailure(f"{proc.name} gave no answer within {timeout_s:g} s while {what}")


@dataclass
class Probe:
    client: paho.Client
    latencies_s: list[float]


def start_probe(args: argparse.Namespace, port: int):
    """The latency probe: one command per ``--cmd-interval-s``, each to the next probed device.

    It listens only to the probed devices' answers, so a backlog in the counting subscriber
    cannot show up as command latency. Returns the probe and the measuring loop."""
    lock = threading.Lock()
    pending: dict[str, float] = {}  # ack key -> monotonic send time
    latencies: list[float] = []
    probed = [f"d{i:05d}" for i in range(min(args.count, args.probe_devices))]

    def on_ack(client, userdata, msg) -> None:
        now = time.monotonic()
        key = msg.topic
        if args.dialect == "shelly":
            key = f"rpc:{json.loads(msg.payload)['id']}"
        elif args.dialect == "native" and b'"on":true' not in msg.payload:
            return
        with lock:
            sent = pending.pop(key, None)
        if sent is not None:
            latencies.append(now - sent)

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-probe")
    client.on_message = on_ack
    client.on_socket_open = no_delay  # as LastWatt's own clients do
    try:
        client.connect("127.0.0.1", port)
    except OSError as err:
        raise BenchFailure(f"the probe cannot connect to 127.0.0.1:{port}: {err}") from None
    client.subscribe([(t, 1) for t in {ack_topic(args.dialect, d) for d in probed}])
    client.loop_start()

    def measure() -> tuple[float, int]:
        t0 = time.monotonic()
        rid = 0
        while time.monotonic() - t0 < args.seconds:
            dev = probed[rid % len(probed)]
            rid += 1
            topic, payload = command(args.dialect, dev, rid)
            key = f"rpc:{rid}" if args.dialect == "shelly" else ack_topic(args.dialect, dev)
            with lock:
                pending[key] = time.monotonic()
            client.publish(topic, payload, 1, False)
            time.sleep(args.cmd_interval_s)
        return time.monotonic() - t0, rid

    return Probe(client, latencies), measure


def report(args: argparse.Namespace, f: dict) -> None:
    counts, received, window_s = f["counts"], f["received"], f["window_s"]
    lat = np.array(f["latencies_s"]) * 1000
    qos = "firmware default" if args.telemetry_qos is None else args.telemetry_qos
    print(f"devices              {args.count} ({args.dialect}, telemetry 1 Hz, QoS {qos})")
    print(f"fleet startup        {f['startup_s']:.1f} s")
    print(f"ingested             {received['window'] / window_s:,.0f} messages/s over "
          f"{window_s:.1f} s")
    print(f"published by fleet   {counts['published']:,}")
    print(f"received             {received['n']:,}")
    print(f"loss                 {counts['published'] - received['n']:,} messages")
    print(f"telemetry ticks      {counts.get('telemetry', 0):,} sent, "
          f"{counts.get('late_ticks', 0):,} late (skipped a period)")
    print("fleet shutdown       " + ", ".join(f"{k} {v:.1f} s" for k, v in f["phases"].items()))
    if len(lat):
        print(f"command -> ack       n={len(lat)}/{f['sent_cmds']} "
              f"p50={np.percentile(lat, 50):.1f} ms p99={np.percentile(lat, 99):.1f} ms "
              f"max={lat.max():.1f} ms")
    else:
        print(f"command -> ack       no acknowledgement for {f['sent_cmds']} commands")


if __name__ == "__main__":
    main()
