#!/bin/sh
# Writes the broker's password file (service mosquitto-passwd in docker-compose.yml) from the
# environment. Passwords never appear on a command line (`ps` shows those to every user):
# printf is a shell builtin, and mosquitto_passwd -U hashes the plain file in place.
set -eu
umask 077
out=/passwd/passwd
tmp="$out.new"
: > "$tmp"
for account in controller bridge devices health; do
  var="MQTT_$(echo "$account" | tr a-z A-Z)_PASSWORD"
  eval "pw=\${$var:?$var is not set: run scripts/gen-env.sh}"
  printf '%s:%s\n' "$account" "$pw" >> "$tmp"
done
mosquitto_passwd -U "$tmp"
chown mosquitto:mosquitto "$tmp"
mv "$tmp" "$out"
