"""The native energy counter stays monotonic across vendor register resets."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.counters import MonotonicCounter


def test_register_reset_adds_last_value_to_offset():
    c = MonotonicCounter(jitter_wh=1.0)
    assert [c.update(x) for x in (100.0, 150.0, 3.0, 10.0)] == [100.0, 150.0, 153.0, 160.0]
    assert c.resets == 1


def test_small_drop_is_a_late_reading_not_a_reset():
    c = MonotonicCounter(jitter_wh=1.0)
    assert [c.update(x) for x in (100.0, 99.5, 101.0)] == [100.0, 100.0, 101.0]
    assert c.resets == 0


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=50))
def test_native_counter_never_decreases(registers):
    c = MonotonicCounter()
    out = [c.update(x) for x in registers]
    assert all(b >= a for a, b in itertools.pairwise(out))
