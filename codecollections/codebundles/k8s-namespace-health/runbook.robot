*** Settings ***
Documentation       Troubleshoots one Kubernetes namespace: finds crash-looping, pending,
...                 image-pull-failing and otherwise broken pods, deployments without their
...                 replicas, and objects with repeated warning events, and raises an issue for
...                 each with what was expected, what was seen and the kubectl command to see it.
Metadata            Author    Steward
Metadata            Display Name    Kubernetes Namespace Health
Metadata            Supports    Kubernetes    AKS    EKS    GKE    OpenShift
Library             RW.Core
Library             RW.CLI
Suite Setup         Suite Initialization


*** Tasks ***
Check Pod Health in Namespace `${NAMESPACE}`
    [Documentation]    Raises an issue for each pod that crash-loops, cannot pull its image or
    ...    start its containers, failed, is pending or not ready for more than five minutes, or
    ...    restarted at least CONTAINER_RESTART_THRESHOLD times within CONTAINER_RESTART_AGE.
    [Tags]    access:read-only    data:config    kubernetes    pods
    ${rows}=    Run Namespace Check    pods
    FOR    ${row}    IN    @{rows}
        IF    $row[1] == 'Pod' and $row[0] != 'ok'
            Raise Pod Issue    ${row}[0]    ${row}[2]    ${row}[4]
        END
    END
    Report Rows    ${rows}    Pod    pods
    ${history}=    RW.CLI.Pop Shell History
    RW.Core.Add Pre To Report    Commands Used: ${history}

Check Deployment Availability in Namespace `${NAMESPACE}`
    [Documentation]    Raises an issue for each deployment with fewer available replicas than
    ...    desired, or whose rollout stopped progressing.
    [Tags]    access:read-only    data:config    kubernetes    deployments
    ${rows}=    Run Namespace Check    deployments
    FOR    ${row}    IN    @{rows}
        IF    $row[1] == 'Deployment' and $row[0] != 'ok'
            Raise Deployment Issue    ${row}[0]    ${row}[2]    ${row}[3]    ${row}[4]
        END
    END
    Report Rows    ${rows}    Deployment    deployments
    ${history}=    RW.CLI.Pop Shell History
    RW.Core.Add Pre To Report    Commands Used: ${history}

Inspect Warning Events in Namespace `${NAMESPACE}`
    [Documentation]    Groups the warning events of the last EVENT_AGE by object and reason,
    ...    raises an issue for each group seen at least EVENT_THRESHOLD times and lists all of
    ...    them in the report.
    [Tags]    access:read-only    data:logs    kubernetes    events
    ${rows}=    Run Namespace Check    events
    FOR    ${row}    IN    @{rows}
        IF    $row[0] == 'warning_events'
            ${reason}=    Evaluate    $row[4].split(':', 1)[0]
            RW.Core.Add Issue
            ...    severity=3
            ...    title=${row}[1] `${row}[2]` in namespace `${NAMESPACE}` has ${row}[3] `${reason}` warning events
            ...    expected=Fewer than ${EVENT_THRESHOLD} `${reason}` warning events for ${row}[1] `${row}[2]` within ${EVENT_AGE}
            ...    actual=${row}[3] events within ${EVENT_AGE}: ${row}[4]
            ...    reproduce_hint=${KUBERNETES_DISTRIBUTION_BINARY} get events ${SCOPE} --field-selector type=Warning,involvedObject.kind=${row}[1],involvedObject.name=${row}[2]
            ...    next_steps=Read the events' messages for the cause of `${reason}`\nDescribe ${row}[1] `${row}[2]` to see its current state next to its events
            ...    details=object: ${row}[1]/${row}[2]\nnamespace: ${NAMESPACE}\nevents: ${row}[4]
        END
    END
    ${listing}=    Evaluate
    ...    '\\n'.join('%5s %s/%s %s' % (r[3], r[1], r[2], r[4]) for r in $rows if r[0].startswith('warning_events')) or 'none'
    RW.Core.Add Pre To Report    Warning events within ${EVENT_AGE} (count, object, reason: latest message):\n${listing}
    ${history}=    RW.CLI.Pop Shell History
    RW.Core.Add Pre To Report    Commands Used: ${history}


*** Keywords ***
Run Namespace Check
    [Documentation]    Runs namespace_health.sh for `what` and returns its rows; read errors
    ...    become issues here.
    [Arguments]    ${what}
    ${rsp}=    RW.CLI.Run Bash File
    ...    bash_file=namespace_health.sh
    ...    cmd_override=./namespace_health.sh ${what}
    ...    env=${env}
    ...    secret_file__kubeconfig=${kubeconfig}
    ...    timeout_seconds=120
    ${rows}=    Evaluate    [l.split('\\t') for l in $rsp.stdout.splitlines() if l.count('\\t') == 4]
    IF    $rsp.returncode != 0
        RW.Core.Add Issue
        ...    severity=3
        ...    title=The check of ${what} in namespace `${NAMESPACE}` did not finish
        ...    expected=namespace_health.sh reads the ${what} of namespace `${NAMESPACE}` and exits 0
        ...    actual=It exited with code ${rsp.returncode}: ${rsp.stderr}
        ...    reproduce_hint=NAMESPACE=${NAMESPACE} CONTEXT=${CONTEXT} ./namespace_health.sh ${what}
        ...    next_steps=Check that python3 and ${KUBERNETES_DISTRIBUTION_BINARY} work on the runner\nRead the error output above
        ...    details=${rsp.stderr}
    END
    Raise Read Error Issues    ${rows}
    RETURN    ${rows}

Raise Read Error Issues
    [Documentation]    One issue per `error` row: what could not be read and why.
    [Arguments]    ${rows}
    FOR    ${row}    IN    @{rows}
        IF    $row[0] != 'error'    CONTINUE
        IF    $row[1] == 'namespace'
            RW.Core.Add Issue
            ...    severity=3
            ...    title=Namespace `${NAMESPACE}` does not exist in context `${CONTEXT}`
            ...    expected=Namespace `${NAMESPACE}` exists
            ...    actual=${row}[4]
            ...    reproduce_hint=${KUBERNETES_DISTRIBUTION_BINARY} get namespace ${NAMESPACE} ${CONTEXT_FLAG}
            ...    next_steps=Check the namespace name and the context this check uses\nIf the namespace was removed on purpose, remove this check or run discovery again
            ...    details=${row}[4]
            CONTINUE
        END
        ${severity}=    Evaluate    2 if $row[2] in ('unreachable', 'unauthorized') else 3
        ${cause}=    Evaluate    $READ_ERROR_CAUSES.get($row[2], $READ_ERROR_CAUSES['failed'])
        ${next}=    Evaluate    $READ_ERROR_NEXT_STEPS.get($row[2], $READ_ERROR_NEXT_STEPS['failed'])
        RW.Core.Add Issue
        ...    severity=${severity}
        ...    title=Cannot read ${row}[1] in namespace `${NAMESPACE}`: ${cause}
        ...    expected=The kubeconfig secret lets ${KUBERNETES_DISTRIBUTION_BINARY} list ${row}[1] in namespace `${NAMESPACE}` of context `${CONTEXT}`
        ...    actual=${KUBERNETES_DISTRIBUTION_BINARY} exited with code ${row}[3]: ${row}[4]
        ...    reproduce_hint=${KUBERNETES_DISTRIBUTION_BINARY} get ${row}[1] ${SCOPE}
        ...    next_steps=${next}
        ...    details=cause: ${row}[2]\nmessage: ${row}[4]
    END

Raise Pod Issue
    [Documentation]    One issue for a pod with a problem; the verdicts are namespace_health.py's.
    [Arguments]    ${verdict}    ${pod}    ${detail}
    ${logs}=    Set Variable
    ...    ${KUBERNETES_DISTRIBUTION_BINARY} logs pod/${pod} ${SCOPE} --all-containers --previous --tail=100
    ${describe}=    Set Variable    ${KUBERNETES_DISTRIBUTION_BINARY} describe pod ${pod} ${SCOPE}
    IF    $verdict == 'crashloop'
        ${severity}    ${problem}    ${hint}=    Set Variable    2    is crash-looping    ${logs}
        ${next}=    Set Variable
        ...    Read the previous logs of the crashing container for the error it exits with\nCheck recent changes to the pod's image, configuration and secrets\nExit code 137 means the container was killed: check its memory limit and liveness probe
    ELSE IF    $verdict == 'image_pull'
        ${severity}    ${problem}    ${hint}=    Set Variable    2    cannot pull its image    ${describe}
        ${next}=    Set Variable
        ...    Check that the image name and tag exist in the registry\nCheck the pod's imagePullSecrets and the registry credentials\nCheck that the nodes can reach the registry
    ELSE IF    $verdict == 'container_error'
        ${severity}    ${problem}    ${hint}=    Set Variable    2    cannot start its containers    ${describe}
        ${next}=    Set Variable
        ...    Check that the ConfigMaps and Secrets the pod refers to exist and hold the keys it uses\nRead the exact error in the pod's events
    ELSE IF    $verdict == 'failed'
        ${severity}    ${problem}    ${hint}=    Set Variable    3    failed    ${describe}
        ${next}=    Set Variable
        ...    Read the pod's status reason: Evicted points at node pressure, OOMKilled at memory limits\nRead its logs; if a Job owns it, check the Job's backoff limit
    ELSE IF    $verdict == 'pending'
        ${severity}    ${problem}    ${hint}=    Set Variable    3    is stuck pending    ${describe}
        ${next}=    Set Variable
        ...    Read the scheduler's events on the pod\nCheck node capacity, taints, node selectors and affinity\nCheck that the PersistentVolumeClaims the pod needs are bound
    ELSE IF    $verdict == 'restarts'
        ${severity}    ${problem}    ${hint}=    Set Variable    3    restarts often    ${logs}
        ${next}=    Set Variable
        ...    Read the logs of the previous container instance for why it stopped\nCheck memory limits (exit code 137) and liveness probe settings
    ELSE IF    $verdict == 'not_ready'
        ${severity}    ${problem}    ${hint}=    Set Variable    3    is not ready    ${describe}
        ${next}=    Set Variable
        ...    Read the readiness probe failures in the pod's events\nCheck the dependencies the readiness probe tests (databases, other services)
    ELSE
        ${severity}    ${problem}    ${hint}=    Set Variable    3    has a problem (${verdict})    ${describe}
        ${next}=    Set Variable    Describe the pod and read its events
    END
    RW.Core.Add Issue
    ...    severity=${severity}
    ...    title=Pod `${pod}` in namespace `${NAMESPACE}` ${problem}
    ...    expected=Pod `${pod}` in namespace `${NAMESPACE}` is running and ready, or has completed
    ...    actual=${detail}
    ...    reproduce_hint=${hint}
    ...    next_steps=${next}
    ...    details=pod: ${pod}\nnamespace: ${NAMESPACE}\ncontext: ${CONTEXT}\nfinding: ${verdict}: ${detail}

Raise Deployment Issue
    [Documentation]    One issue for a deployment short of replicas or with a stuck rollout.
    [Arguments]    ${verdict}    ${deployment}    ${replicas}    ${detail}
    IF    $verdict == 'unavailable'
        ${severity}    ${problem}=    Set Variable    1    has no available replicas
        ${hint}=    Set Variable    ${KUBERNETES_DISTRIBUTION_BINARY} describe deployment ${deployment} ${SCOPE}
    ELSE IF    $verdict == 'rollout_stuck'
        ${severity}    ${problem}=    Set Variable    3    has a stuck rollout
        ${hint}=    Set Variable
        ...    ${KUBERNETES_DISTRIBUTION_BINARY} rollout status deployment/${deployment} ${SCOPE} --timeout=10s
    ELSE
        ${severity}    ${problem}=    Set Variable    3    is short of available replicas (${replicas})
        ${hint}=    Set Variable    ${KUBERNETES_DISTRIBUTION_BINARY} describe deployment ${deployment} ${SCOPE}
    END
    RW.Core.Add Issue
    ...    severity=${severity}
    ...    title=Deployment `${deployment}` in namespace `${NAMESPACE}` ${problem}
    ...    expected=All desired replicas of deployment `${deployment}` are available and its rollout completes
    ...    actual=${detail}
    ...    reproduce_hint=${hint}
    ...    next_steps=Look at the deployment's pods for crash loops, image pull errors or pending scheduling (task Check Pod Health in Namespace)\nCompare the current and previous ReplicaSets: a bad rollout can be undone with `${KUBERNETES_DISTRIBUTION_BINARY} rollout undo deployment/${deployment}`\nCheck resource quotas of the namespace when new pods are not created
    ...    details=deployment: ${deployment}\nnamespace: ${NAMESPACE}\navailable/desired: ${replicas}\nfinding: ${verdict}: ${detail}

Report Rows
    [Documentation]    Adds the rows about `kind` objects to the report, problems first.
    [Arguments]    ${rows}    ${kind}    ${plural}
    # The kind is a fixed word from this file, so it can be written into the expression.
    ${mine}=    Evaluate    sorted([r for r in $rows if r[1] == '${kind}'], key=lambda r: (r[0] == 'ok', r[2]))
    ${count}=    Get Length    ${mine}
    ${lines}=    Evaluate    '\\n'.join('%-16s %-40s %s' % (r[0], r[2], r[4]) for r in $mine)
    RW.Core.Add Pre To Report    ${count} ${plural} in namespace `${NAMESPACE}`:\n${lines}

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
    ...    description=Restarts of one container, the last within CONTAINER_RESTART_AGE, that raise an issue.
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
    ...    description=Warning events for one object and reason within EVENT_AGE that raise an issue.
    ...    example=5
    ...    default=3
    ${CONTEXT_FLAG}=    Evaluate    '--context ' + $CONTEXT if $CONTEXT else ''
    ${SCOPE}=    Evaluate    ('--namespace %s %s' % ($NAMESPACE, $CONTEXT_FLAG)).strip()
    ${READ_ERROR_CAUSES}=    Create Dictionary
    ...    no_binary=${KUBERNETES_DISTRIBUTION_BINARY} is not installed on the runner
    ...    bad_kubeconfig=the kubeconfig or its context is unusable
    ...    unreachable=the Kubernetes API server did not answer
    ...    unauthorized=the API server rejected the credentials
    ...    forbidden=access is forbidden
    ...    not_found=it was not found
    ...    bad_output=the output was unreadable
    ...    failed=${KUBERNETES_DISTRIBUTION_BINARY} failed
    ${READ_ERROR_NEXT_STEPS}=    Create Dictionary
    ...    no_binary=Install ${KUBERNETES_DISTRIBUTION_BINARY} in /usr/local/bin or /usr/bin on the runner, or set KUBERNETES_DISTRIBUTION_BINARY to the tool that is there
    ...    bad_kubeconfig=Check that the kubeconfig secret holds a valid kubeconfig\nCheck that it has a context named `${CONTEXT}`
    ...    unreachable=Check that the API server address in the kubeconfig is right and reachable from the runner (network, VPN, firewall)\nCheck that the cluster is up
    ...    unauthorized=Renew the credentials in the kubeconfig secret (expired token or certificate)\nCheck that the cloud login the kubeconfig uses works on the runner
    ...    forbidden=Grant the kubeconfig's identity get and list on pods, deployments and events in namespace `${NAMESPACE}` (a read-only Role is enough)
    ...    not_found=Check that the resource types exist on this cluster
    ...    bad_output=Run the reproduce command by hand and check what it prints
    ...    failed=Run the reproduce command by hand and read its error
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
    Set Suite Variable    ${CONTEXT_FLAG}
    Set Suite Variable    ${SCOPE}
    Set Suite Variable    ${READ_ERROR_CAUSES}
    Set Suite Variable    ${READ_ERROR_NEXT_STEPS}
