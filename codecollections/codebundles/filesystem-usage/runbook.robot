*** Settings ***
Documentation       Troubleshoots full filesystems: raises an issue for each path whose
...                 filesystem is above the warning or critical threshold (space or inodes) and
...                 lists what takes the space.
Metadata            Author    Steward
Metadata            Display Name    Filesystem Usage
Metadata            Supports    Linux
Library             RW.Core
Library             RW.CLI
Suite Setup         Suite Initialization


*** Tasks ***
Check Filesystem Usage
    [Documentation]    Reads the usage of each path's filesystem and raises an issue for each
    ...    one above a threshold or missing.
    [Tags]    access:read-only    data:metrics    filesystem
    ${rsp}=    RW.CLI.Run Bash File
    ...    bash_file=measure_usage.sh
    ...    env=${env}
    ...    timeout_seconds=60
    ${rows}=    Evaluate    [l.split('\\t') for l in $rsp.stdout.splitlines() if l.count('\\t') == 7]
    FOR    ${row}    IN    @{rows}
        ${path}    ${verdict}    ${used}    ${inodes}    ${mount}    ${size_kb}    ${avail_kb}    ${detail}=
        ...    Set Variable    @{row}
        IF    '${verdict}' == 'missing'
            RW.Core.Add Issue
            ...    severity=3
            ...    title=Path `${path}` cannot be measured
            ...    expected=`${path}` exists on the host the checks run on
            ...    actual=${detail}
            ...    reproduce_hint=df -P -k ${path}
            ...    next_steps=Check the spelling of `${path}` in the SLX configuration\nCheck that the volume holding it is mounted
            ...    details=path: ${path}
        ELSE IF    '${verdict}' != 'ok'
            ${severity}=    Evaluate    2 if $verdict == 'critical' else 3
            ${free_gib}=    Evaluate    round(int($avail_kb) / 1048576, 2)
            RW.Core.Add Issue
            ...    severity=${severity}
            ...    title=Filesystem `${mount}` holding `${path}` is ${used}% full
            ...    expected=`${mount}` stays below ${WARNING_PERCENT}% of its space and inodes
            ...    actual=${used}% of the space and ${inodes}% of the inodes are used; ${free_gib} GiB free
            ...    reproduce_hint=df -h ${path}; df -i ${path}
            ...    next_steps=Find what grew with `du -x -h --max-depth=2 ${mount} | sort -h | tail`\nRemove or rotate old logs, caches and temporary files\nGrow the volume if the data is expected to stay
            ...    details=path: ${path}\nmount: ${mount}\nsize: ${size_kb} KiB\navailable: ${avail_kb} KiB\nspace used: ${used}%\ninodes used: ${inodes}%
        END
    END
    ${summary}=    Evaluate    '\\n'.join('%s on %s: %s%% space, %s%% inodes (%s)' % (r[0], r[4] or '-', r[2] or '-', r[3] or '-', r[1]) for r in $rows) or 'no path was measured'
    RW.Core.Add Pre To Report    ${summary}
    ${history}=    RW.CLI.Pop Shell History
    RW.Core.Add Pre To Report    Commands Used: ${history}

List Largest Directories Under `${PATHS}`
    [Documentation]    Lists the directories that take the most space directly under each path.
    [Tags]    access:read-only    data:config    filesystem
    ${rsp}=    RW.CLI.Run Bash File
    ...    bash_file=largest_dirs.sh
    ...    env=${env}
    ...    timeout_seconds=180
    RW.Core.Add Pre To Report    ${rsp.stdout}


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
