*** Settings ***
Documentation       Measures whether HTTP endpoints answer with an accepted status code within
...                 the target latency. The value is the fraction of healthy endpoints: 1 when
...                 every endpoint is healthy, 0 when none is.
Metadata            Author    Steward
Metadata            Display Name    HTTP Endpoint Health
Metadata            Supports    HTTP    HTTPS
Library             RW.Core
Library             RW.CLI
Suite Setup         Suite Initialization


*** Tasks ***
Measure HTTP Endpoint Health
    [Documentation]    Probes every URL once and pushes the share of healthy endpoints, with the
    ...    number of healthy endpoints and the slowest response time as sub-metrics.
    [Tags]    access:read-only    data:metrics    http
    ${rsp}=    RW.CLI.Run Bash File
    ...    bash_file=probe_endpoints.sh
    ...    env=${env}
    ...    include_in_history=false
    ...    timeout_seconds=${SCRIPT_TIMEOUT}
    ${rows}=    Evaluate    [l.split('\\t') for l in $rsp.stdout.splitlines() if l.count('\\t') == 5]
    ${total}=    Get Length    ${rows}
    # RETURN is only allowed in keywords, so the no-endpoint case is an IF/ELSE.
    IF    ${total} == 0
        RW.Core.Add Pre To Report    No endpoint was probed. URLS=${URLS}\n${rsp.stderr}
        RW.Core.Push Metric    0
    ELSE
        ${healthy}=    Evaluate    sum(1 for r in $rows if r[0] == 'ok')
        ${slowest}=    Evaluate    max(float(r[3] or 0) for r in $rows)
        ${score}=    Evaluate    round($healthy / $total, 4)
        RW.Core.Add Pre To Report    ${healthy} of ${total} endpoints healthy (slowest answer ${slowest}s)
        RW.Core.Push Metric    ${healthy}    sub_name=healthy_endpoints
        RW.Core.Push Metric    ${slowest}    sub_name=slowest_seconds
        RW.Core.Push Metric    ${score}
    END


*** Keywords ***
Suite Initialization
    ${URLS}=    RW.Core.Import User Variable    URLS
    ...    type=string
    ...    description=URLs to probe, separated by commas.
    ...    example=https://example.com/healthz,http://10.0.0.5:8080/ready
    ${ACCEPTABLE_RESPONSE_CODES}=    RW.Core.Import User Variable    ACCEPTABLE_RESPONSE_CODES
    ...    type=string
    ...    description=HTTP status codes that count as healthy, separated by commas.
    ...    example=200,204
    ...    default=200,201,202,204,301,302,304
    ${TARGET_LATENCY}=    RW.Core.Import User Variable    TARGET_LATENCY
    ...    type=string
    ...    description=Slowest acceptable answer, in seconds.
    ...    example=0.5
    ...    default=1.0
    ${REQUEST_TIMEOUT}=    RW.Core.Import User Variable    REQUEST_TIMEOUT
    ...    type=string
    ...    description=Seconds before a request is abandoned.
    ...    example=10
    ...    default=10
    ${VERIFY_TLS}=    RW.Core.Import User Variable    VERIFY_TLS
    ...    type=string
    ...    description=Whether HTTPS certificates must be trusted (true or false).
    ...    enum=[true,false]
    ...    default=true
    ${SCRIPT_TIMEOUT}=    Evaluate    int(float($REQUEST_TIMEOUT)) * (len($URLS.split(',')) + 1) + 10
    ${env}=    Create Dictionary
    ...    URLS=${URLS}
    ...    ACCEPTABLE_RESPONSE_CODES=${ACCEPTABLE_RESPONSE_CODES}
    ...    TARGET_LATENCY=${TARGET_LATENCY}
    ...    REQUEST_TIMEOUT=${REQUEST_TIMEOUT}
    ...    VERIFY_TLS=${VERIFY_TLS}
    Set Suite Variable    ${env}
    Set Suite Variable    ${SCRIPT_TIMEOUT}
