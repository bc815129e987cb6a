*** Settings ***
Documentation       Measures the health of one Kubernetes namespace: the share of its pods,
...                 deployments and warned-about objects that show no problem. 1 when every
...                 object is healthy, 0 when none is or when the namespace cannot be read.
Metadata            Author    Steward
Metadata            Display Name    Kubernetes Namespace Health
Metadata            Supports    Kubernetes    AKS    EKS    GKE    OpenShift
Library             RW.Core
Library             RW.CLI
Suite Setup         Suite Initialization


*** Tasks ***
Measure Health of Namespace `${NAMESPACE}`
    [Documentation]    Reads the namespace's pods, deployments and events once. A pod is
    ...    unhealthy when it crash-loops, cannot pull its image or start, failed, is pending or
    ...    not ready for more than five minutes, or restarts often; a deployment when replicas
    ...    are unavailable or its rollout is stuck; any object with at least EVENT_THRESHOLD
    ...    recent warning events for one reason. Pushes the share of healthy objects, with the
    ...    numbers of objects checked and unhealthy as sub-metrics.
    [Tags]    access:read-only    data:metrics    kubernetes
    ${rsp}=    RW.CLI.Run Bash File
    ...    bash_file=namespace_health.sh
    ...    cmd_override=./namespace_health.sh all
    ...    env=${env}
    ...    secret_file__kubeconfig=${kubeconfig}
    ...    include_in_history=false
    ...    timeout_seconds=120
    ${rows}=    Evaluate    [l.split('\\t') for l in $rsp.stdout.splitlines() if l.count('\\t') == 4]
    ${errors}=    Evaluate    [r for r in $rows if r[0] == 'error']
    IF    $errors or $rsp.returncode != 0
        ${why}=    Evaluate    '\\n'.join('%s: %s (%s)' % (r[1], r[4], r[2]) for r in $errors) or $rsp.stderr
        RW.Core.Add Pre To Report
        ...    Namespace `${NAMESPACE}` could not be read, so its health is unknown and counts as 0:\n${why}
        RW.Core.Push Metric    0
    ELSE
        # An object counts once, however many lines mention it; minor warnings do not count.
        ${checked}=    Evaluate    {(r[1], r[2]) for r in $rows if r[0] != 'warning_events_minor'}
        ${unhealthy}=    Evaluate    {(r[1], r[2]) for r in $rows if r[0] not in ('ok', 'warning_events_minor')}
        ${total}=    Get Length    ${checked}
        ${bad}=    Get Length    ${unhealthy}
        ${score}=    Evaluate    round(($total - $bad) / $total, 4) if $total else 1
        ${problems}=    Evaluate
        ...    '\\n'.join('%-20s %s/%s: %s' % (r[0], r[1], r[2], r[4]) for r in $rows if r[0] not in ('ok', 'warning_events_minor'))
        RW.Core.Add Pre To Report
        ...    ${{$total - $bad}} of ${total} objects healthy in namespace `${NAMESPACE}` (score ${score})\n${problems}
        RW.Core.Push Metric    ${total}    sub_name=objects_checked
        RW.Core.Push Metric    ${bad}    sub_name=unhealthy_objects
        RW.Core.Push Metric    ${score}
    END


*** Keywords ***
Suite Initialization
    ${kubeconfig}=    RW.Core.Import Secret    kubeconfig
    ...    type=string
    ...    description=A kubeconfig with read access to the namespace (get and list on pods, deployments and events).
    ${NAMESPACE}=    RW.Core.Import User Variable    NAMESPACE
    ...    type=string
    ...    description=The namespace to check.
    ...    example=shop
    ${CONTEXT}=    RW.Core.Import User Variable    CONTEXT
    ...    type=string
    ...    description=The kubeconfig context to use; empty for the kubeconfig's current context.
    ...    example=prod-eu
    ...    default=${EMPTY}
    ${KUBERNETES_DISTRIBUTION_BINARY}=    RW.Core.Import User Variable    KUBERNETES_DISTRIBUTION_BINARY
    ...    type=string
    ...    description=The Kubernetes command-line tool to call.
    ...    enum=[kubectl,oc]
    ...    example=kubectl
    ...    default=kubectl
    ${CONTAINER_RESTART_THRESHOLD}=    RW.Core.Import User Variable    CONTAINER_RESTART_THRESHOLD
    ...    type=string
    ...    description=Restarts of one container, the last within CONTAINER_RESTART_AGE, that make its pod unhealthy.
    ...    example=5
    ...    default=3
    ${CONTAINER_RESTART_AGE}=    RW.Core.Import User Variable    CONTAINER_RESTART_AGE
    ...    type=string
    ...    description=How recent the last restart must be to count (s, m, h or d).
    ...    example=30m
    ...    default=1h
    ${EVENT_AGE}=    RW.Core.Import User Variable    EVENT_AGE
    ...    type=string
    ...    description=How far back warning events are read (s, m, h or d).
    ...    example=1h
    ...    default=30m
    ${EVENT_THRESHOLD}=    RW.Core.Import User Variable    EVENT_THRESHOLD
    ...    type=string
    ...    description=Warning events for one object and reason within EVENT_AGE that make the object unhealthy.
    ...    example=5
    ...    default=3
    ${env}=    Create Dictionary
    ...    KUBECONFIG=./kubeconfig
    ...    NAMESPACE=${NAMESPACE}
    ...    CONTEXT=${CONTEXT}
    ...    KUBERNETES_DISTRIBUTION_BINARY=${KUBERNETES_DISTRIBUTION_BINARY}
    ...    CONTAINER_RESTART_THRESHOLD=${CONTAINER_RESTART_THRESHOLD}
    ...    CONTAINER_RESTART_AGE=${CONTAINER_RESTART_AGE}
    ...    EVENT_AGE=${EVENT_AGE}
    ...    EVENT_THRESHOLD=${EVENT_THRESHOLD}
    Set Suite Variable    ${env}
