//! Issues and report entries, in the shape `RW.Core` writes to `issues.jsonl` and `report.jsonl`.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// One issue raised by `RW.Core.Add Issue`.
///
/// Keys are those of `issues.jsonl` (camelCase); extra keyword arguments a bundle passes to
/// `Add Issue` land at the top level and are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Issue {
    /// 1 (down, needs a human) to 4 (informational); anything else is read as 4, as `RW.Core` does.
    #[serde(default = "informational", deserialize_with = "severity")]
    pub severity: u8,
    /// What is wrong, in one line.
    #[serde(default)]
    pub title: String,
    /// What should have been seen.
    #[serde(default, deserialize_with = "text")]
    pub expected: String,
    /// What was seen.
    #[serde(default, deserialize_with = "text")]
    pub actual: String,
    /// How to reproduce it.
    #[serde(default, deserialize_with = "text")]
    pub reproduce_hint: String,
    /// What to do next.
    #[serde(default, deserialize_with = "text")]
    pub next_steps: String,
    /// Longer details.
    #[serde(default, deserialize_with = "text")]
    pub details: String,
    /// The resolved name of the task that raised it.
    #[serde(default, deserialize_with = "text")]
    pub task_name: String,
    /// When it was observed (ISO-8601, as the task wrote it).
    #[serde(default, deserialize_with = "text")]
    pub observed_at: String,
    /// Everything else the line held (`taskDoc`, `metadata`, extra keyword arguments).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn informational() -> u8 {
    4
}

fn severity<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let value = Value::deserialize(d)?;
    let number = match &value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    Ok(match number {
        Some(n) if (1.0..=3.0).contains(&n) && n.fract() == 0.0 => n as u8,
        _ => 4,
    })
}

/// Any JSON scalar as text; `null` as empty; structures as compact JSON.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => String::new(),
        Value::String(s) => s,
        other => other.to_string(),
    })
}

/// One line of `report.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportEntry {
    /// The content; a string for most formats, structured for `json`, `issue`.
    #[serde(default)]
    pub obj: Value,
    /// `p`, `pre`, `code`, `a`, `json`, `table` or `issue`.
    #[serde(default)]
    pub fmt: String,
    /// Format options (`text` of a link, `head`/`body` of a table, ...).
    #[serde(default)]
    pub kwargs: Value,
    /// Resolved name of the task that wrote it.
    #[serde(default, deserialize_with = "text")]
    pub task_name: String,
    /// Everything else the line held.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_real_issue_line_and_keeps_extras() {
        let line = r#"{"severity": 2, "title": "HTTP connection failed", "expected": "exit 0", "actual": "exit 7", "reproduceHint": "Run: curl", "nextSteps": "Check Network", "details": "...", "taskName": "Check HTTP", "taskDoc": "doc", "taskStatus": null, "taskMessage": null, "observedAt": "2026-12-03T15:51:29.436698+00:00", "metadata": {"summary": null}, "extra_field": 5}"#;
        let issue: Issue = serde_json::from_str(line).unwrap();
        assert_eq!(issue.severity, 2);
        assert_eq!(issue.next_steps, "Check Network");
        assert_eq!(issue.extra["extra_field"], 5);
        assert_eq!(issue.extra["taskDoc"], "doc");
        let back = serde_json::to_value(&issue).unwrap();
        assert_eq!(back["reproduceHint"], "Run: curl");
        assert_eq!(back["extra_field"], 5);
    }

    #[test]
    fn out_of_range_severity_becomes_informational() {
        for raw in ["7", "0", "\"high\"", "null", "2.5"] {
            let issue: Issue =
                serde_json::from_str(&format!(r#"{{"severity": {raw}, "title": "t"}}"#)).unwrap();
            assert_eq!(issue.severity, 4, "severity {raw}");
        }
        let issue: Issue =
            serde_json::from_str(r#"{"severity": "1", "title": "t", "details": {"a": 1}}"#)
                .unwrap();
        assert_eq!(issue.severity, 1);
        assert_eq!(issue.details, r#"{"a":1}"#);
    }
}
