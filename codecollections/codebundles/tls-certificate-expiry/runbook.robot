*** Settings ***
Documentation       Troubleshoots TLS certificates: raises an issue for each endpoint whose
...                 certificate cannot be fetched, has expired, expires soon, or is not trusted
...                 for the host name, with what to do about it.
Metadata            Author    Steward
Metadata            Display Name    TLS Certificate Expiry
Metadata            Supports    TLS    HTTPS
Library             RW.Core
Library             RW.CLI
Suite Setup         Suite Initialization


*** Tasks ***
Check TLS Certificate Expiry and Trust
    [Documentation]    Fetches every endpoint's certificate and raises an issue for each problem
    ...    found: unreachable endpoint, expired or soon-expiring certificate, untrusted chain.
    [Tags]    access:read-only    data:config    tls
    ${rsp}=    RW.CLI.Run Bash File
    ...    bash_file=probe_certificates.sh
    ...    env=${env}
    ...    timeout_seconds=${SCRIPT_TIMEOUT}
    ${rows}=    Evaluate    [l.split('\\t') for l in $rsp.stdout.splitlines() if l.count('\\t') == 8]
    ${verify}=    Evaluate    $VERIFY_CHAIN.strip().lower() in ('true', 'yes', '1')
    FOR    ${row}    IN    @{rows}
        ${endpoint}    ${reachable}    ${days}    ${not_after}    ${code}    ${reason}    ${subject}    ${issuer}    ${detail}=
        ...    Set Variable    @{row}
        IF    '${reachable}' != 'yes'
            RW.Core.Add Issue
            ...    severity=2
            ...    title=TLS endpoint `${endpoint}` presented no certificate
            ...    expected=`${endpoint}` completes a TLS handshake within ${CONNECT_TIMEOUT}s
            ...    actual=${detail}
            ...    reproduce_hint=openssl s_client -connect ${endpoint} </dev/null
            ...    next_steps=Check that the service behind `${endpoint}` is running and serves TLS on that port\nCheck firewall rules between this runner and the host
            ...    details=endpoint: ${endpoint}\nresult: ${detail}
            CONTINUE
        END
        IF    ${days} < 0
            RW.Core.Add Issue
            ...    severity=1
            ...    title=TLS certificate of `${endpoint}` has expired
            ...    expected=The certificate of `${endpoint}` is valid
            ...    actual=It expired on ${not_after}
            ...    reproduce_hint=openssl s_client -connect ${endpoint} </dev/null | openssl x509 -noout -dates
            ...    next_steps=Renew the certificate for `${endpoint}` now and reload the service that serves it\nIf a certificate manager issues it, check why renewal failed
            ...    details=subject: ${subject}\nissuer: ${issuer}\nnot after: ${not_after}
        ELSE IF    ${days} < ${MIN_DAYS_VALID}
            ${severity}=    Evaluate    2 if int($days) < 7 else 3
            RW.Core.Add Issue
            ...    severity=${severity}
            ...    title=TLS certificate of `${endpoint}` expires in ${days} days
            ...    expected=The certificate of `${endpoint}` stays valid for at least ${MIN_DAYS_VALID} days
            ...    actual=It expires on ${not_after} (${days} days left)
            ...    reproduce_hint=openssl s_client -connect ${endpoint} </dev/null | openssl x509 -noout -dates
            ...    next_steps=Renew the certificate for `${endpoint}` before ${not_after}\nIf a certificate manager issues it, check that automatic renewal is working
            ...    details=subject: ${subject}\nissuer: ${issuer}\nnot after: ${not_after}
        END
        IF    ${verify} and '${code}' != '0'
            RW.Core.Add Issue
            ...    severity=3
            ...    title=TLS certificate of `${endpoint}` is not trusted
            ...    expected=The certificate chain of `${endpoint}` verifies against the trusted CAs and matches the host name
            ...    actual=Verification failed: ${reason} (code ${code})
            ...    reproduce_hint=openssl s_client -connect ${endpoint} -verify_return_error </dev/null
            ...    next_steps=Serve a certificate issued by a trusted CA, with the full intermediate chain\nIf the CA is private, add it to the clients' trust store (CA_BUNDLE for this check)
            ...    details=subject: ${subject}\nissuer: ${issuer}\nverification: ${reason}
        END
    END
    ${summary}=    Evaluate
    ...    '\\n'.join('%s: %s days left (until %s), verify: %s' % (r[0], r[2], r[3], r[5]) if r[1] == 'yes' else '%s: unreachable: %s' % (r[0], r[8]) for r in $rows) or 'no endpoint was checked'
    RW.Core.Add Pre To Report    ${summary}
    ${history}=    RW.CLI.Pop Shell History
    RW.Core.Add Pre To Report    Commands Used: ${history}


*** Keywords ***
Suite Initialization
    ${TLS_ENDPOINTS}=    RW.Core.Import User Variable    TLS_ENDPOINTS
    ...    type=string
    ...    description=Endpoints as host:port, separated by commas (port 443 when omitted).
    ...    example=example.com:443,10.0.0.7:8443
    ${MIN_DAYS_VALID}=    RW.Core.Import User Variable    MIN_DAYS_VALID
    ...    type=string
    ...    description=Certificates valid for fewer days than this raise an issue.
    ...    example=30
    ...    default=21
    ${VERIFY_CHAIN}=    RW.Core.Import User Variable    VERIFY_CHAIN
    ...    type=string
    ...    description=Whether an untrusted chain or a host-name mismatch raises an issue.
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
