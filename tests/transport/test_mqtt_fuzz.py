"""10k+ malformed payloads on every subscribed topic: the loop lives, every reject is counted."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter

import numpy as np
import pytest

from lastwatt.messages import MAX_PAYLOAD_BYTES, MeterReading, encode
from lastwatt.transport import topics
from lastwatt.transport.mqtt import REJECT_KINDS
from lastwatt.transport.mqtt_client import MqttClient
from tests.mqtt_helpers import FAST, SITE, Controller, url_of

pytestmark = pytest.mark.integration

GOOD_READING = {"v": 1, "device": "d1", "ts": 5.0, "energy_wh": 1.0, "power_w": 2.0, "on": True}
GOOD_STATUS = {"v": 1, "device": "d1", "online": True, "ts": 1.0}


def _crafted() -> list[tuple[str, bytes, str]]:
    """(topic, payload, expected reject kind) covering each kind on meter and status topics."""
    meter, status = topics.meter_topic(SITE, "d1"), topics.status_topic(SITE, "d1")
    j = lambda d: json.dumps(d).encode()  # noqa: E731
    cases = [
        (meter, b"{" + b" " * MAX_PAYLOAD_BYTES + b"}", "oversize"),
        (meter, b"{not json", "json"),
        (status, b"\xff\xfe\x00", "json"),
        (meter, b"", "json"),
        (meter, b"[1, 2]", "schema"),
        (status, b"null", "schema"),
        (meter, j({**GOOD_READING, "ts": "yesterday"}), "schema"),
        (meter, j({k: v for k, v in GOOD_READING.items() if k != "energy_wh"}), "schema"),
        (meter, j({**GOOD_READING, "device": "d2"}), "schema"),  # body disagrees with topic
        (status, j({**GOOD_STATUS, "online": "perhaps"}), "schema"),
        (meter, j({**GOOD_READING, "energy_wh": -1.0}), "range"),
        (meter, j({**GOOD_READING, "power_w": 1e12}), "range"),
        (meter, b'{"v":1,"device":"d1","ts":5,"energy_wh":NaN,"power_w":1,"on":true}', "range"),
        (status, j({**GOOD_STATUS, "ts": -5}), "range"),
        (meter, j({**GOOD_READING, "v": 2}), "version"),
        (status, j({**GOOD_STATUS, "v": "1"}), "version"),
        (topics.meter_topic(SITE, "intruder"), j(GOOD_READING), "unknown_device"),
        (topics.status_topic(SITE, "intruder"), j(GOOD_STATUS), "unknown_device"),
    ]
    return cases


def _random(rng: np.random.Generator, n: int) -> list[tuple[str, bytes]]:
    """Random bytes and mutated valid messages; none of them is a valid message."""
    subscribed = [topics.meter_topic(SITE, d) for d in ("d1", "d2", "zz")] + [
        topics.status_topic(SITE, d) for d in ("d1", "d2", "zz")
    ]
    out = []
    good = encode(MeterReading("d1", 5.0, 1.0, 2.0, True))
    for i in range(n):
        topic = subscribed[i % len(subscribed)]
        if i % 2:
            payload = rng.integers(0, 256, int(rng.integers(1, 200)), dtype=np.uint8).tobytes()
            payload = b"\x00" + payload  # a NUL byte: never valid JSON
        else:  # a valid reading cut short: never valid JSON either
            payload = good[: int(rng.integers(1, len(good) - 1))]
        out.append((topic, payload))
    return out


def test_ten_thousand_malformed_payloads_are_counted_by_kind_and_the_loop_lives(
    mosquitto, caplog
) -> None:
    url = url_of(mosquitto)
    ctl = Controller(url, ["d1", "d2"]).start()
    fuzzer = MqttClient(url, FAST, "fuzzer").start()
    crafted = _crafted() * 300  # 5400
    rand = _random(np.random.default_rng(7), 5000)
    expected = Counter(kind for _, _, kind in crafted)
    caplog.set_level(logging.WARNING, logger="lastwatt.transport.mqtt")
    t0 = time.monotonic()
    try:
        for topic, payload, _ in crafted:
            fuzzer.publish(topic, payload)
        for topic, payload in rand:
            fuzzer.publish(topic, payload)
        good = MeterReading("d2", 9.0, 3.0, 4.0, False)
        fuzzer.publish(topics.meter_topic(SITE, "d2"), encode(good))
        total = len(crafted) + len(rand)
        ctl.drain_until(lambda: sum(ctl.transport.rejected.values()) >= total and ctl.readings,
                        timeout_s=60)
        assert ctl.readings == [good]  # alive, and nothing malformed got through
        assert ctl.statuses == []
        assert sum(ctl.transport.rejected.values()) == total
        crafted_only = Counter(ctl.transport.rejected)
        # the random payloads can only be json or unknown-device rejects
        crafted_only["json"] -= sum(1 for t, _ in rand if "/zz/" not in t)
        crafted_only["unknown_device"] -= sum(1 for t, _ in rand if "/zz/" in t)
        assert +crafted_only == expected
        # rate-limited logging: one line per kind per interval, not one per payload (a loaded
        # machine may take more than one interval to deliver them all)
        intervals = int((time.monotonic() - t0) // FAST.log_interval_s) + 1
        lines = [r for r in caplog.records if r.name == "lastwatt.transport.mqtt"]
        assert 0 < len(lines) <= len(REJECT_KINDS) * intervals < total
    finally:
        fuzzer.stop()
        ctl.transport.close()


# -- forged but well-formed readings: parse fine, must not book beyond the physical bound -----
MAX_W, MARGIN, SKEW_S, SLACK_WH = 1000.0, 1.5, 60.0, 1.0


def _attacks(t0: float) -> dict[str, list[MeterReading]]:
    """Each attack of issue 14, interleaved with an honest device's readings (10 Wh/min)."""
    forged: dict[str, list[MeterReading]] = {
        "future": [MeterReading("d1", t0 + 1e6, 5.0, 1.0, True)],
        "fake_reset": [MeterReading("d1", t0 + 90 + k, 0.5, 1.0, True) for k in range(3)],
        "huge_jump": [MeterReading("d1", t0 + 150, 1e9, 1.0, True)],
        # repeated declared resets, as on a business planned 0 (its device is off)
        "resets_on_unplanned": [MeterReading("d2", t0 + 15 * k, 50.0, 1.0, True, 100 + k)
                                for k in range(1, 20)],
    }
    return forged


def test_forged_well_formed_readings_book_nothing_beyond_the_plausibility_bound(mosquitto):
    from lastwatt.meters import MeterBook

    url = url_of(mosquitto)
    ctl = Controller(url, ["d1", "d2"]).start()
    pub = MqttClient(url, FAST, "forger").start()
    t0 = 1_000_000.0
    honest = [MeterReading("d1", t0 + 60 * k, 100.0 + 10.0 * k, 600.0, True) for k in range(6)]
    honest += [MeterReading("d2", t0, 0.0, 0.0, False)]
    forged = _attacks(t0)
    n_forged = sum(len(v) for v in forged.values())
    try:
        for r in honest[:1] + honest[-1:]:  # baselines first
            pub.publish(topics.meter_topic(SITE, r.device), encode(r))
        for r in [x for v in forged.values() for x in v] + honest[1:-1]:
            pub.publish(topics.meter_topic(SITE, r.device), encode(r))
        ctl.drain_until(lambda: len(ctl.readings) >= len(honest) + n_forged, timeout_s=30)
    finally:
        pub.stop()
        ctl.transport.close()
    assert len(ctl.readings) == len(honest) + n_forged  # well-formed: all of them parse
    book = MeterBook(["d1", "d2"], np.array([MAX_W, MAX_W]), MARGIN, SKEW_S, SLACK_WH)
    book.open_round(t0)
    span_s = 300.0
    for r in ctl.readings:  # in arrival order, the controller's clock at the end of the span
        book.ingest(r, now=t0 + span_s)
    bound_wh = MAX_W * MARGIN * (span_s + SKEW_S) / 3600.0 + SLACK_WH * len(ctl.readings)
    # the honest device drew 50 Wh; forgeries may add at most the physical bound, not 1e9
    assert book.round_wh[0] <= 50.0 + bound_wh
    assert book.round_wh[1] <= bound_wh
    assert book.counts["future"] == 1
    assert book.counts["implausible"] >= 1  # the huge jump (and the over-bound resets)
    assert book.counts["unflagged_reset"] >= 1  # the fake reset to 0.5 Wh
    rejected = sum(book.counts[k] for k in ("future", "past", "implausible", "unflagged_reset",
                                             "old_epoch", "duplicate"))
    assert rejected >= 5
