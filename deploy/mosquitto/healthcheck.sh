#!/bin/sh
# Broker healthcheck: a publish/receive round trip as the `health` account. mosquitto_pub exits
# 0 even when the broker denies the publish (MQTT 3.1.1 cannot say so; with MQTT 5 it only
# warns), so only reading the fresh value back proves that login, ACL and delivery work.
# The password goes from the environment into the clients' option files, never onto argv.
set -eu
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/cfg"
for tool in mosquitto_pub mosquitto_sub; do
  printf -- '-h localhost\n-p 1883\n-u health\n-P %s\n' "${MQTT_HEALTH_PASSWORD:?}" \
    > "$dir/cfg/$tool"
done
export XDG_CONFIG_HOME="$dir/cfg"
topic=lastwatt/village/health
token="$(date +%s)-$$"
# retained, QoS 1: stored by the broker before mosquitto_pub exits; a stale value cannot match
mosquitto_pub -q 1 -r -t "$topic" -m "$token"
got="$(mosquitto_sub -C 1 -W 3 -t "$topic")" || true  # -W: exit 27 after 3 s
[ "$got" = "$token" ] || { echo "broker round trip failed: got '$got'" >&2; exit 1; }
