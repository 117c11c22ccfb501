"""MeterBook: readings are idempotent under duplicates, late delivery and counter resets."""

import pytest

from lastwatt.messages import MeterReading
from lastwatt.meters import MeterBook


def reading(ts, energy_wh, device="a"):
    return MeterReading(device, ts, energy_wh, 100.0, True)


def test_first_reading_is_a_baseline_and_later_ones_book_the_increase():
    book = MeterBook(["a"])
    book.open_round(0)
    book.ingest(reading(0, 50.0))
    book.ingest(reading(60, 60.0))
    book.ingest(reading(120, 75.0))
    assert book.round_wh[0] == pytest.approx(25.0)


def test_duplicate_reading_is_not_counted_twice():
    book = MeterBook(["a"])
    book.open_round(0)
    for r in (reading(0, 0.0), reading(60, 10.0), reading(60, 10.0), reading(120, 20.0)):
        book.ingest(r)
    book.ingest(reading(60, 10.0))  # QoS 1 redelivery after a reconnect, out of order
    assert book.round_wh[0] == pytest.approx(20.0)
    assert book.counts["duplicate"] == 2


def test_reading_from_an_older_round_is_ignored():
    book = MeterBook(["a"])
    book.open_round(0)
    book.ingest(reading(0, 0.0))
    book.open_round(3600)
    assert not book.ingest(reading(1800, 5.0))
    assert book.counts["stale"] == 1 and book.round_wh[0] == 0


def test_counter_reset_keeps_energy_monotonic():
    book = MeterBook(["a"])
    book.open_round(0)
    for r in (reading(0, 500.0), reading(60, 510.0), reading(120, 3.0), reading(180, 8.0)):
        book.ingest(r)
    assert book.round_wh[0] == pytest.approx(10.0 + 3.0 + 5.0)
    assert book.counts["counter_reset"] == 1


def test_open_round_starts_from_zero_but_keeps_the_counter_baseline():
    book = MeterBook(["a", "b"])
    book.open_round(0)
    book.ingest(reading(0, 0.0, "b"))
    book.ingest(reading(3600, 100.0, "b"))
    book.open_round(3600)
    book.ingest(reading(3660, 130.0, "b"))
    assert list(book.round_wh) == [0.0, 30.0]


def test_stale_first_reading_still_serves_as_the_baseline():
    book = MeterBook(["a"])
    book.open_round(100)
    assert not book.ingest(reading(90, 5.0))  # sent before the controller's clock started
    book.ingest(reading(120, 25.0))
    assert book.round_wh[0] == pytest.approx(20.0) and book.counts["stale"] == 1
