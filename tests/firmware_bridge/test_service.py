"""``serve_until_signalled``: counters logged while serving, SIGTERM / SIGINT end it, the
service is stopped and the previous signal handlers are back."""

from __future__ import annotations

import logging
import os
import signal

import pytest

from firmware_bridge.service import serve_until_signalled


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_service_after_logging_its_counters(sig, caplog):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    calls: list[str] = []

    def counters() -> str:
        calls.append("counters")
        os.kill(os.getpid(), sig)  # the handler only sets an event: the loop ends next wait
        return "counts {'readings': 3}"

    ticks = iter(range(100))
    with caplog.at_level(logging.INFO):
        serve_until_signalled(counters, lambda: calls.append("stopped"),
                              logging.getLogger("svc-test"), 0.01,
                              clock=lambda: next(ticks))  # each look at the clock: 1 s later
    assert calls == ["counters", "stopped"]
    assert "counts {'readings': 3}" in caplog.text
    assert {s: signal.getsignal(s) for s in before} == before
