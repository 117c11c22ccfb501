"""Every LastWatt MQTT topic, defined once: builders, subscription patterns and the parser.

The controller, the firmware bridge and the simulated fleet all import this module, so a
topic string never appears anywhere else. The layout is the public contract documented in
``docs/topics.md``::

    lastwatt/<site>/round                       retained, controller -> all
    lastwatt/<site>/controller/status           retained, controller Last Will
    lastwatt/<site>/read                        QoS 1, controller -> all: final meter read
    lastwatt/<site>/bridge/<bridge>/status      retained, a bridge's birth and Last Will
    lastwatt/<site>/device/<device>/set         retained, QoS 1, controller -> device
    lastwatt/<site>/device/<device>/meter       QoS 1, device -> controller
    lastwatt/<site>/device/<device>/status      retained, device Last Will
"""

from __future__ import annotations

import re
from typing import Literal

ROOT = "lastwatt"
SET: Literal["set"] = "set"
METER: Literal["meter"] = "meter"
STATUS: Literal["status"] = "status"
DeviceTopicKind = Literal["set", "meter", "status"]
DEVICE_KINDS: tuple[DeviceTopicKind, ...] = (SET, METER, STATUS)

# Same alphabets as config.site and messages.DeviceId; they also keep MQTT wildcards
# (+ #) and separators (/) out of topic levels.
_SITE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DEVICE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _check_site(site: str) -> str:
    if not _SITE_RE.match(site):
        raise ValueError(f"site {site!r} is not a valid topic level ([A-Za-z0-9_-], 1..64)")
    return site


def _check_device(device: str) -> str:
    if not _DEVICE_RE.match(device):
        raise ValueError(f"device {device!r} is not a valid topic level ([A-Za-z0-9_.-], 1..64)")
    return device


def site_prefix(site: str) -> str:
    """``lastwatt/<site>``; raises ValueError on a site name that cannot be a topic level."""
    return f"{ROOT}/{_check_site(site)}"


def round_topic(site: str) -> str:
    """Where the controller announces each round (retained)."""
    return f"{site_prefix(site)}/round"


def controller_status_topic(site: str) -> str:
    """The controller's availability (retained, its Last Will)."""
    return f"{site_prefix(site)}/controller/status"


def read_topic(site: str) -> str:
    return f"{site_prefix(site)}/read"


def bridge_status_topic(site: str, bridge: str) -> str:
    return f"{site_prefix(site)}/bridge/{_check_device(bridge)}/status"


def all_bridges_pattern(site: str) -> str:
    return f"{site_prefix(site)}/bridge/+/status"


def parse_bridge_topic(site: str, topic: str) -> str | None:
    """``lastwatt/<site>/bridge/<bridge>/status`` -> the bridge id; anything else -> None."""
    parts = topic.split("/")
    if (len(parts) != 5 or parts[0] != ROOT or parts[1] != site or parts[2] != "bridge"
            or parts[4] != STATUS or not _DEVICE_RE.match(parts[3])):
        return None
    return parts[3]


def device_topic(site: str, device: str, kind: DeviceTopicKind) -> str:
    """``lastwatt/<site>/device/<device>/<kind>``, kind one of set, meter, status."""
    if kind not in DEVICE_KINDS:
        raise ValueError(f"unknown device topic kind {kind!r}; one of {DEVICE_KINDS}")
    return f"{site_prefix(site)}/device/{_check_device(device)}/{kind}"


def set_topic(site: str, device: str) -> str:
    """Setpoints for one device (retained)."""
    return device_topic(site, device, SET)


def meter_topic(site: str, device: str) -> str:
    """One device's meter readings."""
    return device_topic(site, device, METER)


def status_topic(site: str, device: str) -> str:
    """One device's availability (retained, its Last Will)."""
    return device_topic(site, device, STATUS)


# --- subscription patterns --------------------------------------------------------------


def all_meters_pattern(site: str) -> str:
    """What the controller subscribes to for readings."""
    return f"{site_prefix(site)}/device/+/{METER}"


def all_statuses_pattern(site: str) -> str:
    """What the controller subscribes to for device availability."""
    return f"{site_prefix(site)}/device/+/{STATUS}"


def all_setpoints_pattern(site: str) -> str:
    """What a bridge serving many devices subscribes to."""
    return f"{site_prefix(site)}/device/+/{SET}"


def controller_subscriptions(site: str) -> list[str]:
    """What the controller subscribes to: every device's readings and statuses, and the
    bridges' statuses (their devices are offline with them)."""
    return [all_meters_pattern(site), all_statuses_pattern(site), all_bridges_pattern(site)]


# --- parsing ------------------------------------------------------------------------------


def parse_device_topic(site: str, topic: str) -> tuple[str, DeviceTopicKind] | None:
    """``lastwatt/<site>/device/<device>/<kind>`` -> ``(device, kind)``; anything else -> None.

    Never raises: topics come off the wire and may be anything.
    """
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != ROOT or parts[1] != site or parts[2] != "device":
        return None
    device, kind = parts[3], parts[4]
    if kind not in DEVICE_KINDS or not _DEVICE_RE.match(device):
        return None
    return device, kind
