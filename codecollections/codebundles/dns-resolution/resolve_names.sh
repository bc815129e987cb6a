#!/usr/bin/env bash
# Resolves each name in $HOSTNAMES and prints one tab-separated line per name:
#   name  verdict  milliseconds  addresses  resolver  detail
# verdict is ok, failed (no address), unexpected (an expected address is missing) or slow.
# Inputs (environment): HOSTNAMES (separated by commas), DNS_RESOLVER (optional server to ask
# with dig; the system resolver through getent otherwise), EXPECTED_ADDRESSES (optional
# name=address pairs separated by commas), MAX_LATENCY_MS, LOOKUP_TIMEOUT (seconds).
set -u
max_ms="${MAX_LATENCY_MS:-500}"
lookup_timeout="${LOOKUP_TIMEOUT:-5}"
resolver="${DNS_RESOLVER:-}"
if [ -n "$resolver" ] && ! command -v dig >/dev/null 2>&1; then
  for name in $(printf '%s' "${HOSTNAMES:-}" | tr ',\n' '  '); do
    printf '%s\tfailed\t0\t\t%s\tdig is not installed (Debian: apt-get install dnsutils); it is needed to ask a specific resolver\n' "$name" "$resolver"
  done
  exit 0
fi

for name in $(printf '%s' "${HOSTNAMES:-}" | tr ',\n' '  '); do
  [ -z "$name" ] && continue
  start=$(date +%s%N)
  if [ -n "$resolver" ]; then
    answer=$(dig +short +time="$lookup_timeout" +tries=1 "@$resolver" "$name" A "$name" AAAA 2>&1)
    rc=$?
    addresses=$(printf '%s\n' "$answer" | grep -E '^[0-9a-fA-F:.]+$' | grep -E '[.:]' | sort -u | paste -sd ' ' -)
    used="$resolver"
  else
    answer=$(timeout "$lookup_timeout" getent ahosts "$name" 2>&1)
    rc=$?
    addresses=$(printf '%s\n' "$answer" | awk 'NF { print $1 }' | sort -u | paste -sd ' ' -)
    used="system"
  fi
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  detail=""
  if [ -z "$addresses" ]; then
    verdict=failed
    case "$rc" in
      2) detail="the name does not exist (no address records)" ;;
      124) detail="no answer within ${lookup_timeout}s" ;;
      9) detail="the resolver did not answer within ${lookup_timeout}s" ;;
      *) detail=$(printf '%s' "$answer" | head -n 2 | tr '\t\n' '  ' | sed 's/ *$//'); [ -z "$detail" ] && detail="no address records" ;;
    esac
  else
    verdict=ok
    missing=""
    for pair in $(printf '%s' "${EXPECTED_ADDRESSES:-}" | tr ',\n' '  '); do
      [ "${pair%%=*}" = "$name" ] || continue
      want="${pair#*=}"
      case " $addresses " in *" $want "*) ;; *) missing="$missing $want" ;; esac
    done
    if [ -n "$missing" ]; then
      verdict=unexpected
      detail="expected address(es)${missing} not in the answer"
    elif [ "$ms" -gt "$max_ms" ]; then
      verdict=slow
      detail="took ${ms} ms; the limit is ${max_ms} ms"
    fi
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$verdict" "$ms" "$addresses" "$used" "$detail"
done
