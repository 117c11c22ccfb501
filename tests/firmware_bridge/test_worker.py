"""The worker that owns bridge and fleet state: timers on the injected clock, handler
failures contained, calls answered, in its thread and driven by a test."""

from __future__ import annotations

import threading

import pytest

from firmware_bridge.worker import Worker
from lastwatt.transport.mqtt_client import Inbound
from tests.fake_mqtt import FakeClock


def test_timers_fire_in_time_order_once_the_clock_reaches_them_and_not_before():
    clock, fired = FakeClock(), []
    w = Worker(lambda msg: None, "t", clock)
    w.call_at(clock() + 2, lambda: fired.append("b"))
    w.call_at(clock() + 1, lambda: fired.append("a"))
    w.call_at(clock() + 2, lambda: fired.append("c"))  # same time: in the order set
    clock.advance(0.999)
    w.run_pending()
    assert fired == []
    clock.advance(0.001)
    w.run_pending()
    assert fired == ["a"]
    clock.advance(1)
    w.run_pending()
    assert fired == ["a", "b", "c"]


def test_messages_go_to_the_handler_and_a_failing_one_does_not_stop_the_next():
    seen: list[str] = []

    def on_message(msg: Inbound) -> None:
        if msg.payload == b"bad":
            raise ValueError("boom")
        seen.append(msg.topic)

    w = Worker(on_message, "t", FakeClock())
    for topic, payload in (("a", b"ok"), ("b", b"bad"), ("c", b"ok")):
        w.queue.put(Inbound(topic, payload, False, 0.0))
    w.run_pending()
    assert seen == ["a", "c"]
    assert w.errors == 1


def test_call_returns_the_result_or_raises_the_error_without_a_thread():
    w = Worker(lambda msg: None, "t", FakeClock())
    assert w.call(lambda: 42) == 42
    with pytest.raises(ZeroDivisionError):
        w.call(lambda: 1 / 0)
    assert w.errors == 1


def test_running_worker_answers_calls_in_its_thread_and_fires_real_clock_timers():
    w = Worker(lambda msg: None, "t-worker")
    w.start()
    try:
        assert w.call(lambda: threading.current_thread().name) == "t-worker"
        fired = threading.Event()
        w.post(lambda: w.call_at(w.clock() + 0.05, fired.set))
        assert fired.wait(5), "timer did not fire"
    finally:
        w.stop()
    assert not any(t.name == "t-worker" for t in threading.enumerate())


def test_queued_calls_run_before_due_timers():
    clock, order = FakeClock(), []
    w = Worker(lambda msg: None, "t", clock)
    w.call_at(clock(), lambda: order.append("timer"))
    w.post(lambda: order.append("call"))
    w.run_pending()
    assert order == ["call", "timer"]
