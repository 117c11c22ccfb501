"""Home Assistant MQTT discovery: the site's business loads in HA's energy dashboard.

Opt-in (``[homeassistant] discovery = true`` in the bridge config). For every device of the
config the bridge announces, retained, on ``<prefix>/<component>/lastwatt_<site>/<object>/
config`` (HA's discovery topic ``<discovery_prefix>/<component>/[<node_id>/]<object_id>/
config``):

- a ``sensor`` reading the device's native meter topic: ``energy_wh`` / 1000 as kWh with
  ``device_class: energy`` and ``state_class: total_increasing`` (what the energy dashboard
  takes);
- a ``switch`` whose state is the meter reading's ``on``; its command topic
  ``lastwatt/<site>/ha/<device>/set`` is ignored (counted) unless ``allow_override``: then
  ``OFF`` holds a bridged relay off and ``ON`` releases it to the next setpoint;
- availability from the device's native status topic (the device's or the bridge's Last Will);
- a "LastWatt" device with the round's number, selected businesses, business pool and
  production, read from the controller's retained round topic.

A device that left the config has its retained config topics cleared (an empty retained
payload, which HA takes as removal): at start the bridge subscribes to its own node's
discovery topics and clears every object it no longer announces.
"""

from __future__ import annotations

from typing import Any

from firmware_bridge.dialects.base import dumps
from lastwatt import __version__
from lastwatt.config import DeviceEntry
from lastwatt.config.homeassistant import HomeAssistantOptions
from lastwatt.transport import topics
from lastwatt.transport.publish import Publish

AVAILABILITY = {
    "payload_available": "online",
    "payload_not_available": "offline",
    "availability_template": "{{ 'online' if value_json.online else 'offline' }}",
}


class Discovery:
    def __init__(self, site: str, devices: list[DeviceEntry], options: HomeAssistantOptions
                 ) -> None:
        self.site = site
        self.options = options
        self.node = f"lastwatt_{site}"
        self.devices = {d.id: d for d in devices}
        self.command_prefix = f"{topics.site_prefix(site)}/ha/"
        self.announced = self.configs()
        self.forced_off: set[str] = set()

    # --- what is announced ----------------------------------------------------------------

    def topic(self, component: str, object_id: str) -> str:
        return f"{self.options.prefix}/{component}/{self.node}/{object_id}/config"

    def configs(self) -> dict[str, dict[str, Any]]:
        """Discovery topic -> payload, for every entity this bridge announces."""
        site, node = self.site, self.node
        origin = {"name": "lastwatt-bridge", "sw_version": __version__}
        hub = {"identifiers": [node], "name": f"LastWatt {site}", "manufacturer": "LastWatt",
               "model": "community-staked solar container"}
        out: dict[str, dict[str, Any]] = {}
        for dev_id, d in self.devices.items():
            oid = _object_id(dev_id)
            device = {"identifiers": [f"{node}_{oid}"], "name": f"LastWatt {dev_id}",
                      "manufacturer": "LastWatt", "model": f"{d.dialect} relay",
                      "via_device": node}
            common = {"availability_topic": topics.status_topic(site, dev_id), **AVAILABILITY,
                      "device": device, "origin": origin}
            meter = topics.meter_topic(site, dev_id)
            out[self.topic("sensor", f"{oid}_energy")] = {
                "name": "Energy", "unique_id": f"{node}_{oid}_energy", "state_topic": meter,
                "value_template": "{{ (value_json.energy_wh / 1000) | round(4) }}",
                "device_class": "energy", "state_class": "total_increasing",
                "unit_of_measurement": "kWh", **common}
            out[self.topic("switch", f"{oid}_relay")] = {
                "name": "Relay", "unique_id": f"{node}_{oid}_relay", "state_topic": meter,
                "value_template": "{{ 'ON' if value_json.on else 'OFF' }}",
                "command_topic": f"{self.command_prefix}{dev_id}/set",
                "payload_on": "ON", "payload_off": "OFF", "optimistic": False, **common}
        round_common = {"state_topic": topics.round_topic(site),
                        "availability_topic": topics.controller_status_topic(site),
                        **AVAILABILITY, "device": hub, "origin": origin}
        for oid, name, template, extra in (
            ("round", "Round", "{{ value_json.round }}", {}),
            ("selected", "Selected businesses", "{{ value_json.selected | join(',') }}", {}),
            ("pool", "Business pool", "{{ (value_json.business_pool_wh / 1000) | round(3) }}",
             {"device_class": "energy", "unit_of_measurement": "kWh"}),
            ("production", "Production", "{{ (value_json.production_wh / 1000) | round(3) }}",
             {"device_class": "energy", "unit_of_measurement": "kWh"}),
        ):
            out[self.topic("sensor", f"round_{oid}")] = {
                "name": name, "unique_id": f"{node}_round_{oid}", "value_template": template,
                **extra, **round_common}
        return out

    def announcements(self) -> list[Publish]:
        return [Publish(t, dumps(p), 1, True) for t, p in self.announced.items()]

    # --- inbound --------------------------------------------------------------------------

    def subscriptions(self) -> list[str]:
        return [f"{self.options.prefix}/+/{self.node}/+/config", f"{self.command_prefix}+/set"]

    def handles(self, topic: str) -> bool:
        return topic.startswith(self.command_prefix) or (
            topic.startswith(f"{self.options.prefix}/") and f"/{self.node}/" in topic)

    def stale(self, topic: str, payload: bytes) -> list[Publish]:
        """A retained config of this node that is no longer announced: clear it."""
        if topic.endswith("/config") and payload and topic not in self.announced:
            return [Publish(topic, b"", 1, True)]
        return []

    def command(self, topic: str, payload: bytes) -> tuple[str, bool] | None:
        """``(device, on)`` for an HA switch command, None when it is not one."""
        if not (topic.startswith(self.command_prefix) and topic.endswith("/set")):
            return None
        dev_id = topic[len(self.command_prefix):-len("/set")]
        text = payload.decode(errors="replace").strip()
        if dev_id not in self.devices or text not in ("ON", "OFF"):
            raise ValueError(f"{topic}: {text[:20]!r} for device {dev_id!r}")
        return dev_id, text == "ON"


def _object_id(device_id: str) -> str:
    """HA allows [a-zA-Z0-9_-] in object ids; device ids may also hold dots."""
    return device_id.replace(".", "_")
