"""The topic layout is the public contract (docs/topics.md): builders and parser agree."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.client import topic_matches_sub

from lastwatt.transport import topics

DEVICE_IDS = st.from_regex(r"\A[A-Za-z0-9_.-]{1,64}\Z")


def test_topics_follow_the_documented_layout() -> None:
    assert topics.round_topic("village") == "lastwatt/village/round"
    assert topics.controller_status_topic("village") == "lastwatt/village/controller/status"
    assert topics.set_topic("village", "b3-0") == "lastwatt/village/device/b3-0/set"
    assert topics.meter_topic("village", "b3-0") == "lastwatt/village/device/b3-0/meter"
    assert topics.status_topic("village", "b3-0") == "lastwatt/village/device/b3-0/status"


@given(device=DEVICE_IDS, kind=st.sampled_from(topics.DEVICE_KINDS))
def test_parse_device_topic_inverts_device_topic(device: str, kind: str) -> None:
    topic = topics.device_topic("site_1", device, kind)  # type: ignore[arg-type]
    assert topics.parse_device_topic("site_1", topic) == (device, kind)


@given(device=DEVICE_IDS)
def test_controller_patterns_match_meter_and_status_but_not_set(device: str) -> None:
    subs = topics.controller_subscriptions("s")
    assert any(topic_matches_sub(p, topics.meter_topic("s", device)) for p in subs)
    assert any(topic_matches_sub(p, topics.status_topic("s", device)) for p in subs)
    assert not any(topic_matches_sub(p, topics.set_topic("s", device)) for p in subs)
    assert topic_matches_sub(topics.all_setpoints_pattern("s"), topics.set_topic("s", device))


@pytest.mark.parametrize(
    "topic",
    [
        "lastwatt/other/device/d1/meter",  # another site
        "lastwatt/village/device/d1/power",  # unknown kind
        "lastwatt/village/device/d1/meter/extra",
        "lastwatt/village/device//meter",
        "lastwatt/village/device/d 1/meter",  # outside the device-id alphabet
        "lastwatt/village/round",
        "cmnd/d1/POWER",
        "",
        "\ufffd/\x00",
    ],
)
def test_parse_device_topic_returns_none_for_foreign_topics(topic: str) -> None:
    assert topics.parse_device_topic("village", topic) is None


@given(st.text(max_size=200))
def test_parse_device_topic_never_raises(topic: str) -> None:
    result = topics.parse_device_topic("village", topic)
    assert result is None or topic == topics.device_topic("village", *result)


@pytest.mark.parametrize("bad", ["a/b", "+", "#", "", "x" * 65, "d 1"])
def test_builders_refuse_ids_that_would_break_the_topic_tree(bad: str) -> None:
    with pytest.raises(ValueError, match="not a valid topic level"):
        topics.set_topic("village", bad)
    with pytest.raises(ValueError, match="not a valid topic level"):
        topics.round_topic(bad.replace(".", "") or "+")
