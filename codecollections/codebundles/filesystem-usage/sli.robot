*** Settings ***
Documentation       Measures how full the filesystems holding a set of paths are, by space and
...                 by inodes. The value is the fraction of paths below the warning threshold.
Metadata            Author    Steward
Metadata            Display Name    Filesystem Usage
Metadata            Supports    Linux
Library             RW.Core
Library             RW.CLI
Suite Setup         Suite Initialization


*** Tasks ***
Measure Filesystem Usage
    [Documentation]    Reads the usage of each path's filesystem and pushes the share of paths
    ...    below the warning threshold, with the fullest filesystem's usage as a sub-metric.
    [Tags]    access:read-only    data:metrics    filesystem
    ${rsp}=    RW.CLI.Run Bash File
    ...    bash_file=measure_usage.sh
    ...    env=${env}
    ...    include_in_history=false
    ...    timeout_seconds=60
    ${rows}=    Evaluate    [l.split('\\t') for l in $rsp.stdout.splitlines() if l.count('\\t') == 7]
    ${total}=    Get Length    ${rows}
    # RETURN is only allowed in keywords, so the no-result case is an IF/ELSE.
    IF    ${total} == 0
        RW.Core.Add Pre To Report    No path was measured. PATHS=${PATHS}\n${rsp.stderr}
        RW.Core.Push Metric    0
    ELSE
        ${good}=    Evaluate    sum(1 for r in $rows if r[1] == 'ok')
        ${fullest}=    Evaluate    max([int(r[2]) for r in $rows if r[2]] or [0])
        ${score}=    Evaluate    round($good / $total, 4)
        RW.Core.Add Pre To Report    ${good} of ${total} paths below ${WARNING_PERCENT}% (fullest filesystem at ${fullest}%)
        RW.Core.Push Metric    ${fullest}    sub_name=max_used_percent
        RW.Core.Push Metric    ${score}
    END


*** Keywords ***
Suite Initialization
    ${PATHS}=    RW.Core.Import User Variable    PATHS
    ...    type=string
    ...    description=Paths whose filesystems to measure, separated by commas.
    ...    example=/,/var/lib/postgresql
    ...    default=/
    ${WARNING_PERCENT}=    RW.Core.Import User Variable    WARNING_PERCENT
    ...    type=string
    ...    description=Usage (space or inodes) at which a filesystem needs attention.
    ...    example=80
    ...    default=80
    ${CRITICAL_PERCENT}=    RW.Core.Import User Variable    CRITICAL_PERCENT
    ...    type=string
    ...    description=Usage at which a filesystem is about to fill up.
    ...    example=90
    ...    default=90
    ${env}=    Create Dictionary
    ...    PATHS=${PATHS}
    ...    WARNING_PERCENT=${WARNING_PERCENT}
    ...    CRITICAL_PERCENT=${CRITICAL_PERCENT}
    Set Suite Variable    ${env}
