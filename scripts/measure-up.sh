#!/usr/bin/env bash
# Measures what a new user waits for with `steward up`: seconds from start until every
# example SLX shows an SLI value, and the wall time of one runbook session.
#
#   scripts/measure-up.sh [path/to/steward]     (default: target/release/steward)
#
# Set STEWARD_CACHE_DIR to an empty directory to include building the task environment
# (a cold first start); leave it at a warm cache to measure a restart.
set -euo pipefail
steward="${1:-target/release/steward}"
data="$(mktemp -d)"
port="${PORT:-18080}"
tls_port="${TLS_PORT:-18443}"
url="http://127.0.0.1:$port"
start=$(date +%s.%N)
STEWARD_DATA_DIR="$data" "$steward" up --listen "127.0.0.1:$port" --tls-listen "127.0.0.1:$tls_port" >"$data/up.log" 2>&1 &
pid=$!
trap 'kill -INT $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
until [ "$(curl -s "$url/api/v1/workspaces/local/slxs" 2>/dev/null | grep -o '"latestSli"' | wc -l)" -ge 4 ]; do
  kill -0 $pid 2>/dev/null || { cat "$data/up.log"; exit 1; }
  sleep 0.5
done
ready=$(date +%s.%N)
printf 'four SLI values after      %6.1f s\n' "$(awk "BEGIN { print $ready - $start }")"
s=$(date +%s.%N)
"$steward" session create --url "$url" --slx platform-tls --output json >/dev/null || true
e=$(date +%s.%N)
printf 'runbook session (wait)     %6.1f s\n' "$(awk "BEGIN { print $e - $s }")"
