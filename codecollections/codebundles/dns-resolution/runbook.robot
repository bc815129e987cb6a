*** Settings ***
Documentation       Troubleshoots name resolution: raises an issue for each host name that does
...                 not resolve, resolves without an expected address, or resolves slowly.
Metadata            Author    Steward
Metadata            Display Name    DNS Resolution
Metadata            Supports    DNS
Library             RW.Core
Library             RW.CLI
Suite Setup         Suite Initialization


*** Tasks ***
Check DNS Resolution of `${HOSTNAMES}`
    [Documentation]    Resolves every name and raises an issue for each failed, unexpected or
    ...    slow answer.
    [Tags]    access:read-only    data:config    dns
    ${rsp}=    RW.CLI.Run Bash File
    ...    bash_file=resolve_names.sh
    ...    env=${env}
    ...    timeout_seconds=${SCRIPT_TIMEOUT}
    ${rows}=    Evaluate    [l.split('\\t') for l in $rsp.stdout.splitlines() if l.count('\\t') == 5]
    FOR    ${row}    IN    @{rows}
        ${name}    ${verdict}    ${ms}    ${addresses}    ${resolver}    ${detail}=    Set Variable    @{row}
        IF    '${verdict}' == 'failed'
            RW.Core.Add Issue
            ...    severity=2
            ...    title=Host name `${name}` does not resolve
            ...    expected=`${name}` resolves to at least one address (resolver: ${resolver})
            ...    actual=${detail}
            ...    reproduce_hint=getent ahosts ${name}
            ...    next_steps=Check that the DNS record for `${name}` exists and is spelled as the clients use it\nCheck the resolver configuration (/etc/resolv.conf) and that the resolver is reachable
            ...    details=name: ${name}\nresolver: ${resolver}\nresult: ${detail}
        ELSE IF    '${verdict}' == 'unexpected'
            RW.Core.Add Issue
            ...    severity=2
            ...    title=Host name `${name}` resolves to unexpected addresses
            ...    expected=${detail.replace(' not in the answer', '')} in the answer for `${name}`
            ...    actual=`${name}` resolves to ${addresses}
            ...    reproduce_hint=getent ahosts ${name}
            ...    next_steps=Compare the DNS record of `${name}` with where the service runs now\nCheck for stale entries in /etc/hosts or a split-horizon resolver answering differently
            ...    details=name: ${name}\naddresses: ${addresses}\n${detail}
        ELSE IF    '${verdict}' == 'slow'
            RW.Core.Add Issue
            ...    severity=4
            ...    title=Resolving `${name}` is slow
            ...    expected=`${name}` resolves within ${MAX_LATENCY_MS} ms
            ...    actual=The lookup took ${ms} ms
            ...    reproduce_hint=time getent ahosts ${name}
            ...    next_steps=Check the latency to the resolver and whether it caches answers\nConsider a local caching resolver on this host
            ...    details=name: ${name}\nresolver: ${resolver}\nlookup: ${ms} ms
        END
    END
    ${summary}=    Evaluate    '\\n'.join('%s -> %s (%s, %s ms via %s) %s' % (r[0], r[3] or '-', r[1], r[2], r[4], r[5]) for r in $rows) or 'no name was resolved'
    RW.Core.Add Pre To Report    ${summary}
    ${history}=    RW.CLI.Pop Shell History
    RW.Core.Add Pre To Report    Commands Used: ${history}


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
