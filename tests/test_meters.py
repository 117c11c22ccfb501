"""MeterBook: readings are idempotent under duplicates, late delivery and counter resets."""

import numpy as np
import pytest

from lastwatt.messages import MeterReading
from lastwatt.meters import MeterBook


def reading(ts, energy_wh, device="a", epoch=0):
    return MeterReading(device, ts, energy_wh, 100.0, True, epoch)


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
    assert not book.ingest(reading(3590, 5.0))  # late, within the clock skew: stale
    assert not book.ingest(reading(1800, 5.0))  # far before the open round: rejected
    assert book.counts["stale"] == 1 and book.counts["past"] == 1 and book.round_wh[0] == 0


def test_counter_reset_declared_by_a_new_epoch_books_the_new_counter():
    book = MeterBook(["a"])
    book.open_round(0)
    for r in (reading(0, 500.0), reading(60, 510.0), reading(120, 3.0, epoch=1),
              reading(180, 8.0, epoch=1)):
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


# -- plausibility: a 1 kW device, margin 1.5, 1 Wh slack: an allowance refilling at 25 Wh a
# minute of the controller's clock, holding at most 60 s' worth (25 Wh) -----------------------
def plausible_book(resync_after=3):
    book = MeterBook(["a"], np.array([1000.0]), margin=1.5, max_skew_s=60.0, slack_wh=1.0,
                     resync_after=resync_after)
    book.open_round(0)
    book.ingest(reading(0, 100.0), now=0)
    return book


def test_reading_within_the_physical_bound_is_booked():
    book = plausible_book()
    assert book.ingest(reading(60, 100.0 + 26.0), now=60)  # 25 Wh + 1 Wh slack
    assert book.round_wh[0] == pytest.approx(26.0)


def test_jump_beyond_max_power_times_elapsed_is_rejected_and_counted():
    book = plausible_book()
    assert not book.ingest(reading(60, 100.0 + 1e9), now=60)
    assert book.ingest(reading(120, 120.0), now=120)  # the device's own next reading counts
    assert book.round_wh[0] == pytest.approx(20.0)
    assert book.counts["implausible"] == 1 and book.round_rejected[0] == 1


def test_future_timestamp_is_rejected_and_does_not_move_the_device_clock():
    book = plausible_book()
    assert not book.ingest(reading(1e6, 150.0), now=60)
    assert book.ingest(reading(60, 110.0), now=60)
    assert book.round_wh[0] == pytest.approx(10.0)
    assert book.counts["future"] == 1 and book.last_ts[0] == 60


def test_counter_drop_without_a_new_epoch_is_rejected():
    book = plausible_book()
    assert not book.ingest(reading(60, 0.5), now=60)  # a forged "reset" to 0.5 Wh
    assert book.ingest(reading(120, 110.0), now=120)
    assert book.round_wh[0] == pytest.approx(10.0)
    assert book.counts["unflagged_reset"] == 1 and book.counts["counter_reset"] == 0


def test_declared_reset_books_at_most_the_bound():
    book = plausible_book()
    assert not book.ingest(reading(60, 5000.0, epoch=1), now=60)  # 5 kWh since a reboot: no
    assert book.ingest(reading(120, 20.0, epoch=1), now=120)  # 20 Wh in 2 min at 1 kW: fine
    assert book.round_wh[0] == pytest.approx(20.0)


def test_epoch_going_backwards_is_rejected():
    book = plausible_book()
    book.ingest(reading(60, 10.0, epoch=2), now=60)
    assert not book.ingest(reading(120, 15.0, epoch=1), now=120)
    assert book.counts["old_epoch"] == 1


def test_a_device_that_insists_is_rebaselined_without_booking():
    book = plausible_book(resync_after=3)
    for k in range(1, 4):  # a counter that really moved while the controller was away
        assert not book.ingest(reading(60 * k, 9000.0 + k), now=60 * k)
    assert book.counts["rebaseline"] == 1 and book.round_wh[0] == 0
    assert book.ingest(reading(240, 9010.0), now=240)  # from the new baseline on
    assert book.round_wh[0] == pytest.approx(7.0)


def test_forged_resets_every_reading_book_no_more_than_the_bound_over_the_span():
    book = plausible_book(resync_after=3)
    bound_wh = 1000.0 * 1.5 * (3600 + 60) / 3600.0
    n = 0
    for k in range(1, 61):  # an hour of honest readings (10 Wh a minute) mixed with forgeries
        t = 60.0 * k
        book.ingest(reading(t - 30, 0.5, epoch=1000 + k), now=t)  # forged reset
        book.ingest(reading(t - 29, 1e6 * k), now=t)  # forged jump
        book.ingest(reading(t + 59, 1.0, epoch=5000 + k), now=t)  # forged, within the skew
        book.ingest(reading(t, 100.0 + 10.0 * k, epoch=0), now=t)  # honest
        n += 4
    assert book.round_wh[0] <= bound_wh + n * 1.0
