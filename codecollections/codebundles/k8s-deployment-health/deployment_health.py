#!/usr/bin/env python3
"""Reads what deployment_health.sh fetched with kubectl and prints one tab-separated line per
finding about one deployment, its ReplicaSets and its pods:

    verdict  kind  name  value  detail

Usage: deployment_health.py selector <dir>
       deployment_health.py <deployment|pods|events|all> <dir>

`selector` prints the deployment's pod selector in kubectl's -l syntax (nothing when the
deployment could not be read), for the shell script to list its pods and ReplicaSets with.

<dir> holds <key>.json, <key>.err and <key>.rc (kubectl's stdout, stderr and exit code) for
each call the shell script made. Verdicts:

- error (kind = what was read, name = cause, value = kubectl's exit code): no_binary,
  bad_kubeconfig, unreachable, unauthorized, forbidden, not_found, failed, bad_output;
- replicas of the deployment (value = available/desired): available, degraded, unavailable,
  scaled_to_zero;
- its rollout (value = the Progressing condition's reason): rollout_complete,
  rollout_progressing, rollout_paused, rollout_stuck;
- its pods: ok, crashloop, image_pull, container_error, failed, pending, restarts, not_ready
  (value = the pod's restarts);
- warning events about the deployment, its ReplicaSets and pods, grouped by object and reason
  within EVENT_AGE: warning_events when they happened at least EVENT_THRESHOLD times,
  warning_events_minor otherwise (value = count).

Thresholds come from the environment: CONTAINER_RESTART_THRESHOLD, CONTAINER_RESTART_AGE,
EVENT_AGE, EVENT_THRESHOLD. Only the standard library is used: jq is not on every runner.
"""

import json
import os
import re
import sys
from datetime import datetime, timezone

# --- Shared with k8s-namespace-health/namespace_health.py. RW.CLI stages only a bundle's own
# --- files, so each bundle carries its copy; change both together.

# A problem younger than this is ordinary churn: a pod being scheduled, a probe warming up.
GRACE_SECONDS = 300

IMAGE_PULL_REASONS = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "RegistryUnavailable",
    "SignatureValidationFailed",
}
START_FAILURE_REASONS = {
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "PreStartHookError",
    "PostStartHookError",
}

# kubectl's stderr → cause, first match wins. Timeouts count as unreachable: either way the
# API did not answer.
ERROR_CAUSES = [
    ("no_binary", re.compile(r"command not found|executable file not found")),
    (
        "bad_kubeconfig",
        re.compile(
            r"context .*(does not exist|was not found)|error loading config|invalid configuration"
            r"|no configuration has been provided|cannot unmarshal|couldn't get version/kind"
        ),
    ),
    ("unauthorized", re.compile(r"Unauthorized|must be logged in|provide credentials", re.I)),
    ("forbidden", re.compile(r"forbidden", re.I)),
    ("not_found", re.compile(r"\(NotFound\)|\bnot found\b")),
    (
        "unreachable",
        re.compile(
            r"Unable to connect|connection (to the server .* was )?refused|no such host|dial tcp"
            r"|network is unreachable|timeout|timed out|deadline exceeded|EOF|ServiceUnavailable",
            re.I,
        ),
    ),
]
KLOG_LINE = re.compile(r"^[IWEF]\d{4} ")


def clean(text, limit=400):
    """One line without tabs, cut to `limit` characters."""
    text = " ".join(str(text if text is not None else "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def emit(verdict, kind, name, value, detail=""):
    print("\t".join([verdict, clean(kind, 80), clean(name, 253), clean(value, 40), clean(detail)]))


def duration(text, default):
    """Seconds in '45s', '30m', '1h', '2d' or a bare number of seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(text or ""))
    if not match:
        return default
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def threshold(name, default):
    try:
        return max(1, int(float(os.environ.get(name, default))))
    except ValueError:
        return default


def parse_time(text):
    if not text:
        return None
    # Fractional seconds are dropped: older Pythons only parse six digits, kubectl prints 0-9.
    text = re.sub(r"\.\d+", "", str(text)).replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def age(text, now):
    """Seconds since the timestamp `text`, or None when there is none."""
    moment = parse_time(text)
    return None if moment is None else max(0.0, (now - moment).total_seconds())


def pretty_age(seconds):
    if seconds is None:
        return "an unknown time"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return "%d%s" % (seconds // size, unit)
    return "%ds" % seconds


def load(directory, key):
    """(parsed kubectl output, problem) for one call; problem is (cause, exit code, message).
    Both are None when the call was not made."""

    def read(extension):
        try:
            with open(os.path.join(directory, key + extension), encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    rc_text = read(".rc").strip()
    if not rc_text:
        return None, None
    rc = int(rc_text) if rc_text.lstrip("-").isdigit() else 1
    stderr = read(".err")
    if rc == 0:
        try:
            return json.loads(read(".json")), None
        except ValueError as error:
            return None, ("bad_output", rc, "kubectl printed something that is not JSON (%s)" % error)
    lines = [l.strip() for l in stderr.splitlines() if l.strip()]
    # klog lines repeat the cause with noise; kubectl's own summary is the last plain line.
    plain = [l for l in lines if not KLOG_LINE.match(l)]
    message = (plain or lines or ["kubectl exited with code %d and printed nothing" % rc])[-1]
    cause = "no_binary" if rc == 127 else next((c for c, p in ERROR_CAUSES if p.search(stderr)), "failed")
    return None, (cause, rc, message)


def report_problem(key, problem):
    cause, rc, message = problem
    emit("error", key, cause, rc, message)


def condition(status, kind):
    for item in (status or {}).get("conditions") or []:
        if item.get("type") == kind:
            return item
    return None


def last_exit(terminated):
    if not terminated:
        return ""
    text = "; last exit code %s" % terminated.get("exitCode", "?")
    if terminated.get("reason"):
        text += " (%s)" % terminated["reason"]
    return text


def classify_pod(pod, now, restart_threshold, restart_window):
    """(verdict, restarts, detail) of one pod, or None for a pod being deleted."""
    meta = pod.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return None
    status = pod.get("status") or {}
    phase = status.get("phase") or "Unknown"
    statuses = [("init container", s) for s in status.get("initContainerStatuses") or []]
    statuses += [("container", s) for s in status.get("containerStatuses") or []]
    restarts = sum(int(s.get("restartCount") or 0) for _, s in statuses)

    for what, s in statuses:
        waiting = (s.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason") or ""
        label = "%s %s" % (what, s.get("name", "?"))
        last = (s.get("lastState") or {}).get("terminated")
        if reason == "CrashLoopBackOff":
            detail = "%s is in CrashLoopBackOff after %s restarts%s" % (label, s.get("restartCount", 0), last_exit(last))
            return "crashloop", restarts, detail
        if reason in IMAGE_PULL_REASONS:
            detail = "%s cannot pull image %s: %s: %s" % (label, s.get("image", "?"), reason, waiting.get("message", ""))
            return "image_pull", restarts, detail
        if reason in START_FAILURE_REASONS:
            return "container_error", restarts, "%s cannot start: %s: %s" % (label, reason, waiting.get("message", ""))

    if phase == "Failed":
        detail = "the pod failed: %s: %s" % (status.get("reason", ""), status.get("message", ""))
        return "failed", restarts, detail

    created = age(meta.get("creationTimestamp"), now)
    if phase in ("Pending", "Unknown") and (created is None or created > GRACE_SECONDS):
        scheduled = condition(status, "PodScheduled")
        if scheduled and scheduled.get("status") == "False":
            detail = "not scheduled for %s: %s: %s" % (pretty_age(created), scheduled.get("reason", ""), scheduled.get("message", ""))
        else:
            detail = "%s for %s" % (phase, pretty_age(created))
        return "pending", restarts, detail

    for what, s in statuses:
        count = int(s.get("restartCount") or 0)
        if count < restart_threshold:
            continue
        last = (s.get("lastState") or {}).get("terminated") or {}
        since = age(last.get("finishedAt"), now)
        if since is None or since <= restart_window:
            detail = "%s %s restarted %d times, last %s ago%s" % (what, s.get("name", "?"), count, pretty_age(since), last_exit(last))
            return "restarts", restarts, detail

    if phase == "Running":
        ready = condition(status, "Ready")
        if ready and ready.get("status") != "True":
            since = age(ready.get("lastTransitionTime"), now)
            if since is None or since > GRACE_SECONDS:
                waiting = [s.get("name", "?") for _, s in statuses if not s.get("ready")]
                detail = "not ready for %s (containers not ready: %s) %s" % (
                    pretty_age(since),
                    ", ".join(waiting) or "none",
                    ready.get("message", ""),
                )
                return "not_ready", restarts, detail

    return "ok", restarts, phase


def warning_events(doc, now, window):
    """Warning events seen within `window` seconds, grouped by (kind, name, reason):
    [(kind, name, reason, count, last seen age, latest message)]. Reads core/v1 and
    events.k8s.io/v1 shapes alike."""
    groups = {}
    for event in (doc or {}).get("items") or []:
        if event.get("type") != "Warning":
            continue
        target = event.get("involvedObject") or event.get("regarding") or {}
        series = event.get("series") or {}
        seen = (
            series.get("lastObservedTime")
            or event.get("lastTimestamp")
            or event.get("deprecatedLastTimestamp")
            or event.get("eventTime")
            or (event.get("metadata") or {}).get("creationTimestamp")
        )
        since = age(seen, now)
        if since is not None and since > window:
            continue
        count = int(series.get("count") or event.get("count") or event.get("deprecatedCount") or 1)
        key = (target.get("kind") or "?", target.get("name") or "?", event.get("reason") or "?")
        message = event.get("message") or event.get("note") or ""
        total, newest, text = groups.get(key, (0, None, ""))
        if newest is None or (since is not None and since <= newest):
            newest, text = since, message
        groups[key] = (total + count, newest, text)
    return [(k, n, r, c, s, m) for (k, n, r), (c, s, m) in sorted(groups.items())]


def emit_events(events, minimum):
    for kind, name, reason, count, since, message in events:
        verdict = "warning_events" if count >= minimum else "warning_events_minor"
        emit(verdict, kind, name, count, "%s: %s (last %s ago)" % (reason, message, pretty_age(since)))


# --- End of the shared part.


def name_of(item):
    return (item.get("metadata") or {}).get("name", "?")


def selector(deployment):
    """The deployment's pod selector in kubectl's -l syntax ('' when it has none)."""
    spec_selector = (deployment.get("spec") or {}).get("selector") or {}
    parts = ["%s=%s" % (k, v) for k, v in sorted((spec_selector.get("matchLabels") or {}).items())]
    for expression in spec_selector.get("matchExpressions") or []:
        key = expression.get("key", "")
        values = ",".join(expression.get("values") or [])
        operator = expression.get("operator")
        if operator == "In":
            parts.append("%s in (%s)" % (key, values))
        elif operator == "NotIn":
            parts.append("%s notin (%s)" % (key, values))
        elif operator == "Exists":
            parts.append(key)
        elif operator == "DoesNotExist":
            parts.append("!" + key)
    return ",".join(parts)


def replicas(deployment):
    """(desired, available, ready, updated, all replicas) of a deployment."""
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    desired = int(spec["replicas"]) if spec.get("replicas") is not None else 1
    counts = [int(status.get(field) or 0) for field in ("availableReplicas", "readyReplicas", "updatedReplicas", "replicas")]
    return (desired, *counts)


def emit_replicas(deployment):
    name = name_of(deployment)
    desired, available, ready, updated, _ = replicas(deployment)
    value = "%d/%d" % (available, desired)
    detail = "%d of %d replicas available (%d ready, %d up to date)" % (available, desired, ready, updated)
    if desired == 0:
        verdict, detail = "scaled_to_zero", "scaled to zero replicas"
    elif available == 0:
        verdict = "unavailable"
    elif available < desired:
        verdict = "degraded"
    else:
        verdict = "available"
    emit(verdict, "Deployment", name, value, detail)


def emit_rollout(deployment):
    name = name_of(deployment)
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    desired, _, _, updated, total = replicas(deployment)
    progressing = condition(status, "Progressing") or {}
    reason = progressing.get("reason") or "-"
    generation = (deployment.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    if spec.get("paused"):
        emit("rollout_paused", "Deployment", name, reason, "the rollout is paused (spec.paused is true)")
    elif progressing.get("status") == "False":
        since = progressing.get("lastUpdateTime") or progressing.get("lastTransitionTime")
        detail = "Progressing is False%s: %s: %s" % (" since " + since if since else "", reason, progressing.get("message", ""))
        emit("rollout_stuck", "Deployment", name, reason, detail)
    elif generation is not None and observed is not None and int(observed) < int(generation):
        detail = "the controller has not yet seen generation %s (it saw %s)" % (generation, observed)
        emit("rollout_progressing", "Deployment", name, reason, detail)
    elif updated < desired or total > updated:
        detail = "%d of %d replicas updated, %d replicas in all" % (updated, desired, total)
        emit("rollout_progressing", "Deployment", name, reason, detail)
    else:
        emit("rollout_complete", "Deployment", name, reason, progressing.get("message", "all replicas updated"))


def owned_by(item, uids):
    return any(ref.get("uid") in uids for ref in (item.get("metadata") or {}).get("ownerReferences") or [])


def own_replicasets(deployment, listed):
    uid = (deployment.get("metadata") or {}).get("uid")
    items = (listed or {}).get("items") or []
    return [rs for rs in items if not uid or owned_by(rs, {uid})]


def own_pods(listed, replicasets, replicasets_known):
    """Pods selected by the deployment's selector, minus those a ReplicaSet of another
    deployment owns (selectors may overlap). Without the ReplicaSet list, every selected pod
    counts."""
    uids = {(rs.get("metadata") or {}).get("uid") for rs in replicasets}
    pods = []
    for pod in (listed or {}).get("items") or []:
        owners = [r for r in (pod.get("metadata") or {}).get("ownerReferences") or [] if r.get("kind") == "ReplicaSet"]
        if not replicasets_known or not owners or owned_by(pod, uids):
            pods.append(pod)
    return pods


def about_deployment(name, replicasets, pods):
    """Whether an event's object belongs to the deployment: itself, its ReplicaSets and pods,
    and ReplicaSets or pods already deleted, recognised by the names the controller gives
    them (<deployment>-<hash>, <deployment>-<hash>-<suffix>)."""
    known = {("Deployment", name)}
    known |= {("ReplicaSet", name_of(rs)) for rs in replicasets}
    known |= {("Pod", name_of(pod)) for pod in pods}
    generated = re.compile(r"%s-[a-z0-9]{5,10}(-[a-z0-9]{5})?" % re.escape(name))

    def test(kind, object_name):
        return (kind, object_name) in known or (
            kind in ("ReplicaSet", "Pod") and generated.fullmatch(object_name) is not None
        )

    return test


def main(argv):
    modes = ("selector", "deployment", "pods", "events", "all")
    if len(argv) != 3 or argv[1] not in modes:
        sys.stderr.write("usage: deployment_health.py <%s> <dir>\n" % "|".join(modes))
        return 2
    what, directory = argv[1], argv[2]
    deployment, problem = load(directory, "deployment")
    if what == "selector":
        if deployment:
            print(selector(deployment))
        return 0
    if problem or not deployment:
        report_problem("deployment", problem or ("failed", 1, "the deployment was not read"))
        return 0

    if what in ("deployment", "all"):
        emit_replicas(deployment)
        emit_rollout(deployment)
    if what == "deployment":
        return 0

    now = datetime.now(timezone.utc)
    listed_replicasets, problem = load(directory, "replicasets")
    # ReplicaSets only tell overlapping deployments' pods apart; without the right to read
    # them every selected pod counts, which is worth no issue of its own.
    if problem and problem[0] != "forbidden":
        report_problem("replicasets", problem)
    replicasets = own_replicasets(deployment, listed_replicasets)
    listed_pods, problem = load(directory, "pods")
    if problem:
        report_problem("pods", problem)
    pods = sorted(own_pods(listed_pods, replicasets, listed_replicasets is not None), key=name_of)

    if what in ("pods", "all"):
        restart_threshold = threshold("CONTAINER_RESTART_THRESHOLD", 3)
        restart_window = duration(os.environ.get("CONTAINER_RESTART_AGE"), 3600)
        for pod in pods:
            verdict = classify_pod(pod, now, restart_threshold, restart_window)
            if verdict:
                emit(verdict[0], "Pod", name_of(pod), verdict[1], verdict[2])

    if what in ("events", "all"):
        events, problem = load(directory, "events")
        if problem:
            report_problem("events", problem)
        belongs = about_deployment(name_of(deployment), replicasets, pods)
        window = duration(os.environ.get("EVENT_AGE"), 1800)
        mine = [e for e in warning_events(events, now, window) if belongs(e[0], e[1])]
        emit_events(mine, threshold("EVENT_THRESHOLD", 3))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
