"""Did the server keep what we sent? Read back this run's point count at the end of a run.

A 2xx on write only means "received": VictoriaMetrics accepts and then drops points outside
its retention, and InfluxDB drops points outside a retention policy's duration. So after the
last batch the recorder asks the server how many points of this run it holds, counting one
field every point of a measurement carries (lastwatt/storage/points.py writes it always):

- InfluxDB 1.x (and 2.x through its v1 ``/query`` compatibility): ``SELECT count(..)``;
- VictoriaMetrics: ``/internal/force_flush`` (so what was just written is searchable), then
  ``/api/v1/export`` of the run's series, counting samples.

A server that cannot answer (no read permission, no such API) leaves the count unconfirmed.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import urllib3

from lastwatt.config.influx import InfluxConfig
from lastwatt.storage.influx_probe import auth_headers

log = logging.getLogger(__name__)

# measurement -> a field present in every one of its points (flags and counts, never NaN)
ALWAYS_WRITTEN = {"rounds": "round", "businesses": "selected", "staker_policies": "stakers",
                  "devices": "online"}


@dataclass(frozen=True)
class Confirmation:
    """``sent`` points of this run, ``stored`` as counted by the server (None: unknown)."""
    sent: int
    stored: int | None
    how: str  # which read-back answered, or why none could

    @property
    def missing(self) -> int:
        return 0 if self.stored is None else self.sent - self.stored


def _influxql_count(http: urllib3.PoolManager, base: str, db: str, rp: str, run: str,
                    headers: dict[str, str]) -> int | None:
    """Sum of count(field) over the four measurements; None when the server won't say."""
    prefix = f'"{db}"."{rp}".' if rp else ""
    literal = run.replace("\\", "\\\\").replace("'", "\\'")
    q = "; ".join(f'SELECT count("{f}") FROM {prefix}"{m}" WHERE "run" = \'{literal}\''
                  for m, f in ALWAYS_WRITTEN.items())
    r = http.request("GET", f"{base}/query?" + urlencode({"db": db, "q": q}), headers=headers)
    if r.status != 200:
        return None
    results = json.loads(r.data)["results"]
    if any("error" in res for res in results):
        return None
    return sum(s["values"][0][1] for res in results for s in res.get("series", []))


def _vm_count(http: urllib3.PoolManager, base: str, run: str) -> int | None:
    """Samples of this run in VictoriaMetrics (metric ``<measurement>_<field>``); None: no VM."""
    # New samples become searchable about a second after the write, and a search made before
    # that caches "no series" for ~10 s: flush first (404 on InfluxDB 2.x: then it is not VM)
    if http.request("GET", f"{base}/internal/force_flush").status == 404:
        return None
    names = "|".join(f"{m}_{f}" for m, f in ALWAYS_WRITTEN.items())
    label = run.replace("\\", "\\\\").replace('"', '\\"')
    match = f'{{__name__=~"{names}",run="{label}"}}'
    r = http.request("GET", f"{base}/api/v1/export?" + urlencode({"match[]": match}))
    if r.status != 200:
        return None
    return sum(len(json.loads(line)["values"]) for line in r.data.splitlines() if line.strip())


def confirm_stored(url: str, cfg: InfluxConfig, token: str | None, run: str, sent: int,
                   wait_s: float = 5.0) -> Confirmation:
    """Count this run's points on the server, asking again for up to ``wait_s`` while the
    count is short (a server may still be indexing the last batch)."""
    base = url.rstrip("/")
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(total=cfg.timeout_ms / 1000), retries=False)
    headers = auth_headers(token, cfg.api)
    end = time.monotonic() + wait_s
    try:
        while True:
            if cfg.api == "v1":
                stored, how = _influxql_count(http, base, cfg.database, cfg.retention_policy,
                                              run, headers), "SELECT count()"
            else:
                stored, how = _vm_count(http, base, run), "/api/v1/export"
                if stored is None:  # InfluxDB 2.x: the v1 query API on the bucket's DBRP
                    stored, how = _influxql_count(http, base, cfg.bucket, "", run,
                                                  headers), "SELECT count() (v1 compat)"
            if stored is None:
                return Confirmation(sent, None, f"the server did not answer a read-back "
                                    f"({how}): no read permission or no such API")
            if stored >= sent or time.monotonic() >= end:
                return Confirmation(sent, stored, how)
            time.sleep(0.5)
    except (urllib3.exceptions.HTTPError, ValueError, KeyError, IndexError) as err:
        return Confirmation(sent, None, f"read-back failed: {err}")
    finally:
        http.clear()
