#!/bin/sh
# Prints a .env for docker-compose.yml with fresh random secrets:
#   scripts/gen-env.sh > .env && chmod 600 .env
# Non-secret values follow .env.example; every empty (secret) entry there gets 32 random bytes.
set -eu
example="$(dirname "$0")/../.env.example"
secret() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
umask 077
grep -E '^[A-Z0-9_]+=' "$example" | while IFS='=' read -r key value; do
  if [ -z "$value" ]; then value="$(secret)"; fi
  printf '%s=%s\n' "$key" "$value"
done
