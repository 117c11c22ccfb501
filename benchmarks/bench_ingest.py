"""Ingest of a simulated year (all measurements) through the InfluxDB recorders.

Starts its own influxd (v1 /write) and VictoriaMetrics (v2 write API via influxdb_client) on
loopback ports, records a year of hourly rounds (20 businesses, 3 policies, 20 devices:
385,440 points), and prints points/s from the first ``record`` to the end of ``close`` (so
serialisation, batching and HTTP are all inside), the encoder alone, and the loss (target 0,
throughput target >= 200k points/s batched).

    python benchmarks/bench_ingest.py [--rounds 8760] [--batch-size 5000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lastwatt.config.influx import InfluxConfig
from lastwatt.storage.influx import make_influx_recorder
from lastwatt.storage.points import LineEncoder
from tests.servers import (
    Server,
    free_port,
    http_ok,
    influxd_server,
    require_binary,
)
from tests.storage_data import expected_points, make_meta, make_rounds


def victoria_metrics(workdir: Path) -> Server:
    port = free_port()
    return Server([require_binary("victoria-metrics"), f"-httpListenAddr=127.0.0.1:{port}",
                   f"-storageDataPath={workdir}/vm", "-retentionPeriod=3y",
                   "-loggerLevel=ERROR"], port,
                  lambda: http_ok(f"http://127.0.0.1:{port}/health"), workdir)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=300) as r:
        return json.load(r)


def influxd_count(port: int, db: str) -> int:
    total = 0
    for m, f in (("rounds", "production_wh"), ("businesses", "stake_tokens"),
                 ("staker_policies", "stakers"), ("devices", "power_w")):
        q = urllib.parse.urlencode({"db": db, "q": f"SELECT count({f}) FROM {m}"})
        res = get_json(f"http://127.0.0.1:{port}/query?{q}")["results"][0]
        total += res["series"][0]["values"][0][1] if "series" in res else 0
    return total


def vm_count(port: int) -> int:
    urllib.request.urlopen(f"http://127.0.0.1:{port}/internal/force_flush", timeout=60).read()
    total = 0
    for metric in ("rounds_production_wh", "businesses_stake_tokens",
                   "staker_policies_stakers", "devices_power_w"):
        q = urllib.parse.urlencode({"match[]": metric})
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/export?{q}",
                                    timeout=300) as r:
            total += sum(len(json.loads(line)["values"]) for line in r.read().splitlines())
    return total


def ingest(url: str, cfg: InfluxConfig, meta, rounds) -> tuple[float, dict]:
    rec = make_influx_recorder(url, cfg)
    t0 = time.perf_counter()
    rec.open(meta)
    for r in rounds:
        rec.record(r)
    rec.close({}, None)
    return time.perf_counter() - t0, rec.stats


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=8760)
    ap.add_argument("--batch-size", type=int, default=5000)
    args = ap.parse_args()

    meta = make_meta("bench-year", businesses=20, devices=20)
    meta.policy_names = ["softmax", "herding", "loyal"]
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=366)
    rounds = make_rounds(meta, args.rounds, start_ts=start.timestamp())
    n = expected_points(meta, args.rounds)
    print(f"simulated year: {args.rounds} rounds, {n} points, batch {args.batch_size}")

    t0 = time.perf_counter()
    enc = LineEncoder(meta)
    per = max(1, args.batch_size // (n // args.rounds))
    size = sum(len(enc.encode(rounds[i:i + per])[0]) for i in range(0, len(rounds), per))
    dt = time.perf_counter() - t0
    print(f"encoder only: {n / dt:,.0f} points/s ({size / 1e6:.1f} MB line protocol)")

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "influxd").mkdir()
        (base / "vm").mkdir()
        servers = [influxd_server(base / "influxd").start(60), victoria_metrics(base / "vm")
                   .start(30)]
        try:
            common = dict(batch_size=args.batch_size, spool_dir=base / "spool",
                          timeout_ms=60_000)
            url = f"http://127.0.0.1:{servers[0].port}"
            dt, stats = ingest(url, InfluxConfig(api="v1", database="bench", **common),
                               meta, rounds)
            stored = influxd_count(servers[0].port, "bench")
            print(f"influxd v1 /write:        {n / dt:,.0f} points/s, {stored} stored, "
                  f"loss {n - stored}, stats {stats}")
            url = f"http://127.0.0.1:{servers[1].port}"
            dt, stats = ingest(url, InfluxConfig(api="v2", **common), meta, rounds)
            stored = vm_count(servers[1].port)
            print(f"VictoriaMetrics v2 write: {n / dt:,.0f} points/s, {stored} stored, "
                  f"loss {n - stored}, stats {stats}")
        finally:
            for s in servers:
                s.stop()


if __name__ == "__main__":
    main()
