"""The versioned wire messages: JSON round trip, and every rejection has its counter kind."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lastwatt.messages import (
    MAX_PAYLOAD_BYTES,
    DeviceStatus,
    MessageError,
    MeterReading,
    RoundInfo,
    Setpoint,
    decode,
    encode,
)

finite = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)
device = st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True)


@given(device, finite, finite, finite, st.booleans())
def test_meter_reading_survives_a_json_round_trip(dev, ts, energy, power, on):
    r = MeterReading(dev, ts, energy, min(power, 1e7), on)
    assert decode(MeterReading, encode(r)) == r


@pytest.mark.parametrize("msg", [
    Setpoint("plug-1", 3, True, 1500.0, 1500.0, 1.8e9),
    DeviceStatus("plug-1", False, 1.7e9),
    RoundInfo(3, 1.7e9, 1.7e9 + 3600, 9e4, 3e4, [4, 1, 7]),
])
def test_every_message_type_survives_a_json_round_trip(msg):
    assert decode(type(msg), encode(msg)) == msg


def test_encoded_message_carries_its_version():
    assert b'"v":1' in encode(DeviceStatus("d", True))


@pytest.mark.parametrize(("payload", "kind"), [
    (b"{not json", "json"),
    (b"\xff\xfe", "json"),
    (b"[1, 2]", "schema"),
    (b'{"device": "d", "ts": 1}', "schema"),
    (b'{"device": "d", "ts": 1, "energy_wh": "lots", "power_w": 1, "on": true}', "schema"),
    (b'{"device": "d", "ts": 1, "energy_wh": -5, "power_w": 1, "on": true}', "range"),
    (b'{"device": "d", "ts": 1, "energy_wh": 5, "power_w": 1e12, "on": true}', "range"),
    (b'{"device": "a/b", "ts": 1, "energy_wh": 5, "power_w": 1, "on": true}', "range"),
    (b'{"v": 2, "device": "d", "ts": 1, "energy_wh": 5, "power_w": 1, "on": true}', "version"),
    (b"{" + b" " * MAX_PAYLOAD_BYTES + b"}", "oversize"),
])
def test_bad_payload_is_rejected_with_the_kind_it_is_counted_under(payload, kind):
    with pytest.raises(MessageError) as err:
        decode(MeterReading, payload)
    assert err.value.kind == kind
