*** Settings ***
Documentation       Measures the availability of one Kubernetes deployment: available replicas
...                 divided by desired replicas, 0 when its rollout is stuck (Progressing=False,
...                 e.g. ProgressDeadlineExceeded) or the deployment cannot be read, 1 when it
...                 is scaled to zero on purpose.
Metadata            Author    Steward
Metadata            Display Name    Kubernetes Deployment Health
Metadata            Supports    Kubernetes    AKS    EKS    GKE    OpenShift
Library             RW.Core
Library             RW.CLI
Suite Setup         Suite Initialization


*** Tasks ***
Measure Availability of Deployment `${DEPLOYMENT_NAME}`
    [Documentation]    Reads the deployment once and pushes available/desired replicas (0 for a
    ...    stuck rollout), with the available and desired counts as sub-metrics.
    [Tags]    access:read-only    data:metrics    kubernetes
    ${rsp}=    RW.CLI.Run Bash File
    ...    bash_file=deployment_health.sh
    ...    cmd_override=./deployment_health.sh deployment
    ...    env=${env}
    ...    secret_file__kubeconfig=${kubeconfig}
    ...    include_in_history=false
    ...    timeout_seconds=60
    ${rows}=    Evaluate    [l.split('\\t') for l in $rsp.stdout.splitlines() if l.count('\\t') == 4]
    ${errors}=    Evaluate    [r for r in $rows if r[0] == 'error']
    ${replicas}=    Evaluate
    ...    next((r for r in $rows if r[0] in ('available', 'degraded', 'unavailable', 'scaled_to_zero')), None)
    IF    $errors or $replicas is None or $rsp.returncode != 0
        ${why}=    Evaluate    '\\n'.join('%s: %s (%s)' % (r[1], r[4], r[2]) for r in $errors) or $rsp.stderr
        RW.Core.Add Pre To Report
        ...    Deployment `${DEPLOYMENT_NAME}` in namespace `${NAMESPACE}` could not be read, so its availability is unknown and counts as 0:\n${why}
        RW.Core.Push Metric    0
    ELSE
        ${stuck}=    Evaluate    next((r for r in $rows if r[0] == 'rollout_stuck'), None)
        ${available}    ${desired}=    Evaluate    [int(n) for n in $replicas[3].split('/')]
        ${score}=    Evaluate    0 if $stuck else (round($available / $desired, 4) if $desired else 1)
        ${rollout}=    Evaluate    next((r[4] for r in $rows if r[0].startswith('rollout_')), '')
        RW.Core.Add Pre To Report
        ...    Deployment `${DEPLOYMENT_NAME}`: ${replicas}[4]; rollout: ${rollout} (score ${score})
        RW.Core.Push Metric    ${available}    sub_name=available_replicas
        RW.Core.Push Metric    ${desired}    sub_name=desired_replicas
        RW.Core.Push Metric    ${score}
    END


*** Keywords ***
Suite Initialization
    ${kubeconfig}=    RW.Core.Import Secret    kubeconfig
    ...    type=string
    ...    description=A kubeconfig with read access to the deployment's namespace (get and list on deployments).
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
    ${env}=    Create Dictionary
    ...    KUBECONFIG=./kubeconfig
    ...    DEPLOYMENT_NAME=${DEPLOYMENT_NAME}
    ...    NAMESPACE=${NAMESPACE}
    ...    CONTEXT=${CONTEXT}
    ...    KUBERNETES_DISTRIBUTION_BINARY=${KUBERNETES_DISTRIBUTION_BINARY}
    Set Suite Variable    ${env}
