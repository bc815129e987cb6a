//! Per-task outcomes from robot's `output.xml` (Robot Framework 6 and 7 layouts).
//!
//! The reader streams, so a file cut short by a timeout still yields the tasks that finished
//! before the cut; the cut itself is reported as [`OutputXml::truncated`].

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use steward_model::run::{TaskOutcome, TaskStatus};

/// A task outcome together with the source line robot recorded for it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedTask {
    /// Name, status, message, elapsed time.
    pub outcome: TaskOutcome,
    /// `line` attribute of `<test>`: the raw title's line in the robot file.
    pub line: Option<usize>,
}

/// What `output.xml` says about a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputXml {
    /// Tasks in execution order.
    pub tasks: Vec<RecordedTask>,
    /// `<errors>` messages (library import failures, syntax errors in the robot file, ...).
    pub errors: Vec<String>,
    /// Set when the XML ended early or was malformed at some point: the reason and position.
    pub truncated: Option<String>,
}

impl OutputXml {
    /// Parses the text of an `output.xml`.
    pub fn parse(xml: &str) -> Self {
        let mut reader = Reader::from_str(xml);
        let mut out = OutputXml::default();
        let mut stack: Vec<String> = Vec::new();
        let mut current: Option<Pending> = None;
        let mut text: Option<String> = None; // collecting the text of a <status> or <msg>

        loop {
            let event = match reader.read_event() {
                Ok(event) => event,
                Err(e) => {
                    out.truncated = Some(format!(
                        "malformed at byte {}: {e}",
                        reader.error_position()
                    ));
                    break;
                }
            };
            match event {
                Event::Start(e) => {
                    let name = e.name().as_ref().to_string();
                    open(&e, &name, &stack, &mut current, &mut text);
                    stack.push(name);
                }
                Event::Empty(e) => {
                    let name = e.name().as_ref().to_string();
                    open(&e, &name, &stack, &mut current, &mut text);
                    stack.push(name);
                    close(&mut stack, &mut current, &mut text, &mut out);
                }
                Event::End(_) => close(&mut stack, &mut current, &mut text, &mut out),
                Event::Text(t) => {
                    if let Some(buf) = text.as_mut() {
                        buf.push_str(&t.xml10_content());
                    }
                }
                Event::CData(c) => {
                    if let Some(buf) = text.as_mut() {
                        buf.push_str(&c);
                    }
                }
                Event::GeneralRef(r) => {
                    if let Some(buf) = text.as_mut() {
                        match r.resolve_char_ref() {
                            Ok(Some(c)) => buf.push(c),
                            _ => {
                                let name = r.xml10_content();
                                buf.push_str(
                                    quick_xml::escape::resolve_predefined_entity(&name)
                                        .unwrap_or(""),
                                );
                            }
                        }
                    }
                }
                Event::Eof => {
                    if !stack.is_empty() {
                        out.truncated = Some(format!("ended inside <{}>", stack[stack.len() - 1]));
                    }
                    break;
                }
                _ => {}
            }
        }
        out
    }
}

struct Pending {
    depth: usize,
    name: String,
    line: Option<usize>,
    status: Option<(TaskStatus, u64)>,
    message: String,
}

fn attr(e: &BytesStart<'_>, key: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == key)
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

fn open(
    e: &BytesStart<'_>,
    name: &str,
    stack: &[String],
    current: &mut Option<Pending>,
    text: &mut Option<String>,
) {
    let depth = stack.len();
    match name {
        "test" if current.is_none() => {
            *current = Some(Pending {
                depth,
                name: attr(e, "name").unwrap_or_default(),
                line: attr(e, "line").and_then(|l| l.parse().ok()),
                status: None,
                message: String::new(),
            });
        }
        "status" => {
            if let Some(task) = current.as_mut().filter(|t| t.depth + 1 == depth) {
                let status = match attr(e, "status").as_deref() {
                    Some("PASS") => TaskStatus::Pass,
                    Some("SKIP") => TaskStatus::Skip,
                    Some("NOT RUN") => TaskStatus::NotRun,
                    _ => TaskStatus::Fail,
                };
                task.status = Some((status, elapsed_ms(e)));
                *text = Some(String::new());
            }
        }
        "msg" if stack.last().map(String::as_str) == Some("errors") => *text = Some(String::new()),
        _ => {}
    }
}

fn close(
    stack: &mut Vec<String>,
    current: &mut Option<Pending>,
    text: &mut Option<String>,
    out: &mut OutputXml,
) {
    let Some(name) = stack.pop() else { return };
    let depth = stack.len();
    match name.as_str() {
        "status" => {
            if let (Some(task), Some(buf)) = (current.as_mut(), text.take()) {
                task.message = buf.trim().to_string();
            }
        }
        "msg" => {
            if let Some(buf) = text.take() {
                out.errors.push(buf.trim().to_string());
            }
        }
        "test" if current.as_ref().is_some_and(|t| t.depth == depth) => {
            let task = current.take().expect("checked above");
            if let Some((status, elapsed_ms)) = task.status {
                out.tasks.push(RecordedTask {
                    outcome: TaskOutcome {
                        name: task.name,
                        title: String::new(),
                        status,
                        message: task.message,
                        elapsed_ms,
                    },
                    line: task.line,
                });
            }
        }
        _ => {}
    }
}

fn elapsed_ms(e: &BytesStart<'_>) -> u64 {
    // Robot 7: elapsed="1.234" (seconds). Robot 6 has starttime/endtime instead; not needed.
    attr(e, "elapsed")
        .and_then(|s| s.parse::<f64>().ok())
        .map(|s| (s * 1000.0).round() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<robot generator="Robot 7.5" rpa="true" schemaversion="5">
<suite id="s1" name="Runbook" source="/x/runbook.robot">
<kw name="Suite Initialization" type="SETUP"><status status="PASS" start="2026-12-03T17:49:29.648853" elapsed="0.010063"/></kw>
<test id="s1-t1" name="Check `http://a` &amp; &lt;b&gt;" line="11">
<kw name="Log"><msg time="2026" level="INFO">hi</msg><status status="FAIL" start="x" elapsed="0.001">inner</status></kw>
<tag>access:read-only</tag>
<status status="PASS" start="2026-12-03T17:49:29.659150" elapsed="0.009603"/>
</test>
<test id="s1-t2" name="Second" line="20">
<status status="FAIL" start="2026-12-03T17:49:29.659150" elapsed="1.5">boom &#x2192; bad</status>
</test>
<test id="s1-t3" name="Third" line="30"><status status="SKIP" elapsed="0">skipped it</status></test>
<status status="FAIL" start="2026-12-03T17:49:28.649723" elapsed="1.019811"/>
</suite>
<errors>
<msg time="2026-12-03T17:49:28" level="ERROR">Error in file '/x/runbook.robot' on line 3: Importing library 'RW.Nope' failed</msg>
</errors>
</robot>
"#;

    #[test]
    fn reads_each_task_with_its_own_status_not_its_keywords() {
        let parsed = OutputXml::parse(XML);
        assert_eq!(parsed.truncated, None);
        let names: Vec<_> = parsed
            .tasks
            .iter()
            .map(|t| t.outcome.name.as_str())
            .collect();
        assert_eq!(names, vec!["Check `http://a` & <b>", "Second", "Third"]);
        assert_eq!(parsed.tasks[0].outcome.status, TaskStatus::Pass);
        assert_eq!(parsed.tasks[0].outcome.message, "");
        assert_eq!(parsed.tasks[0].line, Some(11));
        assert_eq!(parsed.tasks[1].outcome.status, TaskStatus::Fail);
        assert_eq!(parsed.tasks[1].outcome.message, "boom \u{2192} bad");
        assert_eq!(parsed.tasks[1].outcome.elapsed_ms, 1500);
        assert_eq!(parsed.tasks[2].outcome.status, TaskStatus::Skip);
        assert_eq!(parsed.errors.len(), 1);
        assert!(parsed.errors[0].contains("RW.Nope"));
    }

    #[test]
    fn a_file_cut_short_keeps_the_finished_tasks() {
        let cut = &XML[..XML.find("<test id=\"s1-t2\"").unwrap() + 40];
        let parsed = OutputXml::parse(cut);
        assert_eq!(parsed.tasks.len(), 1);
        assert!(parsed.truncated.is_some());
    }

    #[test]
    fn garbage_is_reported_not_panicked_on() {
        let parsed = OutputXml::parse(
            "<robot><suite><test name=\"a\"><status status=\"PASS\"/></test></wrong></robot>",
        );
        assert_eq!(parsed.tasks.len(), 1);
        assert!(parsed.truncated.is_some());
        assert!(OutputXml::parse("").tasks.is_empty());
    }
}
