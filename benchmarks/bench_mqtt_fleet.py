"""10k simulated devices at 1 Hz through mosquitto: ingest rate, loss, command latency.

    python benchmarks/bench_mqtt_fleet.py [--count 10000] [--dialect native] [--seconds 20]

Starts its own mosquitto on a free port (or uses --mqtt URL), runs the fleet in a child
process (one process carries all devices), and in this process: one subscriber that counts
every message, and a probe that sends one command per ``--cmd-interval-s`` to a fresh device
and waits for that device's acknowledgement (native: its meter reading; Tasmota:
``stat/<t>/RESULT``; Shelly: the RPC answer). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import threading
import time
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


def run_fleet(url: str, count: int, dialect: str, connections: int | None, qos: int | None,
              ready, done, result) -> None:
    from firmware_bridge.simulated.fleet import Fleet, FleetDevice, FleetOptions

    sys.setswitchinterval(SWITCH_INTERVAL_S)  # as `lastwatt devices` does
    devices = [FleetDevice(f"d{i:05d}", dialect, None, 1000.0) for i in range(count)]
    t0 = time.perf_counter()
    fleet = Fleet(url, devices, FleetOptions(site=SITE, telemetry_s=1.0, connections=connections,
                                             telemetry_qos=qos)).start()
    ready.put(time.perf_counter() - t0)
    done.wait()
    counts = fleet.worker.call(lambda: dict(fleet.counts))
    fleet.stop()
    counts["published"] = fleet.counts["published"]  # including the goodbyes sent by stop()
    result.put(counts)


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
    return (topic.endswith("/set") or topic.startswith("cmnd/")
            or (topic.endswith("/rpc") and topic != "bench/rpc"))


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

    server = None
    if args.mqtt is None:
        from tests.servers import mosquitto_server
        server = mosquitto_server(Path(tempfile.mkdtemp()),
                                  "max_queued_messages 1000000\nset_tcp_nodelay true\n").start()
        url, port = f"mqtt://127.0.0.1:{server.port}", server.port
    else:
        url, port = args.mqtt, int(args.mqtt.rsplit(":", 1)[1])

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

    # the latency probe listens only to the probed devices' answers, so a backlog in the
    # counting subscriber cannot show up as command latency
    probe = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-probe")
    probe.on_message = on_ack
    probe.on_socket_open = no_delay  # as LastWatt's own clients do
    probe.connect("127.0.0.1", port)
    ack_topics = {ack_topic(args.dialect, d) for d in probed}
    probe.subscribe([(t, 1) for t in ack_topics])
    probe.loop_start()

    ctx = mp.get_context("spawn")
    ready, result, done = ctx.Queue(), ctx.Queue(), ctx.Event()
    c_ready, c_measuring, c_stop, c_result = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
    counter = ctx.Process(target=count_all, args=(port, c_ready, c_measuring, c_stop, c_result))
    counter.start()
    c_ready.wait(30)
    child = ctx.Process(target=run_fleet, args=(url, args.count, args.dialect, args.connections,
                                                args.telemetry_qos, ready, done, result))
    child.start()
    startup_s = ready.get(timeout=600)
    time.sleep(args.warmup_s)

    c_measuring.set()
    t0 = time.monotonic()
    rid, sent_cmds = 0, 0
    while time.monotonic() - t0 < args.seconds:
        dev = probed[rid % len(probed)]
        rid += 1
        topic, payload = command(args.dialect, dev, rid)
        key = f"rpc:{rid}" if args.dialect == "shelly" else ack_topic(args.dialect, dev)
        with lock:
            pending[key] = time.monotonic()
        probe.publish(topic, payload, 1, False)
        sent_cmds += 1
        time.sleep(args.cmd_interval_s)
    window_s = time.monotonic() - t0
    c_measuring.clear()
    done.set()
    counts = result.get(timeout=120)
    child.join(60)
    c_stop.set()
    received = c_result.get(timeout=120)
    counter.join(30)
    probe.loop_stop()
    if server is not None:
        server.stop()
    in_window = received["window"]

    lat = np.array(latencies) * 1000
    qos = "firmware default" if args.telemetry_qos is None else args.telemetry_qos
    print(f"devices              {args.count} ({args.dialect}, telemetry 1 Hz, QoS {qos})")
    print(f"fleet startup        {startup_s:.1f} s")
    print(f"ingested             {in_window / window_s:,.0f} messages/s over {window_s:.1f} s")
    print(f"published by fleet   {counts['published']:,}")
    print(f"received             {received['n']:,}")
    print(f"loss                 {counts['published'] - received['n']:,} messages")
    print(f"late telemetry ticks {counts.get('late_ticks', 0):,}")
    if len(lat):
        print(f"command -> ack       n={len(lat)}/{sent_cmds} p50={np.percentile(lat, 50):.1f} ms "
              f"p99={np.percentile(lat, 99):.1f} ms max={lat.max():.1f} ms")


if __name__ == "__main__":
    main()
