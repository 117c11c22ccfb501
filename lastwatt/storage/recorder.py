"""The recorder interface every sink implements (files, InfluxDB, spool), and a fan-out."""

from __future__ import annotations

from typing import Any, Protocol

import pandas as pd

from lastwatt.result import RoundResult, RunMeta


class Recorder(Protocol):
    """A sink for a run's results. ``record`` must never block the simulation for long."""

    def open(self, meta: RunMeta) -> None:
        """Start of run: its id, site, names and config."""

    def record(self, result: RoundResult) -> None:
        """One round's results, in round order."""

    def close(self, summary: dict[str, Any], stakers: pd.DataFrame) -> None:
        """End of run: the summary (also in run.json) and the final per-staker table."""
        ...


class Recorders:
    """Fan one run out to several sinks, in order."""

    def __init__(self, sinks: list[Recorder]) -> None:
        self.sinks = sinks

    def open(self, meta: RunMeta) -> None:
        """Open every sink."""
        for s in self.sinks:
            s.open(meta)

    def record(self, result: RoundResult) -> None:
        """Record the round in every sink, in order."""
        for s in self.sinks:
            s.record(result)

    def close(self, summary: dict[str, Any], stakers: pd.DataFrame) -> None:
        """Close every sink."""
        for s in self.sinks:
            s.close(summary, stakers)
