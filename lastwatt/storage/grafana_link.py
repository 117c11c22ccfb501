"""The Grafana link of a run: the Overview dashboard on the run's stamped time range.

Headless runs are stamped in simulated time, so Grafana's default "last 2 days" shows nothing:
the link carries ``from``/``to`` (epoch ms) covering the run, selects the site and the run, and
sets the dashboards' ``round`` variable (their minimum interval) to the round length.
"""

from __future__ import annotations

import os
from urllib.parse import urlencode, urlsplit

from lastwatt.errors import ConfigError

ENV = "LASTWATT_GRAFANA_URL"
DASHBOARD = "lastwatt-overview"  # uid; the slug is the same


def grafana_base(cli: str | None, configured: str) -> str:
    """--grafana, else $LASTWATT_GRAFANA_URL, else ``[influx] grafana_url``; checked."""
    base, field = ((cli, "--grafana") if cli else
                   (os.environ[ENV], f"${ENV}") if os.environ.get(ENV) else
                   (configured, "influx.grafana_url"))
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(field, f"not an http(s) URL: {base!r}", "e.g. http://localhost:3000")
    return base.rstrip("/")


def run_url(base: str, site: str, run: str, time_range_ms: tuple[int, int],
            round_ms: int) -> str:
    """The dashboard URL showing ``run`` of ``site`` over ``time_range_ms``."""
    params = {"orgId": 1, "from": time_range_ms[0], "to": time_range_ms[1],
              "var-site": site, "var-run": run, "var-round": f"{max(round_ms // 1000, 1)}s"}
    return f"{base}/d/{DASHBOARD}/{DASHBOARD}?{urlencode(params)}"
