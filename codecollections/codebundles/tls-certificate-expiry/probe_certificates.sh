#!/usr/bin/env bash
# Fetches the certificate each endpoint in $TLS_ENDPOINTS presents and prints one
# tab-separated line per endpoint:
#   endpoint  reachable  days_left  not_after  verify_code  verify_text  subject  issuer  detail
# reachable is yes or no; verify_code 0 means the chain and the host name were trusted.
# Inputs (environment): TLS_ENDPOINTS ("host:port" separated by commas; port defaults to 443),
# CONNECT_TIMEOUT (seconds), CA_BUNDLE (optional file of extra trusted CAs).
set -u
timeout_s="${CONNECT_TIMEOUT:-10}"
now=$(date -u +%s)

for endpoint in $(printf '%s' "${TLS_ENDPOINTS:-}" | tr ',\n' '  '); do
  [ -z "$endpoint" ] && continue
  endpoint="${endpoint#https://}"
  endpoint="${endpoint%%/*}"
  case "$endpoint" in
    \[*\]:*) host="${endpoint%]:*}"; host="${host#[}"; port="${endpoint##*]:}" ;;
    *:*) host="${endpoint%:*}"; port="${endpoint##*:}" ;;
    *) host="$endpoint"; port=443 ;;
  esac
  args=(-connect "$host:$port")
  if printf '%s' "$host" | grep -Eq '^[0-9.]+$|:'; then
    args+=(-verify_ip "$host")
  else
    args+=(-servername "$host" -verify_hostname "$host")
  fi
  [ -n "${CA_BUNDLE:-}" ] && args+=(-CAfile "$CA_BUNDLE")
  session=$(timeout "$timeout_s" openssl s_client "${args[@]}" </dev/null 2>&1)
  pem=$(printf '%s\n' "$session" | sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p')
  if [ -z "$pem" ]; then
    detail=$(printf '%s\n' "$session" | grep -Ei 'error|refused|unknown|timed out|connect:' | head -n 2 | tr '\t\n' '  ' | sed 's/ *$//')
    [ -z "$detail" ] && detail="no certificate received within ${timeout_s}s"
    printf '%s\tno\t\t\t\t\t\t\t%s\n' "$host:$port" "$detail"
    continue
  fi
  not_after=$(printf '%s\n' "$pem" | openssl x509 -noout -enddate 2>/dev/null | cut -d= -f2-)
  subject=$(printf '%s\n' "$pem" | openssl x509 -noout -subject 2>/dev/null | sed 's/^subject= *//')
  issuer=$(printf '%s\n' "$pem" | openssl x509 -noout -issuer 2>/dev/null | sed 's/^issuer= *//')
  expires=$(date -u -d "$not_after" +%s 2>/dev/null || echo "$now")
  days_left=$(( (expires - now) / 86400 ))
  verify_line=$(printf '%s\n' "$session" | grep -m1 'Verify return code:' | sed 's/^ *Verify return code: *//')
  verify_code="${verify_line%% *}"
  verify_text=$(printf '%s' "$verify_line" | sed 's/^[0-9]* *//; s/^(//; s/)$//')
  [ -z "$verify_code" ] && verify_code=unknown
  printf '%s\tyes\t%s\t%s\t%s\t%s\t%s\t%s\t\n' "$host:$port" "$days_left" "$not_after" "$verify_code" "$verify_text" "$subject" "$issuer"
done
