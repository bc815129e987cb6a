#!/usr/bin/env bash
# Prints the response status line and headers of each URL in $URLS, for the report.
set -u
timeout="${REQUEST_TIMEOUT:-10}"
insecure=""
case "${VERIFY_TLS:-true}" in false|False|FALSE|no|0) insecure="--insecure" ;; esac
for url in $(printf '%s' "${URLS:-}" | tr ',\n' '  '); do
  [ -z "$url" ] && continue
  echo "== $url"
  curl -sS $insecure -o /dev/null -D - --max-time "$timeout" "$url" 2>&1 | tr -d '\r'
  echo
done
