"""The ``[influx]`` config section (see docs/storage.md).

The server URL comes from ``lastwatt run --influx URL``; the token only from the environment
variable ``token_env`` or from ``token_file``, never from the command line or this file.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from lastwatt.config.base import Section


class InfluxConfig(Section):
    """Where and how run results are written to InfluxDB (``lastwatt run --influx URL``)."""
    api: Literal["v1", "v2"] = Field(
        "v2", description="v2: InfluxDB 2.x/3.x/Cloud write API; v1: InfluxDB 1.x /write"
    )
    database: str = Field("lastwatt", min_length=1, description="v1 database")
    retention_policy: str = Field("", description="v1 retention policy; empty = the default")
    bucket: str = Field("lastwatt", min_length=1, description="v2 bucket")
    org: str = Field("lastwatt", description="v2 organisation")
    org_env: str | None = Field(
        None, description="environment variable giving org (wins over org; compose: INFLUX_ORG)"
    )
    bucket_env: str | None = Field(
        None, description="environment variable giving bucket (wins over bucket; compose: "
        "INFLUX_BUCKET)"
    )
    token_env: str = Field(
        "INFLUX_TOKEN", description="environment variable holding the token (v1: user:password)"
    )
    token_file: Path | None = Field(None, description="file holding the token; wins over env")
    batch_size: int = Field(5000, ge=1, le=1_000_000, description="points per write request")
    flush_interval_ms: int = Field(1000, ge=10, description="longest a point waits for a batch")
    timeout_ms: int = Field(10_000, ge=100, description="HTTP timeout of one write request")
    max_retries: int = Field(3, ge=0, le=20, description="retries of a batch before spooling")
    retry_interval_ms: int = Field(200, ge=1, description="first retry delay; doubles each time")
    max_retry_delay_ms: int = Field(
        10_000, ge=1, description="longest wait between attempts to flush the spool"
    )
    spool_dir: Path = Field(Path("runs/spool"), description="durable spool of unsent points")
    spool_limit_mb: float = Field(
        512.0, gt=0, description="spool size at which points are dropped (a loud error)"
    )
    close_timeout_s: float = Field(
        30.0, ge=0, description="at run end, how long to keep flushing before leaving the spool"
    )
    grafana_url: str = Field(
        "http://localhost:3000", description="Grafana base URL for the run link `lastwatt run` "
        "prints (--grafana or $LASTWATT_GRAFANA_URL win)"
    )
    start: datetime | None = Field(
        None, description="headless runs: put round 0 at this date (None: keep time.start)"
    )

    @model_validator(mode="after")
    def _start_has_zone(self) -> InfluxConfig:
        if self.start is not None and self.start.tzinfo is None:
            raise ValueError("start needs a time zone, e.g. 2026-01-01T00:00:00Z")
        return self
