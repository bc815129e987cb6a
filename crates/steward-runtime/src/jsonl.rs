//! `issues.jsonl` and `report.jsonl`: one JSON object per line, written by `RW.Core`.
//!
//! A line that is not a JSON object is reported (file:line, what was wrong, the start of the
//! line) and skipped; the lines around it are kept. The file itself is kept as an artifact, so
//! nothing the task wrote is lost.

use serde::de::DeserializeOwned;
use steward_model::issue::{Issue, ReportEntry};

/// Parsed lines plus one warning per line that could not be used.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<T> {
    /// The usable lines, in order.
    pub items: Vec<T>,
    /// `file:line: reason: <start of the line>` for each skipped line.
    pub warnings: Vec<String>,
}

/// Parses `issues.jsonl`. An empty object (`{}`), which wrappers write in place of a missing
/// file, is not an issue and is skipped silently.
pub fn parse_issues(text: &str) -> Parsed<Issue> {
    parse_lines(text, "issues.jsonl", |v| {
        v.as_object().is_some_and(|o| o.is_empty())
    })
}

/// Parses `report.jsonl`.
pub fn parse_report(text: &str) -> Parsed<ReportEntry> {
    parse_lines(text, "report.jsonl", |v| {
        v.as_object().is_some_and(|o| o.is_empty())
    })
}

fn parse_lines<T: DeserializeOwned>(
    text: &str,
    file: &str,
    ignore: impl Fn(&serde_json::Value) -> bool,
) -> Parsed<T> {
    let mut items = Vec::new();
    let mut warnings = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let warn = |reason: String| format!("{file}:{}: {reason}: {}", index + 1, excerpt(line));
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                warnings.push(warn(format!("not valid JSON ({e})")));
                continue;
            }
        };
        if !value.is_object() {
            warnings.push(warn("not a JSON object".into()));
            continue;
        }
        if ignore(&value) {
            continue;
        }
        match serde_json::from_value(value) {
            Ok(item) => items.push(item),
            Err(e) => warnings.push(warn(format!("unexpected shape ({e})"))),
        }
    }
    Parsed { items, warnings }
}

fn excerpt(line: &str) -> String {
    const MAX: usize = 200;
    if line.len() <= MAX {
        return line.to_string();
    }
    let mut end = MAX;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_lines_survive_bad_neighbours() {
        let text = concat!(
            "{\"severity\": 2, \"title\": \"first\", \"nextSteps\": \"fix\", \"taskName\": \"T\"}\n",
            "{\"severity\": 3, \"title\": \"cut off\n",
            "\n",
            "[1, 2]\n",
            "{}\n",
            "{\"severity\": 9, \"title\": \"third\"}\n",
        );
        let parsed = parse_issues(text);
        let titles: Vec<_> = parsed.items.iter().map(|i| i.title.as_str()).collect();
        assert_eq!(titles, vec!["first", "third"]);
        assert_eq!(parsed.items[1].severity, 4);
        assert_eq!(parsed.warnings.len(), 2, "{:?}", parsed.warnings);
        assert!(
            parsed.warnings[0].starts_with("issues.jsonl:2: not valid JSON"),
            "{}",
            parsed.warnings[0]
        );
        assert!(
            parsed.warnings[0].ends_with("\"title\": \"cut off"),
            "{}",
            parsed.warnings[0]
        );
        assert!(parsed.warnings[1].starts_with("issues.jsonl:4: not a JSON object"));
    }

    #[test]
    fn report_lines_keep_structured_objects() {
        let text = "{\"obj\": {\"a\": [1]}, \"fmt\": \"json\", \"kwargs\": {}, \"taskName\": \"T\", \"taskDoc\": \"d\"}\n{\"obj\": \"text\", \"fmt\": \"pre\", \"kwargs\": {}, \"taskName\": \"T\"}\n";
        let parsed = parse_report(text);
        assert!(parsed.warnings.is_empty());
        assert_eq!(parsed.items[0].obj["a"][0], 1);
        assert_eq!(parsed.items[0].extra["taskDoc"], "d");
        assert_eq!(parsed.items[1].fmt, "pre");
    }

    #[test]
    fn long_bad_lines_are_shortened_on_a_char_boundary() {
        let line = format!("{{\"title\": \"{}", "é".repeat(300));
        let parsed = parse_report(&line);
        assert!(parsed.warnings[0].ends_with('…'));
    }
}
