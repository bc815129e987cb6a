#!/usr/bin/env python3
"""Reads what namespace_health.sh fetched with kubectl and prints one tab-separated line per
object or finding:

    verdict  kind  name  value  detail

Usage: namespace_health.py <pods|deployments|events|all> <dir>

<dir> holds <key>.json, <key>.err and <key>.rc (kubectl's stdout, stderr and exit code) for
each call the shell script made. Verdicts:

- error (kind = what was read, name = cause, value = kubectl's exit code): no_binary,
  bad_kubeconfig, unreachable, unauthorized, forbidden, not_found, failed, bad_output;
- pods: ok, crashloop, image_pull, container_error, failed, pending, restarts, not_ready
  (value = the pod's restarts);
- deployments: ok, unavailable, rollout_stuck, degraded (value = available/desired);
- warning events, grouped by object and reason within EVENT_AGE: warning_events when they
  happened at least EVENT_THRESHOLD times, warning_events_minor otherwise (value = count).

Thresholds come from the environment: CONTAINER_RESTART_THRESHOLD, CONTAINER_RESTART_AGE,
EVENT_AGE, EVENT_THRESHOLD. Only the standard library is used: jq is not on every runner.
"""

import json
import os
import re
import sys
from datetime import datetime, timezone

# --- Shared with k8s-deployment-health/deployment_health.py. RW.CLI stages only a bundle's own
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


def classify_deployment(deployment):
    """(verdict, 'available/desired', detail) of one deployment in the namespace view."""
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    desired = int(spec["replicas"]) if spec.get("replicas") is not None else 1
    available = int(status.get("availableReplicas") or 0)
    value = "%d/%d" % (available, desired)
    detail = "%d of %d replicas available (%d ready, %d up to date)" % (
        available,
        desired,
        int(status.get("readyReplicas") or 0),
        int(status.get("updatedReplicas") or 0),
    )
    progressing = condition(status, "Progressing")
    if desired == 0:
        return "ok", value, "scaled to zero"
    if available == 0:
        return "unavailable", value, detail
    if progressing and progressing.get("status") == "False":
        reason = "%s: %s" % (progressing.get("reason", ""), progressing.get("message", ""))
        return "rollout_stuck", value, "rollout is not progressing (%s); %s" % (reason, detail)
    if available < desired:
        return "degraded", value, detail
    return "ok", value, detail


def name_of(item):
    return (item.get("metadata") or {}).get("name", "?")


def main(argv):
    if len(argv) != 3 or argv[1] not in ("pods", "deployments", "events", "all"):
        sys.stderr.write("usage: namespace_health.py <pods|deployments|events|all> <dir>\n")
        return 2
    what, directory = argv[1], argv[2]
    now = datetime.now(timezone.utc)

    # Reading the namespace itself needs cluster-wide rights many read-only roles lack, so
    # only a clear "it does not exist" is reported.
    _, problem = load(directory, "namespace")
    if problem and problem[0] == "not_found":
        report_problem("namespace", problem)
        return 0

    if what in ("pods", "all"):
        pods, problem = load(directory, "pods")
        if problem:
            report_problem("pods", problem)
        restart_threshold = threshold("CONTAINER_RESTART_THRESHOLD", 3)
        restart_window = duration(os.environ.get("CONTAINER_RESTART_AGE"), 3600)
        for pod in sorted((pods or {}).get("items") or [], key=name_of):
            verdict = classify_pod(pod, now, restart_threshold, restart_window)
            if verdict:
                emit(verdict[0], "Pod", name_of(pod), verdict[1], verdict[2])

    if what in ("deployments", "all"):
        deployments, problem = load(directory, "deployments")
        if problem:
            report_problem("deployments", problem)
        for deployment in sorted((deployments or {}).get("items") or [], key=name_of):
            verdict, value, detail = classify_deployment(deployment)
            emit(verdict, "Deployment", name_of(deployment), value, detail)

    if what in ("events", "all"):
        events, problem = load(directory, "events")
        if problem:
            report_problem("events", problem)
        window = duration(os.environ.get("EVENT_AGE"), 1800)
        emit_events(warning_events(events, now, window), threshold("EVENT_THRESHOLD", 3))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
