"""InfluxDB sinks: a recorder that batches rounds in a background thread and never loses them.

``record`` only enqueues, so a run never waits for the database. The writer thread serialises
batches (lastwatt.storage.points), sends each with tenacity retries, and when the server is
unreachable or refuses, appends it to the durable spool (lastwatt.storage.spool); the spool is
flushed oldest first as soon as the server answers again, before any newer batch. Two
transports share that path: v2 (InfluxDB 2.x/3.x/Cloud, VictoriaMetrics) through
influxdb_client's WriteApi, and v1 (InfluxDB 1.x) through its ``/write`` endpoint.

The WriteApi is used synchronously from our own writer thread rather than in its batching
mode: with its own retries, a batch given up on would be overtaken by later ones, and the
spool could no longer flush in order.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import pandas as pd
import urllib3
from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from lastwatt.config.influx import InfluxConfig
from lastwatt.config.secret import read_secret
from lastwatt.errors import ConfigError
from lastwatt.result import RoundResult, RunMeta
from lastwatt.storage.influx_confirm import Confirmation, confirm_stored
from lastwatt.storage.influx_probe import auth_headers, probe_influx
from lastwatt.storage.points import LineEncoder
from lastwatt.storage.spool import Spool, SpoolFull

log = logging.getLogger(__name__)

# statuses that mean "this data will never be accepted": retrying or spooling cannot help
_REJECTED = {400, 413, 422}


class WriteFailed(Exception):
    """The server is unreachable or refused for now: retry, then spool."""


class WriteRejected(Exception):
    """The server rejected the data itself (bad line protocol, field type conflict)."""


def _classify(status: int, detail: str) -> Exception:
    cls = WriteRejected if status in _REJECTED else WriteFailed
    return cls(f"HTTP {status}: {detail[:300]}")


class Transport(Protocol):
    """How a batch of line protocol reaches the server (v1 ``/write`` or the v2 API)."""
    def prepare(self) -> None:
        """Best effort set-up once the writer starts (e.g. create the v1 database)."""

    def send(self, body: bytes) -> None:
        """Write one batch of line protocol (ms precision); raise WriteFailed/WriteRejected."""

    def close(self) -> None:
        """Release the HTTP connections."""


class V1Transport:
    """InfluxDB 1.x: POST /write?db=..&precision=ms; token ``user:password`` (basic auth)."""

    def __init__(self, url: str, cfg: InfluxConfig, token: str | None) -> None:
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(total=cfg.timeout_ms / 1000), retries=False
        )
        params = {"db": cfg.database, "precision": "ms"}
        if cfg.retention_policy:
            params["rp"] = cfg.retention_policy
        self._base = url.rstrip("/")
        self._write_url = f"{self._base}/write?{urlencode(params)}"
        self._database = cfg.database
        self._headers = {"Content-Type": "text/plain; charset=utf-8"} | auth_headers(token, "v1")

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
        try:
            return self._http.request("POST", url, body=body, headers=headers)
        except urllib3.exceptions.HTTPError as err:
            raise WriteFailed(str(err)) from None

    def prepare(self) -> None:
        """Create the database if missing (best effort: a failure shows up on write)."""
        query = urlencode({"q": f'CREATE DATABASE "{self._database}"'})
        headers = {k: v for k, v in self._headers.items() if k != "Content-Type"}
        try:
            self._post(f"{self._base}/query?{query}", b"", headers)
        except WriteFailed as err:  # the spool covers an absent server
            log.info("influx v1: could not create database %s yet: %s", self._database, err)

    def send(self, body: bytes) -> None:
        """POST one batch; raises WriteFailed (retry) or WriteRejected (the server said no)."""
        r = self._post(self._write_url, body, self._headers)
        if 200 <= r.status < 300:
            return
        detail = r.data.decode("utf-8", "replace")
        if r.status == 404 and "database not found" in detail:
            self.prepare()  # a fresh server: create the database, the retry will succeed
        raise _classify(r.status, detail)

    def close(self) -> None:
        """Release the HTTP connections."""
        self._http.clear()


class V2Transport:
    """InfluxDB 2.x/3.x/Cloud (or VictoriaMetrics): influxdb_client's WriteApi, synchronous."""

    def __init__(self, url: str, cfg: InfluxConfig, token: str | None) -> None:
        self._client = InfluxDBClient(
            url=url, token=token or "", org=cfg.org, timeout=cfg.timeout_ms, retries=False
        )
        self._api = self._client.write_api(write_options=SYNCHRONOUS)
        self._bucket, self._org = cfg.bucket, cfg.org

    def prepare(self) -> None:
        """Nothing to do: the bucket exists with the server."""
        pass  # the bucket is created with the server (DOCKER_INFLUXDB_INIT_BUCKET)

    def send(self, body: bytes) -> None:
        """Write one batch; raises WriteFailed (retry) or WriteRejected (the server said no)."""
        try:
            self._api.write(self._bucket, self._org, record=body,
                            write_precision=WritePrecision.MS)  # type: ignore[arg-type]
        except ApiException as err:
            raise _classify(err.status or 0, str(err.body or err.reason)) from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise WriteFailed(str(err)) from None

    def close(self) -> None:
        """Close the client."""
        self._client.close()


_STOP = object()


class InfluxRecorder:
    """A :class:`~lastwatt.storage.recorder.Recorder` writing to InfluxDB through a spool.

    ``stats`` counts points: ``written`` (sent on the first try or its retries), ``spooled``
    (put in the spool by this run), ``flushed`` (sent from the spool), ``rejected`` (refused by
    the server as invalid), ``dropped`` (lost because the spool was full) and ``in_spool``.
    After ``close``, ``confirmation`` says how many of this run's points the server holds
    (influx_confirm) and ``time_range_ms`` spans the run's rounds as stamped.
    """

    def __init__(self, transport: Transport, cfg: InfluxConfig, spool: Spool,
                 on_error: Callable[[Exception, int], None] | None = None,
                 confirm: Callable[[str, int], Confirmation] | None = None) -> None:
        self.cfg = cfg
        self.stats: dict[str, int] = dict.fromkeys(
            ("written", "spooled", "flushed", "rejected", "dropped", "in_spool"), 0
        )
        self._transport, self._spool, self._on_error = transport, spool, on_error
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="influx-writer", daemon=True)
        self._encoder: LineEncoder | None = None
        self._meta: RunMeta | None = None
        self._failure: BaseException | None = None
        self._flush_delay_s = cfg.retry_interval_ms / 1000
        self._next_flush = 0.0
        self.stats["in_spool"] = spool.points
        self._confirm = confirm
        self.confirmation: Confirmation | None = None
        self.run_points = 0  # points of this run encoded (sent, spooled or dropped)
        self.time_range_ms: tuple[int, int] | None = None  # round 0 start, last round end

    # -- Recorder interface (called by the simulation) --
    def open(self, meta: RunMeta) -> None:
        """Start the writer thread for the run described by ``meta``."""
        self._meta = meta
        self._thread.start()

    def record(self, result: RoundResult) -> None:
        """Queue one round for the writer thread; never waits for the server."""
        self._queue.put(result)

    def close(self, summary: dict[str, Any] | None = None,
              stakers: pd.DataFrame | None = None) -> None:
        """Write what is queued, flush the spool for up to ``close_timeout_s``, stop the thread."""
        if self._thread.ident is not None:  # opened
            self._queue.put(_STOP)
            self._thread.join()
        self._transport.close()
        self._spool.close()
        if self._confirm is not None and self._meta is not None and self._failure is None:
            sent = self.run_points - self.stats["dropped"]
            self.confirmation = (
                Confirmation(sent, None, f"{self.stats['in_spool']} points still in the spool")
                if self.stats["in_spool"] else self._confirm(self._meta.run_id, sent))
        if self.stats["in_spool"]:
            log.warning("influx: %d points left in spool %s; the next run to this server "
                        "sends them first", self.stats["in_spool"], self._spool.path)
        if self._failure is not None:
            raise RuntimeError(f"influx writer failed: {self._failure}") from self._failure
        if self.stats["dropped"]:
            raise SpoolFull("influx.spool_limit_mb",
                            f"{self.stats['dropped']} points dropped, spool {self._spool.path} "
                            "was full", "raise influx.spool_limit_mb or keep the database up")

    # -- writer thread --
    def _run(self) -> None:
        try:
            self._transport.prepare()
            self._loop()
        except BaseException as err:  # surfaced by close(); the simulation must not stall
            log.exception("influx writer stopped")
            self._failure = err

    def _loop(self) -> None:
        pending: list[RoundResult] = []
        points, deadline = 0, float("inf")
        interval_s = self.cfg.flush_interval_ms / 1000
        while True:
            now = time.monotonic()
            wait_s = min(deadline, self._next_flush if len(self._spool) else now + 1.0) - now
            try:
                item = self._queue.get(timeout=max(wait_s, 0.0))
            except queue.Empty:
                item = None
            if isinstance(item, RoundResult):
                if not pending:
                    deadline = time.monotonic() + interval_s
                pending.append(item)
                points += self._points_of(item)
            stopping = item is _STOP
            if pending and (points >= self.cfg.batch_size or stopping
                            or time.monotonic() >= deadline):
                self._deliver(pending)
                pending, points, deadline = [], 0, float("inf")
            if len(self._spool) and time.monotonic() >= self._next_flush:
                self._flush_spool()
            if stopping:
                self._drain_on_close()
                return

    def _points_of(self, r: RoundResult) -> int:
        assert self._meta is not None, "open() before record()"
        return (1 + len(self._meta.business_names) + len(self._meta.policy_names)
                + len(r.device_ids))

    def _encode(self, results: list[RoundResult]) -> tuple[bytes, int]:
        if self._encoder is None:
            assert self._meta is not None, "open() before record()"
            self._encoder = LineEncoder(self._meta, self._offset_s(results[0]))
        body, n = self._encoder.encode(results)
        self.run_points += n
        off_s = self._encoder.offset_s
        start, end = (round((ts + off_s) * 1000) for ts in (results[0].start_ts,
                                                            results[-1].end_ts))
        first = start if self.time_range_ms is None else self.time_range_ms[0]
        self.time_range_ms = (min(first, start), end)
        return body, n

    def _offset_s(self, first: RoundResult) -> float:
        """Shift of simulated time so round 0 lands on ``influx.start`` (headless runs only)."""
        assert self._meta is not None
        realtime = self._meta.config.get("time", {}).get("realtime", False)
        if self.cfg.start is None or realtime:
            return 0.0
        return self.cfg.start.timestamp() - (first.start_ts - first.round
                                              * (first.end_ts - first.start_ts))

    def _deliver(self, results: list[RoundResult]) -> None:
        body, n = self._encode(results)
        if not n:
            return
        if len(self._spool):  # keep order: older points are waiting
            self._to_spool(body, n)
            return
        retrying = Retrying(
            stop=stop_after_attempt(self.cfg.max_retries + 1),
            wait=wait_exponential(multiplier=self.cfg.retry_interval_ms / 1000,
                                  max=self.cfg.max_retry_delay_ms / 1000),
            retry=retry_if_exception_type(WriteFailed), reraise=True,
        )
        try:
            retrying(self._transport.send, body)
            self.stats["written"] += n
        except WriteRejected as err:
            self._rejected(err, n)
        except WriteFailed as err:
            log.warning("influx: write failed (%s); spooling %d points", err, n)
            self._report(err, n)
            self._to_spool(body, n)
            self._next_flush = time.monotonic() + self._flush_delay_s

    def _to_spool(self, body: bytes, n: int) -> None:
        try:
            self._spool.push(body, n)
            self.stats["spooled"] += n
            self.stats["in_spool"] = self._spool.points
        except SpoolFull as err:
            self.stats["dropped"] += n
            log.error("influx: DROPPED %d points: %s", n, err)
            self._report(err, n)

    def _flush_spool(self) -> bool:
        """Send spooled batches oldest first; False when the server still fails."""
        while (head := self._spool.peek()) is not None:
            batch_id, body, n = head
            try:
                self._transport.send(body)
                self.stats["flushed"] += n
            except WriteRejected as err:
                self._rejected(err, n)
            except WriteFailed as err:
                self._flush_delay_s = min(self._flush_delay_s * 2,
                                          self.cfg.max_retry_delay_ms / 1000)
                self._next_flush = time.monotonic() + self._flush_delay_s
                log.info("influx: spool flush failed (%s); next try in %.1f s",
                         err, self._flush_delay_s)
                return False
            self._spool.pop(batch_id)
            self.stats["in_spool"] = self._spool.points
        self._flush_delay_s = self.cfg.retry_interval_ms / 1000
        self._spool.shrink()
        log.info("influx: spool flushed")
        return True

    def _drain_on_close(self) -> None:
        end = time.monotonic() + self.cfg.close_timeout_s
        while len(self._spool) and not self._flush_spool():
            if self._next_flush >= end:
                return
            time.sleep(max(self._next_flush - time.monotonic(), 0.0))

    def _rejected(self, err: Exception, n: int) -> None:
        self.stats["rejected"] += n
        log.error("influx: server rejected %d points: %s", n, err)
        self._report(err, n)

    def _report(self, err: Exception, n: int) -> None:
        if self._on_error is not None:
            self._on_error(err, n)


def _target(cfg: InfluxConfig) -> InfluxConfig:
    """org / bucket from the environment variables named by ``org_env`` / ``bucket_env``."""
    given = {}
    for key in ("org", "bucket"):
        var = getattr(cfg, f"{key}_env")
        if var is not None:
            value = os.environ.get(var, "")
            if not value:
                raise ConfigError(f"influx.{key}_env", f"${var} is not set",
                                  f"export {var} or remove influx.{key}_env")
            given[key] = value
    return cfg.model_copy(update=given) if given else cfg


def make_influx_recorder(url: str, cfg: InfluxConfig,
                         on_error: Callable[[Exception, int], None] | None = None,
                         probe: bool = True) -> InfluxRecorder:
    """The recorder behind ``lastwatt run --influx URL``: v1 or v2 after ``cfg.api``.

    With ``probe`` a server that refuses the configured token, API, bucket or database is a
    ConfigError now, before a round runs or a point is spooled (influx_probe)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as err:
        raise ConfigError("--influx", f"not a URL: {err}", "e.g. --influx http://localhost:8086"
                          ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("--influx", f"not an http(s) URL: {url!r}",
                          "e.g. --influx http://localhost:8086")
    if parts.username or parts.password:
        raise ConfigError("--influx", "credentials in the URL are refused (the command line is "
                          "visible to every user)", "put the token in influx.token_file or "
                          "$INFLUX_TOKEN and give the URL without user:password@")
    cfg = _target(cfg)
    token = read_secret(cfg.token_file, cfg.token_env, "influx.token_file")
    if probe:
        probe_influx(url, cfg, token)
    transport: Transport = (V1Transport if cfg.api == "v1" else V2Transport)(url, cfg, token)
    target = cfg.database if cfg.api == "v1" else f"{cfg.org}/{cfg.bucket}"
    key = hashlib.sha256(f"{cfg.api} {url.rstrip('/')} {target}".encode()).hexdigest()[:16]
    spool = Spool(cfg.spool_dir / f"influx-{key}.sqlite", int(cfg.spool_limit_mb * 1e6))

    def confirm(run: str, sent: int) -> Confirmation:
        return confirm_stored(url, cfg, token, run, sent)

    return InfluxRecorder(transport, cfg, spool, on_error, confirm)
