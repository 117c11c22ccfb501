#!/bin/sh
# Writes .env for docker-compose.yml with fresh random secrets, mode 0600 from the start:
#   scripts/gen-env.sh [FILE]       (FILE defaults to .env next to docker-compose.yml)
# Non-secret values follow .env.example; every empty (secret) entry there gets 32 random bytes.
# An existing file is never replaced: the volumes hold state made with its secrets.
set -eu
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/.env}"
if [ -e "$out" ]; then
  echo "error: $out exists; its secrets are in use (delete it and the volumes to start over)" >&2
  exit 2
fi
secret() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
umask 077
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
grep -E '^[A-Z0-9_]+=' "$root/.env.example" | while IFS='=' read -r key value; do
  if [ -z "$value" ]; then value="$(secret)"; fi
  printf '%s=%s\n' "$key" "$value"
done > "$tmp"
mv "$tmp" "$out"
echo "wrote $out (mode 0600)"
