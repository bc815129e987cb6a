//! Static reading of `.robot` files: task titles exactly as written (the raw titles `--test`
//! needs), their tags and documentation, and the suite's `Metadata`.

use std::collections::BTreeMap;

/// One task (`*** Tasks ***` or `*** Test Cases ***` entry) as written in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDef {
    /// The raw title, variables unresolved: ``Inspect Warning Events in `${NAMESPACE}` ``.
    pub title: String,
    /// 1-based line of the title; `output.xml` records the same line for the resolved task.
    pub line: usize,
    /// `[Tags]` of the task plus the suite's `Test Tags`/`Force Tags`.
    pub tags: Vec<String>,
    /// `[Documentation]`, continuation lines joined with newlines.
    pub documentation: String,
}

/// What the static reading of a robot file yields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RobotFile {
    /// Tasks in file order.
    pub tasks: Vec<TaskDef>,
    /// `Metadata  Name  Value` settings (`Author`, `Display Name`, `Supports`, ...).
    pub metadata: BTreeMap<String, String>,
    /// Suite `Documentation`.
    pub documentation: String,
}

impl RobotFile {
    /// Parses robot source text. Reading never fails: lines that are not understood are ignored,
    /// the way robot itself ignores them when it builds the task list.
    pub fn parse(source: &str) -> Self {
        Parser::default().run(source)
    }

    /// The task with this raw title.
    pub fn task(&self, title: &str) -> Option<&TaskDef> {
        self.tasks.iter().find(|t| t.title == title)
    }

    /// Raw titles in file order.
    pub fn titles(&self) -> Vec<&str> {
        self.tasks.iter().map(|t| t.title.as_str()).collect()
    }
}

/// The `--test` argument that selects exactly the task with this raw title.
///
/// Robot treats `*`, `?` and `[...]` in `--test` as glob syntax; each is wrapped in a one-char
/// class so it matches itself.
pub fn test_pattern(raw_title: &str) -> String {
    let mut out = String::with_capacity(raw_title.len() + 8);
    for c in raw_title.chars() {
        match c {
            '*' | '?' | '[' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    None,
    Settings,
    Tasks,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Continues {
    Nothing,
    Tags,
    TaskDoc,
    SuiteDoc,
    SuiteTags,
}

#[derive(Default)]
struct Parser {
    file: RobotFile,
    suite_tags: Vec<String>,
}

impl Parser {
    fn run(mut self, source: &str) -> RobotFile {
        let mut section = Section::None;
        let mut continues = Continues::Nothing;
        for (index, raw_line) in source.lines().enumerate() {
            let line = raw_line
                .strip_prefix('\u{feff}')
                .unwrap_or(raw_line)
                .trim_end();
            if line.starts_with('*') {
                section = section_of(line);
                continues = Continues::Nothing;
                continue;
            }
            let cells = cells(line);
            if cells.is_empty() {
                continue;
            }
            let indented =
                line.starts_with([' ', '\t']) || line.starts_with("| ") && cells_indented(line);
            match section {
                Section::Settings => continues = self.setting(&cells, continues),
                Section::Tasks if !indented && cells[0] != "..." => {
                    self.file.tasks.push(TaskDef {
                        title: cells[0].clone(),
                        line: index + 1,
                        tags: Vec::new(),
                        documentation: String::new(),
                    });
                    continues = self.task_body(&cells[1..], Continues::Nothing);
                }
                Section::Tasks => continues = self.task_body(&cells, continues),
                _ => {}
            }
        }
        let suite_tags = std::mem::take(&mut self.suite_tags);
        for task in &mut self.file.tasks {
            for tag in suite_tags.iter().rev() {
                if !task.tags.contains(tag) {
                    task.tags.insert(0, tag.clone());
                }
            }
        }
        self.file
    }

    fn setting(&mut self, cells: &[String], continues: Continues) -> Continues {
        let (name, rest) = (cells[0].as_str(), &cells[1..]);
        if name == "..." {
            match continues {
                Continues::SuiteDoc => push_doc(&mut self.file.documentation, rest),
                Continues::SuiteTags => self.suite_tags.extend(rest.iter().cloned()),
                _ => {}
            }
            return continues;
        }
        match normalize(name).as_str() {
            "metadata" if !rest.is_empty() => {
                self.file
                    .metadata
                    .insert(rest[0].clone(), rest[1..].join(" "));
                Continues::Nothing
            }
            "documentation" => {
                push_doc(&mut self.file.documentation, rest);
                Continues::SuiteDoc
            }
            "testtags" | "forcetags" | "tasktags" => {
                self.suite_tags.extend(rest.iter().cloned());
                Continues::SuiteTags
            }
            _ => Continues::Nothing,
        }
    }

    fn task_body(&mut self, cells: &[String], continues: Continues) -> Continues {
        let Some(task) = self.file.tasks.last_mut() else {
            return Continues::Nothing;
        };
        let Some(first) = cells.first() else {
            return continues;
        };
        if first == "..." {
            match continues {
                Continues::Tags => task.tags.extend(cells[1..].iter().cloned()),
                Continues::TaskDoc => push_doc(&mut task.documentation, &cells[1..]),
                _ => {}
            }
            return continues;
        }
        match normalize(first).as_str() {
            "[tags]" => {
                task.tags.extend(cells[1..].iter().cloned());
                Continues::Tags
            }
            "[documentation]" => {
                push_doc(&mut task.documentation, &cells[1..]);
                Continues::TaskDoc
            }
            _ => Continues::Nothing,
        }
    }
}

fn push_doc(doc: &mut String, cells: &[String]) {
    if cells.is_empty() {
        return;
    }
    if !doc.is_empty() {
        doc.push('\n');
    }
    doc.push_str(&cells.join(" "));
}

fn section_of(header: &str) -> Section {
    let name: String = header.chars().filter(|c| *c != '*').collect();
    match normalize(&name).as_str() {
        "settings" | "setting" => Section::Settings,
        "tasks" | "task" | "testcases" | "testcase" => Section::Tasks,
        _ => Section::Other,
    }
}

fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// True when a pipe-separated line has an empty first cell (`|   | Keyword |`).
fn cells_indented(line: &str) -> bool {
    line.trim_start_matches('|').trim_start().starts_with('|')
}

/// Splits a line into cells: separated by two or more spaces, a tab, or ` | ` in the pipe
/// format. A cell starting with `#` ends the line. The leading empty cell of indented lines
/// is dropped.
fn cells(line: &str) -> Vec<String> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Vec::new();
    }
    let raw: Vec<&str> = if line.starts_with("| ") || line == "|" {
        line.trim_matches('|').split(" | ").collect()
    } else {
        split_separated(trimmed)
    };
    let mut out = Vec::new();
    for cell in raw {
        let cell = cell.trim();
        if cell.starts_with('#') {
            break;
        }
        if cell.is_empty() {
            continue;
        }
        out.push(cell.to_string());
    }
    out
}

fn split_separated(line: &str) -> Vec<&str> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let is_sep =
            bytes[i] == b'\t' || (bytes[i] == b' ' && i + 1 < bytes.len() && bytes[i + 1] == b' ');
        // A backslash before the spaces escapes the separator in robot syntax.
        if is_sep && !(i > 0 && bytes[i - 1] == b'\\') {
            out.push(&line[start..i]);
            while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
                i += 1;
            }
            start = i;
        } else {
            i += 1;
        }
    }
    out.push(&line[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "*** Settings ***
Documentation       Checks things.
...                 Across lines.
Metadata            Author    someone
Metadata            Display Name    HTTP Endpoint Health
Library             RW.Core
Test Tags           suite-tag
Suite Setup         Suite Initialization

*** Tasks ***
Check `${URL}` Responds [fast] *now*    # trailing comment
    [Documentation]    Fetches the URL.
    ...    Twice.
    [Tags]    access:read-only
    ...    data:logs
    Log    hi

# a comment line
Second Task	Log    inline body
    No Operation

*** Keywords ***
Suite Initialization
    No Operation
";

    #[test]
    fn reads_raw_titles_lines_tags_and_docs() {
        let file = RobotFile::parse(SOURCE);
        assert_eq!(
            file.titles(),
            vec!["Check `${URL}` Responds [fast] *now*", "Second Task"]
        );
        let first = &file.tasks[0];
        assert_eq!(first.line, 11);
        assert_eq!(
            first.tags,
            vec!["suite-tag", "access:read-only", "data:logs"]
        );
        assert_eq!(first.documentation, "Fetches the URL.\nTwice.");
        assert_eq!(file.tasks[1].line, 19);
        assert_eq!(file.metadata["Display Name"], "HTTP Endpoint Health");
        assert_eq!(file.documentation, "Checks things.\nAcross lines.");
    }

    #[test]
    fn keywords_section_is_not_tasks_and_test_cases_header_is() {
        let file = RobotFile::parse(
            "*** Keywords ***\nNot A Task\n    Log  x\n***Test Cases***\nA Test\n    Log  y\n",
        );
        assert_eq!(file.titles(), vec!["A Test"]);
        let file = RobotFile::parse("*** Task ***\nOnly\n    Log  y\n");
        assert_eq!(file.titles(), vec!["Only"]);
    }

    #[test]
    fn pipe_format_is_understood() {
        let file =
            RobotFile::parse("| *** Tasks *** |\n| Piped Task | Log | x |\n|    | [Tags] | t1 |\n");
        // The header line starts with '|' not '*', so nothing is a task section: robot agrees
        // only when the header is the first cell; check the common spelling instead.
        assert!(file.tasks.is_empty());
        let file =
            RobotFile::parse("*** Tasks ***\n| Piped Task | Log | x |\n|    | [Tags] | t1 |\n");
        assert_eq!(file.titles(), vec!["Piped Task"]);
        assert_eq!(file.tasks[0].tags, vec!["t1"]);
    }

    #[test]
    fn escaped_double_space_stays_in_the_title() {
        let file = RobotFile::parse("*** Tasks ***\nA\\  B    Log  x\n");
        assert_eq!(file.titles(), vec!["A\\  B"]);
    }

    #[test]
    fn malformed_input_yields_what_can_be_read() {
        let file = RobotFile::parse("garbage\n*** Tasks\n\u{feff}\nReal\n   [Tags]\n...\n");
        assert_eq!(file.titles(), vec!["Real"]);
        assert!(RobotFile::parse("").tasks.is_empty());
    }

    #[test]
    fn test_pattern_escapes_glob_characters() {
        assert_eq!(test_pattern("A [x] *y*?"), "A [[]x] [*]y[*][?]");
        assert_eq!(test_pattern("Plain `${NS}`"), "Plain `${NS}`");
    }
}
