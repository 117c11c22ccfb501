"""Home Assistant MQTT discovery: payloads held against the keys and values HA documents, and
retained configs on a real mosquitto (announced, cleared when a device leaves the config).

The documented keys below are copied from Home Assistant's documentation pages
"MQTT Sensor" (integrations/sensor.mqtt), "MQTT Switch" (integrations/switch.mqtt) and the
"MQTT" integration page, section "MQTT Discovery" (discovery topic format
``<discovery_prefix>/<component>/[<node_id>/]<object_id>/config``, the ``device`` and
``origin`` mappings, removal by an empty retained payload). Unknown keys are ignored by HA, so
a misspelt key would silently do nothing: every key LastWatt sends must be on these lists.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from firmware_bridge.bridge import Bridge
from firmware_bridge.homeassistant import Discovery
from firmware_bridge.simulated.modbus import ModbusFleet
from lastwatt.config import DeviceEntry
from lastwatt.config.bridge import BridgeConfig
from lastwatt.config.homeassistant import HomeAssistantOptions
from lastwatt.config.modbus import ModbusOptions
from lastwatt.messages import Setpoint, encode
from lastwatt.transport import topics
from tests.mqtt_probe import Probe, wait_until

AVAILABILITY_KEYS = {"availability", "availability_mode", "availability_template",
                     "availability_topic", "payload_available", "payload_not_available"}
ENTITY_KEYS = {"device", "enabled_by_default", "encoding", "entity_category", "entity_picture",
               "icon", "json_attributes_template", "json_attributes_topic", "name",
               "object_id", "qos", "unique_id", "value_template", "origin"}
# "MQTT Sensor": configuration variables
SENSOR_KEYS = AVAILABILITY_KEYS | ENTITY_KEYS | {
    "device_class", "expire_after", "force_update", "last_reset_value_template", "options",
    "suggested_display_precision", "state_class", "state_topic", "unit_of_measurement"}
SENSOR_REQUIRED = {"state_topic"}
# "MQTT Switch": configuration variables
SWITCH_KEYS = AVAILABILITY_KEYS | ENTITY_KEYS | {
    "command_template", "command_topic", "device_class", "optimistic", "payload_off",
    "payload_on", "retain", "state_off", "state_on", "state_topic"}
SWITCH_REQUIRED = {"command_topic"}
# the "device" mapping (device registry) and "origin" (MQTT page, discovery payload)
DEVICE_KEYS = {"configuration_url", "connections", "hw_version", "identifiers", "manufacturer",
               "model", "model_id", "name", "serial_number", "suggested_area", "sw_version",
               "via_device"}
ORIGIN_KEYS = {"name", "sw_version", "support_url"}
# "MQTT" page: node_id and object_id only [a-zA-Z0-9_-]
TOPIC = re.compile(r"^homeassistant/(sensor|switch)/[a-zA-Z0-9_-]+/[a-zA-Z0-9_-]+/config$")

SITE = "village"
DEVICES = [DeviceEntry(id="r1", business=0, dialect="modbus"),
           DeviceEntry(id="plug.2", business=1, dialect="tasmota", topic="tasmota_2"),
           DeviceEntry(id="n3", business=2)]


def check_payload(topic: str, payload: dict) -> None:
    component = TOPIC.match(topic)
    assert component, topic
    keys, required = ((SENSOR_KEYS, SENSOR_REQUIRED) if component[1] == "sensor"
                      else (SWITCH_KEYS, SWITCH_REQUIRED))
    assert set(payload) <= keys, set(payload) - keys
    assert required <= set(payload)
    assert set(payload["device"]) <= DEVICE_KEYS and payload["device"]["identifiers"]
    assert set(payload["origin"]) <= ORIGIN_KEYS and payload["origin"]["name"]
    assert payload["unique_id"]  # needed for the device mapping to apply


def test_every_payload_uses_only_documented_keys_and_energy_sensors_fit_the_dashboard():
    disc = Discovery(SITE, DEVICES, HomeAssistantOptions(discovery=True))
    configs = disc.configs()
    for topic, payload in configs.items():
        check_payload(topic, payload)
    for dev, oid in (("r1", "r1"), ("plug.2", "plug_2"), ("n3", "n3")):
        energy = configs[f"homeassistant/sensor/lastwatt_village/{oid}_energy/config"]
        assert energy["device_class"] == "energy"
        assert energy["state_class"] == "total_increasing"
        assert energy["unit_of_measurement"] == "kWh"
        assert energy["state_topic"] == topics.meter_topic(SITE, dev)
        assert energy["availability_topic"] == topics.status_topic(SITE, dev)
        relay = configs[f"homeassistant/switch/lastwatt_village/{oid}_relay/config"]
        assert relay["state_topic"] == topics.meter_topic(SITE, dev)
        assert relay["command_topic"] == f"lastwatt/village/ha/{dev}/set"
    ids = [p["unique_id"] for p in configs.values()]
    assert len(ids) == len(set(ids))
    assert {"round_round", "round_selected", "round_pool", "round_production"} <= {
        t.split("/")[3] for t in configs}


@pytest.mark.integration
def test_configs_are_retained_and_a_device_removed_from_the_config_is_cleared(mosquitto):
    url = f"mqtt://127.0.0.1:{mosquitto.port}"
    on = HomeAssistantOptions(discovery=True)
    first = Bridge(BridgeConfig(site=SITE, poll_s=0, devices=DEVICES[1:], homeassistant=on),
                   url).start()
    try:
        early = Probe(mosquitto.port, "homeassistant/#")
        wait_until(lambda: len(early.messages) == len(first.ha.announced), 5, "announced")
        early.close()
        late = Probe(mosquitto.port, "homeassistant/#")  # a new subscription: retained only
        wait_until(lambda: len(late.messages) == len(first.ha.announced), 5, "retained configs")
        for topic, msgs in late.messages.items():
            payload, retained = msgs[-1]
            assert retained
            check_payload(topic, json.loads(payload))
        late.close()
    finally:
        first.stop()
    gone = [t for t in first.ha.announced if "/n3_" in t]
    second = Bridge(BridgeConfig(site=SITE, poll_s=0, devices=DEVICES[1:2], homeassistant=on),
                    url).start()
    try:
        time.sleep(1.0)
        late = Probe(mosquitto.port, "homeassistant/#")
        time.sleep(0.5)
        assert set(late.messages) == set(second.ha.announced)  # n3's configs are gone
        assert not set(gone) & set(late.messages)
        late.close()
    finally:
        second.stop()


@pytest.mark.integration
def test_home_assistant_switch_is_read_only_unless_overrides_are_allowed(mosquitto):
    url = f"mqtt://127.0.0.1:{mosquitto.port}"
    fleet = ModbusFleet([("r1", 36_000.0)]).start()
    entries, modbus = fleet.bridge_devices()
    options = ModbusOptions(interval_s=0.2, startup_grace_s=0.2, devices=modbus)
    probe = Probe(mosquitto.port)
    bridges = []
    try:
        for allow in (False, True):
            cfg = BridgeConfig(site=SITE, poll_s=0, devices=entries, modbus=options,
                               homeassistant=HomeAssistantOptions(discovery=True,
                                                                  allow_override=allow))
            bridge = Bridge(cfg, url).start()
            bridges.append(bridge)
            sp = Setpoint("r1", 0, True, 1000.0, 1e9, time.time() + 60)
            probe.publish(topics.set_topic(SITE, "r1"), encode(sp), retain=True)
            wait_until(lambda: fleet.is_on("r1"), 5, "relay on")
            probe.publish("lastwatt/village/ha/r1/set", b"OFF")
            if not allow:
                wait_until(lambda b=bridge: b.counts["ha_commands_ignored"] == 1, 5, "ignored")
                time.sleep(0.5)
                assert fleet.is_on("r1")
            else:
                wait_until(lambda: not fleet.is_on("r1"), 5, "held off")
                time.sleep(0.5)
                assert not fleet.is_on("r1")  # the setpoint does not switch it on again
            bridge.stop()
    finally:
        for b in bridges:
            b.stop()
        fleet.stop()
        probe.close()
