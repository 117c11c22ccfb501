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
