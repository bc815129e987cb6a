//! The task tags of a Robot Framework file, for `taskTagExclusions`.
//!
//! Upstream parses codebundle `.robot` files with Robot Framework itself and skips the
//! codebundle when any task carries an excluded tag. This reads the same data: the
//! `*** Tasks ***` (and `*** Test Cases ***`) section's `[Tags]`, plus `Test Tags` (also
//! spelled `Task Tags`, or the older `Force Tags`), which every task gets, and `Default Tags`,
//! which tasks without their own `[Tags]` get. As in Robot Framework 7, `-tag` in `[Tags]`
//! removes a tag the task would otherwise get and `NONE` means no own tags. Both the
//! space-separated (two or more spaces, or tabs) and the pipe-separated formats are read, with
//! `...` continuation lines and `#` comments.
//!
//! Robot Framework treats `Data Factory`, `data_factory` and `datafactory` as one tag and keeps
//! the first spelling it meets, and upstream then compared the lower-cased survivor with the
//! exclusion list, so whether `datafactory` excluded a task depended on which spelling came
//! first. Steward returns every spelling and compares with [`tag_key`] (case, spaces and
//! underscores ignored), the way Robot Framework itself matches tags.

use regex::Regex;
use std::collections::BTreeSet;
use std::sync::LazyLock;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    /// Before any header, or a section that has no task tags.
    Other,
    Settings,
    Tasks,
}

/// One statement and where it belongs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    None,
    Setting,
    TaskBody,
}

#[derive(Default)]
struct Task {
    /// `[Tags]` values, if the task has the setting.
    own: Option<Vec<String>>,
}

/// The lower-cased tags of every task in a `.robot` file's tasks (or test cases) section.
/// A file without tasks has no task tags, whatever its settings say.
pub fn task_tags(robot_text: &str) -> BTreeSet<String> {
    let mut section = Section::Other;
    let mut forced: Vec<String> = Vec::new();
    let mut defaults: Vec<String> = Vec::new();
    let mut tasks: Vec<Task> = Vec::new();
    // The statement `...` lines continue, and which list its values go to.
    let mut target = Target::None;
    let mut setting_kind: Option<SettingKind> = None;

    for line in robot_text.lines() {
        let cells = cells(line);
        let Some(first_value) = cells.iter().position(|c| !c.is_empty()) else {
            continue;
        };
        if first_value == 0 && cells[0].starts_with('*') {
            section = header(&cells[0]);
            target = Target::None;
            continue;
        }
        if cells[first_value] == "..." {
            let values = &cells[first_value + 1..];
            match target {
                Target::Setting => {
                    if let Some(kind) = setting_kind {
                        push_values(
                            match kind {
                                SettingKind::Forced => &mut forced,
                                SettingKind::Default => &mut defaults,
                            },
                            values,
                        );
                    }
                }
                Target::TaskBody => {
                    if let Some(own) = tasks.last_mut().and_then(|t| t.own.as_mut()) {
                        push_values(own, values);
                    }
                }
                Target::None => {}
            }
            continue;
        }
        match section {
            Section::Other => {}
            Section::Settings => {
                setting_kind = setting(&cells[0]);
                target = Target::Setting;
                if let Some(kind) = setting_kind {
                    push_values(
                        match kind {
                            SettingKind::Forced => &mut forced,
                            SettingKind::Default => &mut defaults,
                        },
                        &cells[1..],
                    );
                }
            }
            Section::Tasks => {
                let body = if first_value == 0 {
                    // A new task; its first statement may follow the name on the same row.
                    tasks.push(Task::default());
                    &cells[1..]
                } else {
                    &cells[first_value..]
                };
                target = Target::None;
                let Some(task) = tasks.last_mut() else {
                    continue;
                };
                let Some(statement) = body.iter().position(|c| !c.is_empty()) else {
                    continue;
                };
                let keyword = &body[statement];
                if is_tags_setting(keyword) {
                    let own = task.own.get_or_insert_with(Vec::new);
                    push_values(own, &body[statement + 1..]);
                    target = Target::TaskBody;
                } else if keyword.starts_with('[') {
                    // Another task setting: its continuation lines are not tags.
                    target = Target::None;
                }
            }
        }
    }

    let forced: BTreeSet<String> = forced.iter().map(|t| t.to_lowercase()).collect();
    let defaults: BTreeSet<String> = defaults.iter().map(|t| t.to_lowercase()).collect();
    let mut all = BTreeSet::new();
    for task in &tasks {
        let mut tags = forced.clone();
        match &task.own {
            None => tags.extend(defaults.iter().cloned()),
            Some(own) => {
                let own: Vec<String> = own.iter().map(|t| t.to_lowercase()).collect();
                let none = own.len() == 1 && own[0] == "none";
                if !none {
                    let (removed, added): (Vec<&String>, Vec<&String>) =
                        own.iter().partition(|t| t.starts_with('-'));
                    tags.extend(added.into_iter().cloned());
                    for r in removed {
                        tags.remove(&r[1..]);
                    }
                }
            }
        }
        all.extend(tags);
    }
    all
}

/// A tag as Robot Framework compares it: lower-cased, without spaces and underscores.
pub fn tag_key(tag: &str) -> String {
    tag.chars()
        .filter(|c| !c.is_whitespace() && *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

#[derive(Clone, Copy)]
enum SettingKind {
    Forced,
    Default,
}

fn normalize(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn header(cell: &str) -> Section {
    let name = normalize(cell.trim_matches(|c: char| c == '*' || c.is_whitespace()));
    match name.as_str() {
        "settings" | "setting" => Section::Settings,
        "tasks" | "task" | "test cases" | "test case" => Section::Tasks,
        _ => Section::Other,
    }
}

fn setting(name: &str) -> Option<SettingKind> {
    match normalize(name).as_str() {
        "test tags" | "task tags" | "force tags" => Some(SettingKind::Forced),
        "default tags" => Some(SettingKind::Default),
        _ => None,
    }
}

fn is_tags_setting(cell: &str) -> bool {
    normalize(cell) == "[tags]"
}

fn push_values(list: &mut Vec<String>, values: &[String]) {
    list.extend(values.iter().filter(|v| !v.is_empty()).cloned());
}

static PIPE_SEPARATOR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\s+\|(?:\s+|$)").expect("a valid separator pattern"));

/// Splits a line into cells: an indented line starts with an empty cell; comments (a cell
/// starting with `#`) and trailing empty cells are dropped.
fn cells(line: &str) -> Vec<String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let mut out: Vec<String> = Vec::new();
    if line == "|" || line.starts_with("| ") || line.starts_with("|\t") {
        // The separator needs whitespace before each pipe: give the first one some. An
        // indented row (`|    | [Tags] |`) then starts with an empty cell, as it should.
        let inner = format!(" {}", &line[1..]);
        out.extend(
            PIPE_SEPARATOR
                .split(&inner)
                .map(|cell| cell.trim().to_string()),
        );
    } else {
        if line.starts_with([' ', '\t']) {
            out.push(String::new());
        }
        out.extend(split_spaces(line.trim()));
    }
    if let Some(comment) = out.iter().position(|c| c.starts_with('#')) {
        out.truncate(comment);
    }
    while out.last().is_some_and(String::is_empty) {
        out.pop();
    }
    out
}

/// Splits on tabs and runs of two or more spaces.
fn split_spaces(text: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let separator = c == '\t' || (c == ' ' && matches!(chars.peek(), Some(' ') | Some('\t')));
        if separator {
            while matches!(chars.peek(), Some(' ') | Some('\t')) {
                chars.next();
            }
            cells.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() || text.is_empty() {
        cells.push(current);
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_split_like_robot() {
        assert_eq!(
            cells("Task One    [Tags]  a b  c"),
            ["Task One", "[Tags]", "a b", "c"]
        );
        assert_eq!(cells("    ...    d\t e"), ["", "...", "d", "e"]);
        assert_eq!(cells("| Task | [Tags] | a |"), ["Task", "[Tags]", "a"]);
        assert_eq!(cells("|    | [Tags] | a | b |"), ["", "[Tags]", "a", "b"]);
        assert_eq!(cells("    Log    x    # [Tags]  no"), ["", "Log", "x"]);
    }
}
