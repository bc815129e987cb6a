*** Settings ***
Documentation       Troubleshoots HTTP endpoints: finds the ones that are unreachable, answer
...                 with an unexpected status code or answer too slowly, and raises an issue for
...                 each with what was expected, what was seen and what to do next.
Metadata            Author    Steward
Metadata            Display Name    HTTP Endpoint Health
Metadata            Supports    HTTP    HTTPS
Library             RW.Core
Library             RW.CLI
Suite Setup         Suite Initialization


*** Tasks ***
Check HTTP Endpoint Availability and Latency
    [Documentation]    Probes every URL and raises an issue for each that is unreachable,
    ...    answers with a status code outside the accepted list, or is slower than the target.
    [Tags]    access:read-only    data:metrics    http
    ${rsp}=    RW.CLI.Run Bash File
    ...    bash_file=probe_endpoints.sh
    ...    env=${env}
    ...    timeout_seconds=${SCRIPT_TIMEOUT}
    ${rows}=    Evaluate    [l.split('\\t') for l in $rsp.stdout.splitlines() if l.count('\\t') == 5]
    FOR    ${row}    IN    @{rows}
        ${verdict}    ${url}    ${code}    ${seconds}    ${curl_exit}    ${detail}=    Set Variable    @{row}
        IF    '${verdict}' == 'unreachable'
            RW.Core.Add Issue
            ...    severity=2
            ...    title=HTTP endpoint `${url}` is unreachable
            ...    expected=`${url}` answers HTTP requests within ${REQUEST_TIMEOUT}s
            ...    actual=curl failed with exit code ${curl_exit}: ${detail}
            ...    reproduce_hint=curl -v --max-time ${REQUEST_TIMEOUT} ${url}
            ...    next_steps=Check that the service behind `${url}` is running and listening\nCheck name resolution and firewall rules between this runner and the host\nLook at the service's recent logs and restarts
            ...    details=URL: ${url}\nresult: ${detail}
        ELSE IF    '${verdict}' == 'bad_status'
            ${severity}=    Evaluate    2 if $code.startswith('5') else 3
            RW.Core.Add Issue
            ...    severity=${severity}
            ...    title=HTTP endpoint `${url}` answered ${code}
            ...    expected=`${url}` answers with one of ${ACCEPTABLE_RESPONSE_CODES}
            ...    actual=`${url}` answered ${code} in ${seconds}s
            ...    reproduce_hint=curl -i --max-time ${REQUEST_TIMEOUT} ${url}
            ...    next_steps=Read the response body and the service's logs for the cause of the ${code}\nCheck recent deployments or configuration changes of the service behind `${url}`
            ...    details=URL: ${url}\nstatus: ${code}\nelapsed: ${seconds}s
        ELSE IF    '${verdict}' == 'slow'
            RW.Core.Add Issue
            ...    severity=3
            ...    title=HTTP endpoint `${url}` is slow
            ...    expected=`${url}` answers within ${TARGET_LATENCY}s
            ...    actual=`${url}` answered ${code} after ${seconds}s
            ...    reproduce_hint=curl -o /dev/null -w '%{time_total}' ${url}
            ...    next_steps=Check the load and resource use of the service behind `${url}`\nCheck the latency of its dependencies (databases, upstream APIs)
            ...    details=URL: ${url}\nelapsed: ${seconds}s\ntarget: ${TARGET_LATENCY}s
        END
    END
    ${summary}=    Evaluate    '\\n'.join('%-12s %s %s %ss %s' % (r[0], r[2], r[1], r[3], r[5]) for r in $rows) or 'no URL was probed'
    RW.Core.Add Pre To Report    ${summary}
    ${history}=    RW.CLI.Pop Shell History
    RW.Core.Add Pre To Report    Commands Used: ${history}

Inspect HTTP Response Headers
    [Documentation]    Records the status line and headers each URL answers with.
    [Tags]    access:read-only    data:config    http
    ${rsp}=    RW.CLI.Run Bash File
    ...    bash_file=show_headers.sh
    ...    env=${env}
    ...    timeout_seconds=${SCRIPT_TIMEOUT}
    RW.Core.Add Pre To Report    ${rsp.stdout}


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
    Set Suite Variable    ${URLS}
    Set Suite Variable    ${ACCEPTABLE_RESPONSE_CODES}
    Set Suite Variable    ${TARGET_LATENCY}
    Set Suite Variable    ${REQUEST_TIMEOUT}
