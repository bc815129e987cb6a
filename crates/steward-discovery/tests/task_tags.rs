//! `taskTagExclusions`: the task tags of Robot Framework files.

use steward_discovery::rules::{tag_key, task_tags};

#[test]
fn task_tags_read_tags_settings_and_continuations() {
    let robot = "\
*** Settings ***
Documentation     Checks things.
Test Tags         Platform    k8s
...               Shared
Default Tags      default-only

*** Variables ***
${TAGS}    not-a-tag

*** Tasks ***
Inspect Deployment
    [Documentation]    Looks.
    [Tags]    Access:Read-Only    deployment
    ...    Multi Word Tag
    Log    hi

Restart Deployment    [Tags]    access:read-write    -shared
    Log    restart

Untagged Task
    Log    gets the defaults

Tag-less With None
    [Tags]    NONE
    Log    no own tags

*** Keywords ***
Helper
    [Tags]    keyword-tag
    Log    x
";
    let tags = task_tags(robot);
    let want = [
        "access:read-only",
        "access:read-write",
        "default-only",
        "deployment",
        "k8s",
        "multi word tag",
        "platform",
        "shared",
    ];
    assert_eq!(tags.iter().map(String::as_str).collect::<Vec<_>>(), want);
}

#[test]
fn task_tags_read_pipes_tabs_test_cases_and_comments() {
    let robot = "\
| *** Settings *** |
| Force Tags | Forced |

| *** Test Cases *** |
| First | [Tags] | Pipe-Tag | # a comment | not-a-tag |
|       | ...    | second   |
Second\t[Tags]\tTab-Tag
# [Tags]  commented-out
";
    let tags = task_tags(robot);
    assert_eq!(
        tags.iter().map(String::as_str).collect::<Vec<_>>(),
        ["forced", "pipe-tag", "second", "tab-tag"]
    );
    // Settings alone, without tasks, tag nothing.
    assert!(task_tags("*** Settings ***\nTest Tags    lonely\n").is_empty());
    // `-tag` removes a forced tag for that task only.
    let robot = "*** Settings ***\nTest Tags    a    b\n*** Tasks ***\nOne\n    [Tags]    -a\n    No Operation\nTwo\n    No Operation\n";
    assert_eq!(task_tags(robot).into_iter().collect::<Vec<_>>(), ["a", "b"]);
    let robot = "*** Settings ***\nTest Tags    a\n*** Tasks ***\nOne\n    [Tags]    -a    c\n";
    assert_eq!(task_tags(robot).into_iter().collect::<Vec<_>>(), ["c"]);
}

// Robot Framework merges `Data Factory` (forced) with `datafactory` ([Tags]); both spellings
// are returned so that an exclusion written either way finds them.
#[test]
fn every_spelling_of_a_tag_is_returned() {
    let robot = "*** Settings ***\nForce Tags    Data Factory\n*** Tasks ***\nCheck\n    [Tags]    datafactory    data_factory\n";
    let tags = task_tags(robot);
    assert_eq!(
        tags.iter().map(String::as_str).collect::<Vec<_>>(),
        ["data factory", "data_factory", "datafactory"]
    );
    let keys: std::collections::BTreeSet<String> = tags.iter().map(|t| tag_key(t)).collect();
    assert_eq!(keys.into_iter().collect::<Vec<_>>(), ["datafactory"]);
}
