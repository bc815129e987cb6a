*** Settings ***
Documentation       Measures how long the TLS certificates of a set of endpoints stay valid.
...                 The value is the fraction of endpoints whose certificate is reachable,
...                 valid for at least MIN_DAYS_VALID more days and, when VERIFY_CHAIN is
...                 true, trusted.
Metadata            Author    Steward
Metadata            Display Name    TLS Certificate Expiry
Metadata            Supports    TLS    HTTPS
Library             RW.Core
Library             RW.CLI
Suite Setup         Suite Initialization


*** Tasks ***
Measure TLS Certificate Validity
    [Documentation]    Fetches every endpoint's certificate and pushes the share of healthy
    ...    certificates, with the fewest days any certificate has left as a sub-metric.
    [Tags]    access:read-only    data:config    tls
    ${rsp}=    RW.CLI.Run Bash File
    ...    bash_file=probe_certificates.sh
    ...    env=${env}
    ...    include_in_history=false
    ...    timeout_seconds=${SCRIPT_TIMEOUT}
    ${rows}=    Evaluate    [l.split('\\t') for l in $rsp.stdout.splitlines() if l.count('\\t') == 8]
    ${total}=    Get Length    ${rows}
    # RETURN is only allowed in keywords, so the no-result case is an IF/ELSE.
    IF    ${total} == 0
        RW.Core.Add Pre To Report    No endpoint was checked. TLS_ENDPOINTS=${TLS_ENDPOINTS}\n${rsp.stderr}
        RW.Core.Push Metric    0
    ELSE
        ${verify}=    Evaluate    $VERIFY_CHAIN.strip().lower() in ('true', 'yes', '1')
        ${healthy}=    Set Variable    ${0}
        ${fewest}=    Set Variable    ${None}
        FOR    ${row}    IN    @{rows}
            IF    '${row}[1]' != 'yes'    CONTINUE
            ${days}=    Convert To Integer    ${row}[2]
            ${fewest}=    Evaluate    $days if $fewest is None else min($fewest, $days)
            ${trusted}=    Evaluate    $row[4] == '0' or not $verify
            IF    ${days} >= ${MIN_DAYS_VALID} and ${trusted}
                ${healthy}=    Evaluate    $healthy + 1
            END
        END
        ${fewest}=    Evaluate    -1 if $fewest is None else $fewest
        ${score}=    Evaluate    round($healthy / $total, 4)
        RW.Core.Add Pre To Report    ${healthy} of ${total} certificates healthy; fewest days left: ${fewest}
        RW.Core.Push Metric    ${fewest}    sub_name=min_days_remaining
        RW.Core.Push Metric    ${score}
    END


*** Keywords ***
Suite Initialization
    ${TLS_ENDPOINTS}=    RW.Core.Import User Variable    TLS_ENDPOINTS
    ...    type=string
    ...    description=Endpoints as host:port, separated by commas (port 443 when omitted).
    ...    example=example.com:443,10.0.0.7:8443
    ${MIN_DAYS_VALID}=    RW.Core.Import User Variable    MIN_DAYS_VALID
    ...    type=string
    ...    description=Certificates valid for fewer days than this count as unhealthy.
    ...    example=30
    ...    default=21
    ${VERIFY_CHAIN}=    RW.Core.Import User Variable    VERIFY_CHAIN
    ...    type=string
    ...    description=Whether an untrusted chain or a host-name mismatch makes a certificate unhealthy.
    ...    enum=[true,false]
    ...    default=true
    ${CONNECT_TIMEOUT}=    RW.Core.Import User Variable    CONNECT_TIMEOUT
    ...    type=string
    ...    description=Seconds to wait for each TLS handshake.
    ...    example=10
    ...    default=10
    ${SCRIPT_TIMEOUT}=    Evaluate    int(float($CONNECT_TIMEOUT)) * (len($TLS_ENDPOINTS.split(',')) + 1) + 10
    ${env}=    Create Dictionary
    ...    TLS_ENDPOINTS=${TLS_ENDPOINTS}
    ...    CONNECT_TIMEOUT=${CONNECT_TIMEOUT}
    Set Suite Variable    ${env}
    Set Suite Variable    ${SCRIPT_TIMEOUT}
