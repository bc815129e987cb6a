*** Settings ***
Documentation       Measures whether host names resolve, to the expected addresses and quickly
...                 enough. The value is the fraction of names that resolve correctly.
Metadata            Author    Steward
Metadata            Display Name    DNS Resolution
Metadata            Supports    DNS
Library             RW.Core
Library             RW.CLI
Suite Setup         Suite Initialization


*** Tasks ***
Measure DNS Resolution Health
    [Documentation]    Resolves every name once and pushes the share of names that resolved to
    ...    their expected addresses within the latency limit, with the slowest lookup as a
    ...    sub-metric.
    [Tags]    access:read-only    data:metrics    dns
    ${rsp}=    RW.CLI.Run Bash File
    ...    bash_file=resolve_names.sh
    ...    env=${env}
    ...    include_in_history=false
    ...    timeout_seconds=${SCRIPT_TIMEOUT}
    ${rows}=    Evaluate    [l.split('\\t') for l in $rsp.stdout.splitlines() if l.count('\\t') == 5]
    ${total}=    Get Length    ${rows}
    # RETURN is only allowed in keywords, so the no-result case is an IF/ELSE.
    IF    ${total} == 0
        RW.Core.Add Pre To Report    No name was resolved. HOSTNAMES=${HOSTNAMES}\n${rsp.stderr}
        RW.Core.Push Metric    0
    ELSE
        ${good}=    Evaluate    sum(1 for r in $rows if r[1] == 'ok')
        ${slowest}=    Evaluate    max(int(r[2] or 0) for r in $rows)
        ${score}=    Evaluate    round($good / $total, 4)
        RW.Core.Add Pre To Report    ${good} of ${total} names resolved as expected (slowest lookup ${slowest} ms)
        RW.Core.Push Metric    ${slowest}    sub_name=slowest_lookup_ms
        RW.Core.Push Metric    ${score}
    END


*** Keywords ***
Suite Initialization
    ${HOSTNAMES}=    RW.Core.Import User Variable    HOSTNAMES
    ...    type=string
    ...    description=Host names to resolve, separated by commas.
    ...    example=api.internal.example.com,db.internal.example.com
    ${DNS_RESOLVER}=    RW.Core.Import User Variable    DNS_RESOLVER
    ...    type=string
    ...    description=A DNS server to ask (needs dig); empty uses the system resolver.
    ...    example=10.0.0.2
    ...    default=${EMPTY}
    ${EXPECTED_ADDRESSES}=    RW.Core.Import User Variable    EXPECTED_ADDRESSES
    ...    type=string
    ...    description=name=address pairs that must be in the answer, separated by commas.
    ...    example=api.internal.example.com=10.0.0.7
    ...    default=${EMPTY}
    ${MAX_LATENCY_MS}=    RW.Core.Import User Variable    MAX_LATENCY_MS
    ...    type=string
    ...    description=Slowest acceptable lookup, in milliseconds.
    ...    example=200
    ...    default=500
    ${LOOKUP_TIMEOUT}=    RW.Core.Import User Variable    LOOKUP_TIMEOUT
    ...    type=string
    ...    description=Seconds before a lookup is abandoned.
    ...    example=5
    ...    default=5
    ${SCRIPT_TIMEOUT}=    Evaluate    int(float($LOOKUP_TIMEOUT)) * (len($HOSTNAMES.split(',')) + 1) + 10
    ${env}=    Create Dictionary
    ...    HOSTNAMES=${HOSTNAMES}
    ...    DNS_RESOLVER=${DNS_RESOLVER}
    ...    EXPECTED_ADDRESSES=${EXPECTED_ADDRESSES}
    ...    MAX_LATENCY_MS=${MAX_LATENCY_MS}
    ...    LOOKUP_TIMEOUT=${LOOKUP_TIMEOUT}
    Set Suite Variable    ${env}
    Set Suite Variable    ${SCRIPT_TIMEOUT}
