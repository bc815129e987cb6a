#!/usr/bin/env bash
# Reads the pods, deployments and events of $NAMESPACE with kubectl and prints one
# tab-separated line per object or finding (namespace_health.py reads kubectl's JSON and
# documents the verdicts):
#   verdict  kind  name  value  detail
# Argument: what to check: pods, deployments, events or all (the default).
# Inputs (environment): NAMESPACE, CONTEXT (empty: the kubeconfig's current context),
# KUBERNETES_DISTRIBUTION_BINARY (kubectl or oc), KUBECONFIG, CONTAINER_RESTART_THRESHOLD,
# CONTAINER_RESTART_AGE, EVENT_AGE, EVENT_THRESHOLD.
# A failed kubectl call becomes an "error" line naming its cause; the script itself exits 0.
set -u

what="${1:-all}"
kbin="${KUBERNETES_DISTRIBUTION_BINARY:-kubectl}"
here="$(cd "$(dirname "$0")" && pwd)"
flags=(--namespace "${NAMESPACE:?NAMESPACE is not set}" --request-timeout=20s -o json)
[ -n "${CONTEXT:-}" ] && flags+=(--context "$CONTEXT")
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# fetch KEY ARGS...: kubectl get ARGS, keeping stdout, stderr and the exit code as $out/KEY.*
fetch() {
  local key="$1"
  shift
  "$kbin" get "$@" "${flags[@]}" >"$out/$key.json" 2>"$out/$key.err"
  echo $? >"$out/$key.rc"
}

fetch namespace namespace "$NAMESPACE"
# Events are filtered (type Warning, age) in Python rather than with a field selector: they
# expire after an hour, so the namespace's list stays small, and every API server serves it.
case "$what" in
  pods) fetch pods pods ;;
  deployments) fetch deployments deployments ;;
  events) fetch events events ;;
  *) fetch pods pods; fetch deployments deployments; fetch events events ;;
esac

if ! command -v python3 >/dev/null 2>&1; then
  printf 'error\tpython3\tno_binary\t127\tpython3 is needed to read kubectl output and is not on PATH\n'
  exit 0
fi
python3 "$here/namespace_health.py" "$what" "$out"
