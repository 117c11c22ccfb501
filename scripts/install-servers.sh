#!/usr/bin/env bash
# Install the servers the integration tests run (Debian packages), unless already present,
# and bubblewrap, which runs the compose services at their container paths.
set -euo pipefail
need=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_pub >/dev/null || need+=(mosquitto-clients)
command -v influxd >/dev/null || need+=(influxdb)
command -v victoria-metrics >/dev/null || need+=(victoria-metrics)
command -v bwrap >/dev/null || need+=(bubblewrap)  # the compose harness (tests/compose_harness.py)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
