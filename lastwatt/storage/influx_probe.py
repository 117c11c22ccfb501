"""Is the ``--influx`` target configured right? Asked once, before a run starts.

A server that answers 401/403/404 will answer the same to every batch: spooling a whole run
for it (and exiting 0) hides a configuration error. The probe writes an empty batch, which
goes through the same authentication and bucket / database lookup as a real one and stores
nothing, and turns each definite refusal into a one-line :class:`ConfigError` naming the
setting to fix. An unreachable or hanging server is not a configuration error: the run goes
ahead and the spool keeps its points until the server is back.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import urllib3

from lastwatt.config.influx import InfluxConfig
from lastwatt.errors import ConfigError

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 5.0


def auth_headers(token: str | None, api: str) -> dict[str, str]:
    """v2: ``Token <token>``; v1: ``user:password`` as basic auth, else a token header."""
    if not token:
        return {}
    if api == "v1" and ":" in token:
        return dict(urllib3.make_headers(basic_auth=token))
    return {"Authorization": f"Token {token}"}


def probe_influx(url: str, cfg: InfluxConfig, token: str | None) -> None:
    """Raise ConfigError when the server refuses our writes for a reason a retry can't fix."""
    base = url.rstrip("/")
    if cfg.api == "v2":
        target = f"bucket {cfg.bucket!r} of org {cfg.org!r}"
        write = f"{base}/api/v2/write?" + urlencode(
            {"org": cfg.org, "bucket": cfg.bucket, "precision": "ms"})
    else:
        target = f"database {cfg.database!r}"
        params = {"db": cfg.database, "precision": "ms"}
        if cfg.retention_policy:
            params["rp"] = cfg.retention_policy
        write = f"{base}/write?" + urlencode(params)
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(total=min(cfg.timeout_ms / 1000, PROBE_TIMEOUT_S)), retries=False)
    headers = auth_headers(token, cfg.api) | {"Content-Type": "text/plain; charset=utf-8"}
    try:
        if cfg.api == "v1":  # a fresh 1.x server: create the database (a no-op if it exists)
            q = urlencode({"q": f'CREATE DATABASE "{cfg.database}"'})
            http.request("POST", f"{base}/query?{q}", headers=auth_headers(token, "v1"))
        r = http.request("POST", write, body=b"", headers=headers)
    except urllib3.exceptions.HTTPError as err:
        log.warning("influx: %s not reachable yet (%s); points are spooled until it is", url, err)
        return
    finally:
        http.clear()
    detail = r.data.decode("utf-8", "replace").strip()[:200]
    token_where = "influx.token_file" if cfg.token_file else f"influx.token_env (${cfg.token_env})"
    if r.status in (401, 403):
        what = "refused the token" if r.status == 401 else "does not let the token write"
        raise ConfigError(token_where, f"{url} {what} ({r.status}: {detail or 'no detail'}) "
                          f"for {target}", "give a token with write access to it")
    if r.status == 404:
        if cfg.api == "v1" and "database not found" in detail:
            raise ConfigError("influx.database", f"{url} has no {target} and it could not be "
                              "created", "create it or give a user allowed to")
        if cfg.api == "v2" and "bucket" in detail.lower():
            raise ConfigError("influx.bucket", f"{url} has no {target} ({detail})",
                              "create the bucket or fix influx.bucket / influx.org")
        other = "v1" if cfg.api == "v2" else "v2"
        raise ConfigError("influx.api", f"{url} has no InfluxDB {cfg.api} write API "
                          f"(404: {detail or 'not found'})",
                          f'is it InfluxDB {"1.x" if other == "v1" else "2.x"}? '
                          f'set [influx] api = "{other}"')
