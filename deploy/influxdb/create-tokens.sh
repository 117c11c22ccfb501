#!/bin/bash
# InfluxDB 2.x init script (the influxdb image runs /docker-entrypoint-initdb.d/*.sh once, after
# setup, with the `influx` CLI already configured with the operator token: it never appears on
# a command line here). Creates the two scoped tokens of the stack and hands each to its one
# consumer through its own volume:
#   controller: write-only on the bucket  -> /tokens/controller/token (uid 10001, the image user)
#   grafana:    read-only on the bucket   -> /tokens/grafana/token    (uid 472, Grafana's user)
# The operator token (INFLUX_TOKEN in .env) stays with the influxdb service.
set -euo pipefail
org="${DOCKER_INFLUXDB_INIT_ORG:?}"
bucket="${DOCKER_INFLUXDB_INIT_BUCKET:?}"
bucket_id="$(influx bucket list --org "$org" --name "$bucket" --hide-headers | cut -f1)"
[ -n "$bucket_id" ] || { echo "bucket $bucket not found in org $org" >&2; exit 1; }

create() {  # <consumer> <uid> <--write-bucket|--read-bucket> <description>
  local dir="/tokens/$1"
  mkdir -p "$dir"
  # columns of `influx auth create --hide-headers`: ID, Description, Token, ...
  influx auth create --org "$org" "$3" "$bucket_id" --description "$4" --hide-headers \
    | cut -f3 > "$dir/token.new"
  [ -s "$dir/token.new" ] || { echo "no token created for $1" >&2; exit 1; }
  chmod 0400 "$dir/token.new"
  chown "$2" "$dir/token.new"
  mv "$dir/token.new" "$dir/token"
}
umask 077
create controller 10001 --write-bucket "lastwatt controller: write $bucket only"
create grafana 472 --read-bucket "lastwatt grafana: read $bucket only"
