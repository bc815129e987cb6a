#!/usr/bin/env bash
# Probes each URL in $URLS (separated by commas, spaces or newlines) with curl and prints one
# tab-separated line per URL:
#   verdict  url  http_code  seconds  curl_exit  detail
# verdict is one of: ok, unreachable, bad_status, slow.
# Inputs (environment): URLS, ACCEPTABLE_RESPONSE_CODES (e.g. "200,204,301"), TARGET_LATENCY
# (seconds), REQUEST_TIMEOUT (seconds), VERIFY_TLS (true/false).
set -u

accept="${ACCEPTABLE_RESPONSE_CODES:-200,201,202,204,301,302,304}"
target="${TARGET_LATENCY:-1.0}"
timeout="${REQUEST_TIMEOUT:-10}"
insecure=""
case "${VERIFY_TLS:-true}" in false|False|FALSE|no|0) insecure="--insecure" ;; esac

for url in $(printf '%s' "${URLS:-}" | tr ',\n' '  '); do
  [ -z "$url" ] && continue
  errfile=$(mktemp)
  out=$(curl -sS $insecure -o /dev/null --max-time "$timeout" -w '%{http_code}\t%{time_total}' "$url" 2>"$errfile")
  rc=$?
  detail=$(tr '\t\n' '  ' <"$errfile" | sed -e 's/^curl: ([0-9]*) //' -e 's/ *$//')
  rm -f "$errfile"
  code=$(printf '%s' "$out" | cut -f1)
  seconds=$(printf '%s' "$out" | cut -f2)
  [ -z "$code" ] && code=000
  [ -z "$seconds" ] && seconds=0
  if [ "$rc" -ne 0 ] || [ "$code" = "000" ]; then
    verdict=unreachable
  elif ! printf ',%s,' "$accept" | tr -d ' ' | grep -q ",$code,"; then
    verdict=bad_status
    detail="answered $code; accepted codes are $accept"
  elif awk -v s="$seconds" -v t="$target" 'BEGIN { exit !(s > t) }'; then
    verdict=slow
    detail="took ${seconds}s; target is ${target}s"
  else
    verdict=ok
    detail=""
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$verdict" "$url" "$code" "$seconds" "$rc" "$detail"
done
