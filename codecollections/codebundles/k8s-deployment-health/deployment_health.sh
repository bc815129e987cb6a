#!/usr/bin/env bash
# Reads one deployment, its ReplicaSets, its pods and the namespace's events with kubectl and
# prints one tab-separated line per finding (deployment_health.py reads kubectl's JSON and
# documents the verdicts):
#   verdict  kind  name  value  detail
# Argument: what to check: deployment (replicas and rollout), pods, events or all (the default).
# Inputs (environment): DEPLOYMENT_NAME, NAMESPACE, CONTEXT (empty: the kubeconfig's current
# context), KUBERNETES_DISTRIBUTION_BINARY (kubectl or oc), KUBECONFIG,
# CONTAINER_RESTART_THRESHOLD, CONTAINER_RESTART_AGE, EVENT_AGE, EVENT_THRESHOLD.
# A failed kubectl call becomes an "error" line naming its cause; the script itself exits 0.
set -u

what="${1:-all}"
kbin="${KUBERNETES_DISTRIBUTION_BINARY:-kubectl}"
here="$(cd "$(dirname "$0")" && pwd)"
flags=(--namespace "${NAMESPACE:?NAMESPACE is not set}" --request-timeout=20s -o json)
[ -n "${CONTEXT:-}" ] && flags+=(--context "$CONTEXT")
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

if ! command -v python3 >/dev/null 2>&1; then
  printf 'error\tpython3\tno_binary\t127\tpython3 is needed to read kubectl output and is not on PATH\n'
  exit 0
fi

# fetch KEY ARGS...: kubectl get ARGS, keeping stdout, stderr and the exit code as $out/KEY.*
fetch() {
  local key="$1"
  shift
  "$kbin" get "$@" "${flags[@]}" >"$out/$key.json" 2>"$out/$key.err"
  echo $? >"$out/$key.rc"
}

fetch deployment deployment "${DEPLOYMENT_NAME:?DEPLOYMENT_NAME is not set}"
selector="$(python3 "$here/deployment_health.py" selector "$out")"
# Without a selector (the deployment could not be read, or selects nothing) there are no pods
# to list; the report says why.
if [ "$what" != deployment ] && [ -n "$selector" ]; then
  fetch replicasets replicasets --selector "$selector"
  fetch pods pods --selector "$selector"
  # Events are filtered (type Warning, age, object) in Python rather than with a field
  # selector: they expire after an hour, so the namespace's list stays small.
  [ "$what" = pods ] || fetch events events
fi
python3 "$here/deployment_health.py" "$what" "$out"
