*** Settings ***
Documentation       Troubleshoots one Kubernetes deployment: unavailable replicas, a stuck or
...                 paused rollout, pods that crash-loop, cannot pull their image, restart or are
...                 not ready, and repeated warning events about it, its ReplicaSets and pods.
...                 Each finding is an issue with the kubectl command to see it.
Metadata            Author    Steward
Metadata            Display Name    Kubernetes Deployment Health
Metadata            Supports    Kubernetes    AKS    EKS    GKE    OpenShift
Library             RW.Core
Library             RW.CLI
Suite Setup         Suite Initialization


*** Tasks ***
Check Replica Availability of Deployment `${DEPLOYMENT_NAME}`
    [Documentation]    Raises an issue when fewer replicas are available than desired: severity
    ...    1 (an outage) when none is, 3 otherwise.
    [Tags]    access:read-only    data:config    kubernetes    deployments
    ${rows}=    Run Deployment Check    deployment
    FOR    ${row}    IN    @{rows}
        IF    $row[0] in ('unavailable', 'degraded')
            ${severity}=    Evaluate    1 if $row[0] == 'unavailable' else 3
            ${problem}=    Evaluate    'has no available replicas' if $row[0] == 'unavailable' else 'has only %s replicas available' % $row[3]
            RW.Core.Add Issue
            ...    severity=${severity}
            ...    title=Deployment `${DEPLOYMENT_NAME}` in namespace `${NAMESPACE}` ${problem}
            ...    expected=All desired replicas of deployment `${DEPLOYMENT_NAME}` are available
            ...    actual=${row}[4]
            ...    reproduce_hint=${KUBERNETES_DISTRIBUTION_BINARY} get deployment ${DEPLOYMENT_NAME} ${SCOPE} -o wide
            ...    next_steps=Look at the deployment's pods for crash loops, image pull errors or pending scheduling (task Inspect Pods of Deployment)\nCheck the deployment's warning events and the namespace's resource quota\nCheck whether a recent rollout started this
            ...    details=deployment: ${DEPLOYMENT_NAME}\nnamespace: ${NAMESPACE}\navailable/desired: ${row}[3]
        END
    END
    Report Rows    ${rows}    the deployment
    ${history}=    RW.CLI.Pop Shell History
    RW.Core.Add Pre To Report    Commands Used: ${history}

Check Rollout Status of Deployment `${DEPLOYMENT_NAME}`
    [Documentation]    Raises an issue when the rollout stopped progressing (Progressing=False,
    ...    e.g. ProgressDeadlineExceeded), and a note when it is paused.
    [Tags]    access:read-only    data:config    kubernetes    deployments
    ${rows}=    Run Deployment Check    deployment
    FOR    ${row}    IN    @{rows}
        IF    $row[0] == 'rollout_stuck'
            RW.Core.Add Issue
            ...    severity=2
            ...    title=Rollout of deployment `${DEPLOYMENT_NAME}` in namespace `${NAMESPACE}` is stuck (${row}[3])
            ...    expected=The rollout of deployment `${DEPLOYMENT_NAME}` completes within its progress deadline
            ...    actual=${row}[4]
            ...    reproduce_hint=${KUBERNETES_DISTRIBUTION_BINARY} rollout status deployment/${DEPLOYMENT_NAME} ${SCOPE} --timeout=10s
            ...    next_steps=Find why the new ReplicaSet's pods do not become ready (task Inspect Pods of Deployment)\nCompare the new pod template with the previous revision: ${KUBERNETES_DISTRIBUTION_BINARY} rollout history deployment/${DEPLOYMENT_NAME} ${SCOPE}\nIf the new version is at fault, roll back with ${KUBERNETES_DISTRIBUTION_BINARY} rollout undo deployment/${DEPLOYMENT_NAME} ${SCOPE}
            ...    details=deployment: ${DEPLOYMENT_NAME}\nnamespace: ${NAMESPACE}\ncondition: ${row}[4]
        ELSE IF    $row[0] == 'rollout_paused'
            RW.Core.Add Issue
            ...    severity=4
            ...    title=Rollout of deployment `${DEPLOYMENT_NAME}` in namespace `${NAMESPACE}` is paused
            ...    expected=Deployment `${DEPLOYMENT_NAME}` rolls out changes to its pod template
            ...    actual=${row}[4]
            ...    reproduce_hint=${KUBERNETES_DISTRIBUTION_BINARY} get deployment ${DEPLOYMENT_NAME} ${SCOPE} -o jsonpath={.spec.paused}
            ...    next_steps=Check whether the pause is intended (a canary or a maintenance)\nResume it with ${KUBERNETES_DISTRIBUTION_BINARY} rollout resume deployment/${DEPLOYMENT_NAME} ${SCOPE} when it is not
            ...    details=deployment: ${DEPLOYMENT_NAME}\nnamespace: ${NAMESPACE}
        END
    END
    Report Rows    ${rows}    the deployment
    ${history}=    RW.CLI.Pop Shell History
    RW.Core.Add Pre To Report    Commands Used: ${history}

Inspect Pods of Deployment `${DEPLOYMENT_NAME}`
    [Documentation]    Raises an issue for each pod of the deployment that crash-loops, cannot
    ...    pull its image or start, failed, is pending or not ready for more than five minutes,
    ...    or restarted at least CONTAINER_RESTART_THRESHOLD times within CONTAINER_RESTART_AGE.
    [Tags]    access:read-only    data:config    kubernetes    pods
    ${rows}=    Run Deployment Check    pods
    FOR    ${row}    IN    @{rows}
        IF    $row[1] == 'Pod' and $row[0] != 'ok'
            Raise Pod Issue    ${row}[0]    ${row}[2]    ${row}[4]
        END
    END
    Report Rows    ${rows}    its pods
    ${history}=    RW.CLI.Pop Shell History
    RW.Core.Add Pre To Report    Commands Used: ${history}

Inspect Warning Events of Deployment `${DEPLOYMENT_NAME}`
    [Documentation]    Groups the warning events of the last EVENT_AGE about the deployment, its
    ...    ReplicaSets and its pods by object and reason, raises an issue for each group seen at
    ...    least EVENT_THRESHOLD times and lists all of them in the report.
    [Tags]    access:read-only    data:logs    kubernetes    events
    ${rows}=    Run Deployment Check    events
    FOR    ${row}    IN    @{rows}
        IF    $row[0] == 'warning_events'
            ${reason}=    Evaluate    $row[4].split(':', 1)[0]
            ${subject}=    Evaluate
            ...    '%s `%s`' % ($row[1], $row[2]) + ('' if $row[1] == 'Deployment' else ' of deployment `%s`' % $DEPLOYMENT_NAME)
            RW.Core.Add Issue
            ...    severity=3
            ...    title=${subject} in namespace `${NAMESPACE}` has ${row}[3] `${reason}` warning events
            ...    expected=Fewer than ${EVENT_THRESHOLD} `${reason}` warning events for ${row}[1] `${row}[2]` within ${EVENT_AGE}
            ...    actual=${row}[3] events within ${EVENT_AGE}: ${row}[4]
            ...    reproduce_hint=${KUBERNETES_DISTRIBUTION_BINARY} get events ${SCOPE} --field-selector type=Warning,involvedObject.kind=${row}[1],involvedObject.name=${row}[2]
            ...    next_steps=Read the events' messages for the cause of `${reason}`\nDescribe ${row}[1] `${row}[2]` to see its current state next to its events
            ...    details=object: ${row}[1]/${row}[2]\ndeployment: ${DEPLOYMENT_NAME}\nnamespace: ${NAMESPACE}\nevents: ${row}[4]
        END
    END
    ${listing}=    Evaluate
    ...    '\\n'.join('%5s %s/%s %s' % (r[3], r[1], r[2], r[4]) for r in $rows if r[0].startswith('warning_events')) or 'none'
    RW.Core.Add Pre To Report    Warning events within ${EVENT_AGE} (count, object, reason: latest message):\n${listing}
    ${history}=    RW.CLI.Pop Shell History
    RW.Core.Add Pre To Report    Commands Used: ${history}


*** Keywords ***
Run Deployment Check
    [Documentation]    Runs deployment_health.sh for `what` and returns its rows; read errors
    ...    become issues here.
    [Arguments]    ${what}
    ${rsp}=    RW.CLI.Run Bash File
    ...    bash_file=deployment_health.sh
    ...    cmd_override=./deployment_health.sh ${what}
    ...    env=${env}
    ...    secret_file__kubeconfig=${kubeconfig}
    ...    timeout_seconds=120
    ${rows}=    Evaluate    [l.split('\\t') for l in $rsp.stdout.splitlines() if l.count('\\t') == 4]
    IF    $rsp.returncode != 0
        RW.Core.Add Issue
        ...    severity=3
        ...    title=The check of deployment `${DEPLOYMENT_NAME}` in namespace `${NAMESPACE}` did not finish
        ...    expected=deployment_health.sh reads deployment `${DEPLOYMENT_NAME}` and exits 0
        ...    actual=It exited with code ${rsp.returncode}: ${rsp.stderr}
        ...    reproduce_hint=DEPLOYMENT_NAME=${DEPLOYMENT_NAME} NAMESPACE=${NAMESPACE} CONTEXT=${CONTEXT} ./deployment_health.sh ${what}
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
        IF    $row[1] == 'deployment' and $row[2] == 'not_found'
            RW.Core.Add Issue
            ...    severity=3
            ...    title=Deployment `${DEPLOYMENT_NAME}` does not exist in namespace `${NAMESPACE}`
            ...    expected=Deployment `${DEPLOYMENT_NAME}` exists in namespace `${NAMESPACE}` of context `${CONTEXT}`
            ...    actual=${row}[4]
            ...    reproduce_hint=${KUBERNETES_DISTRIBUTION_BINARY} get deployments ${SCOPE}
            ...    next_steps=Check the deployment name, the namespace and the context this check uses\nIf the deployment was removed or renamed on purpose, remove this check or run discovery again
            ...    details=${row}[4]
            CONTINUE
        END
        ${severity}=    Evaluate    2 if $row[2] in ('unreachable', 'unauthorized') else 3
        ${cause}=    Evaluate    $READ_ERROR_CAUSES.get($row[2], $READ_ERROR_CAUSES['failed'])
        ${next}=    Evaluate    $READ_ERROR_NEXT_STEPS.get($row[2], $READ_ERROR_NEXT_STEPS['failed'])
        RW.Core.Add Issue
        ...    severity=${severity}
        ...    title=Cannot read the ${row}[1] of deployment `${DEPLOYMENT_NAME}` in namespace `${NAMESPACE}`: ${cause}
        ...    expected=The kubeconfig secret lets ${KUBERNETES_DISTRIBUTION_BINARY} read ${row}[1] in namespace `${NAMESPACE}` of context `${CONTEXT}`
        ...    actual=${KUBERNETES_DISTRIBUTION_BINARY} exited with code ${row}[3]: ${row}[4]
        ...    reproduce_hint=${KUBERNETES_DISTRIBUTION_BINARY} get deployment ${DEPLOYMENT_NAME} ${SCOPE}
        ...    next_steps=${next}
        ...    details=cause: ${row}[2]\nmessage: ${row}[4]
    END

Raise Pod Issue
    [Documentation]    One issue for a pod with a problem; the verdicts are deployment_health.py's.
    [Arguments]    ${verdict}    ${pod}    ${detail}
    ${logs}=    Set Variable
    ...    ${KUBERNETES_DISTRIBUTION_BINARY} logs pod/${pod} ${SCOPE} --all-containers --previous --tail=100
    ${describe}=    Set Variable    ${KUBERNETES_DISTRIBUTION_BINARY} describe pod ${pod} ${SCOPE}
    IF    $verdict == 'crashloop'
        ${severity}    ${problem}    ${hint}=    Set Variable    2    is crash-looping    ${logs}
        ${next}=    Set Variable
        ...    Read the previous logs of the crashing container for the error it exits with\nCheck what changed in the deployment's latest revision (image, configuration, secrets)\nExit code 137 means the container was killed: check its memory limit and liveness probe
    ELSE IF    $verdict == 'image_pull'
        ${severity}    ${problem}    ${hint}=    Set Variable    2    cannot pull its image    ${describe}
        ${next}=    Set Variable
        ...    Check that the image name and tag in the deployment exist in the registry\nCheck the imagePullSecrets and the registry credentials\nCheck that the nodes can reach the registry
    ELSE IF    $verdict == 'container_error'
        ${severity}    ${problem}    ${hint}=    Set Variable    2    cannot start its containers    ${describe}
        ${next}=    Set Variable
        ...    Check that the ConfigMaps and Secrets the deployment refers to exist and hold the keys it uses\nRead the exact error in the pod's events
    ELSE IF    $verdict == 'failed'
        ${severity}    ${problem}    ${hint}=    Set Variable    3    failed    ${describe}
        ${next}=    Set Variable
        ...    Read the pod's status reason: Evicted points at node pressure, OOMKilled at memory limits\nRead its logs
    ELSE IF    $verdict == 'pending'
        ${severity}    ${problem}    ${hint}=    Set Variable    3    is stuck pending    ${describe}
        ${next}=    Set Variable
        ...    Read the scheduler's events on the pod\nCheck node capacity against the deployment's resource requests, taints, node selectors and affinity
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
    ...    title=Pod `${pod}` of deployment `${DEPLOYMENT_NAME}` ${problem}
    ...    expected=Pod `${pod}` of deployment `${DEPLOYMENT_NAME}` in namespace `${NAMESPACE}` is running and ready
    ...    actual=${detail}
    ...    reproduce_hint=${hint}
    ...    next_steps=${next}
    ...    details=pod: ${pod}\ndeployment: ${DEPLOYMENT_NAME}\nnamespace: ${NAMESPACE}\ncontext: ${CONTEXT}\nfinding: ${verdict}: ${detail}

Report Rows
    [Documentation]    Adds the rows (problems first) to the report under `heading`.
    [Arguments]    ${rows}    ${heading}
    ${sorted}=    Evaluate    sorted($rows, key=lambda r: (r[0] in ('ok', 'available', 'rollout_complete'), r[1], r[2]))
    ${lines}=    Evaluate    '\\n'.join('%-20s %s/%s: %s' % (r[0], r[1], r[2], r[4]) for r in $sorted) or 'nothing found'
    RW.Core.Add Pre To Report    Deployment `${DEPLOYMENT_NAME}` in namespace `${NAMESPACE}`, ${heading}:\n${lines}

Suite Initialization
    ${kubeconfig}=    RW.Core.Import Secret    kubeconfig
    ...    type=string
    ...    description=A kubeconfig with read access to the deployment's namespace (get and list on deployments, replicasets, pods and events).
    ${DEPLOYMENT_NAME}=    RW.Core.Import User Variable    DEPLOYMENT_NAME
    ...    type=string
    ...    description=The deployment to check.
    ...    example=frontend
    ${NAMESPACE}=    RW.Core.Import User Variable    NAMESPACE
    ...    type=string
    ...    description=The deployment's namespace.
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
    ...    forbidden=Grant the kubeconfig's identity get and list on deployments, replicasets, pods and events in namespace `${NAMESPACE}` (a read-only Role is enough)
    ...    not_found=Check that the resource types exist on this cluster
    ...    bad_output=Run the reproduce command by hand and check what it prints
    ...    failed=Run the reproduce command by hand and read its error
    ${env}=    Create Dictionary
    ...    KUBECONFIG=./kubeconfig
    ...    DEPLOYMENT_NAME=${DEPLOYMENT_NAME}
    ...    NAMESPACE=${NAMESPACE}
    ...    CONTEXT=${CONTEXT}
    ...    KUBERNETES_DISTRIBUTION_BINARY=${KUBERNETES_DISTRIBUTION_BINARY}
    ...    CONTAINER_RESTART_THRESHOLD=${CONTAINER_RESTART_THRESHOLD}
    ...    CONTAINER_RESTART_AGE=${CONTAINER_RESTART_AGE}
    ...    EVENT_AGE=${EVENT_AGE}
    ...    EVENT_THRESHOLD=${EVENT_THRESHOLD}
    Set Suite Variable    ${env}
    Set Suite Variable    ${SCOPE}
    Set Suite Variable    ${READ_ERROR_CAUSES}
    Set Suite Variable    ${READ_ERROR_NEXT_STEPS}
