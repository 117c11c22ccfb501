"""One MQTT publish: what the controller, the bridge, the dialects and the simulated firmware
send, and what a client leaves with the broker as its Last Will."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Publish:
    """Topic, payload, QoS and retain of one message. The defaults suit a command, which is
    never retained (a retained command replays at every reconnect); a Last Will or a status
    is QoS 1, retained, and says so."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
