//! Writing the generated workspace tree, and the report of what was skipped.
//!
//! The output directory is the workspace tree itself (`workspace.yaml`, `slxs/<name>/...`),
//! ready for `steward workspace import` or an upload. Steward's own files live in the hidden
//! `.steward/` directory next to it (the name ledger, the report), which workspace loaders
//! ignore. Each run replaces `workspace.yaml` and `slxs/` as a whole, so an SLX that is no
//! longer generated disappears from the tree.

use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// Steward's files inside the output directory.
pub const STATE_DIR: &str = ".steward";
pub const LEDGER_FILE: &str = "names.json";
pub const REPORT_FILE: &str = "report.md";

#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct OutputError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Something that was not generated, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// What was skipped: a rule file, an SLX, a template, a context, a config key.
    pub item: String,
    /// Where: file:line, codebundle, resource.
    pub location: String,
    pub reason: String,
}

pub fn ledger_path(out: &Path) -> PathBuf {
    out.join(STATE_DIR).join(LEDGER_FILE)
}

/// Replaces the tree under `out` with `files` (relative path → text).
///
/// The new tree is written beside the old one first and swapped in, so an interrupted run
/// leaves the previous tree rather than half of each.
pub fn write_tree(out: &Path, files: &BTreeMap<String, String>) -> Result<(), OutputError> {
    let mut staging = Staging::new(out)?;
    for (rel, text) in files {
        staging.write(rel, text)?;
    }
    staging.commit()
}

/// A new tree being written file by file beside the one under `out`, swapped in by
/// [`Staging::commit`]; so a generation can hand over its files as it renders them instead of
/// holding the whole tree. Dropped without a commit, it leaves the previous tree in place (and
/// the partial one in `.steward/staging` until the next run).
pub struct Staging {
    out: PathBuf,
    dir: PathBuf,
    /// Directories already created.
    made: HashSet<PathBuf>,
    /// Distinct files written (a path written twice keeps its last text and counts once).
    written: HashSet<String>,
}

impl Staging {
    /// Starts a new tree for `out`, clearing what an interrupted run left.
    pub fn new(out: &Path) -> Result<Staging, OutputError> {
        std::fs::create_dir_all(out).map_err(err(out))?;
        let dir = out.join(STATE_DIR).join("staging");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(err(&dir))?;
        Ok(Staging {
            out: out.to_path_buf(),
            dir,
            made: HashSet::new(),
            written: HashSet::new(),
        })
    }

    /// Writes one file of the new tree (`rel` relative to its root).
    pub fn write(&mut self, rel: &str, text: &str) -> Result<(), OutputError> {
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent()
            && !self.made.contains(parent)
        {
            std::fs::create_dir_all(parent).map_err(err(parent))?;
            self.made.insert(parent.to_path_buf());
        }
        std::fs::write(&path, text).map_err(err(&path))?;
        self.written.insert(rel.to_string());
        Ok(())
    }

    /// How many distinct files the new tree has.
    pub fn len(&self) -> usize {
        self.written.len()
    }

    pub fn is_empty(&self) -> bool {
        self.written.is_empty()
    }

    /// Swaps the new tree in for `workspace.yaml`, `slxs/` and `workflows/` under `out`.
    pub fn commit(self) -> Result<(), OutputError> {
        let Staging { out, dir, .. } = self;
        let old = out.join(STATE_DIR).join("previous");
        let _ = std::fs::remove_dir_all(&old);
        std::fs::create_dir_all(&old).map_err(err(&old))?;
        for name in ["workspace.yaml", "slxs", "workflows"] {
            let current = out.join(name);
            if current.exists() {
                std::fs::rename(&current, old.join(name)).map_err(err(&current))?;
            }
        }
        for entry in std::fs::read_dir(&dir).map_err(err(&dir))? {
            let entry = entry.map_err(err(&dir))?;
            let target = out.join(entry.file_name());
            std::fs::rename(entry.path(), &target).map_err(err(&target))?;
        }
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    }
}

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError {
    let path = path.to_path_buf();
    move |source| OutputError { path, source }
}

/// The skipped items as Markdown, grouped by kind of item, in a stable order.
pub fn report_markdown(workspace: &str, skipped: &[Skipped]) -> String {
    let mut text = format!("# Discovery report for workspace {workspace}\n\n");
    if skipped.is_empty() {
        text.push_str("Nothing was skipped.\n");
        return text;
    }
    text.push_str(&format!(
        "{} items were skipped.\n\n| item | where | why |\n|---|---|---|\n",
        skipped.len()
    ));
    let mut sorted = skipped.to_vec();
    sorted.sort();
    for s in sorted {
        text.push_str(&format!(
            "| {} | {} | {} |\n",
            escape(&s.item),
            escape(&s.location),
            escape(&s.reason)
        ));
    }
    text
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub fn write_report(
    out: &Path,
    workspace: &str,
    skipped: &[Skipped],
) -> Result<PathBuf, OutputError> {
    let path = out.join(STATE_DIR).join(REPORT_FILE);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| OutputError {
            path: parent.into(),
            source,
        })?;
    }
    std::fs::write(&path, report_markdown(workspace, skipped)).map_err(|source| OutputError {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_tree_replaces_the_old_one_and_keeps_state() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let mut files = BTreeMap::new();
        files.insert("workspace.yaml".to_string(), "a".to_string());
        files.insert("slxs/one/slx.yaml".to_string(), "1".to_string());
        write_tree(out, &files).unwrap();
        std::fs::create_dir_all(out.join(STATE_DIR)).unwrap();
        std::fs::write(ledger_path(out), "{}").unwrap();
        files.remove("slxs/one/slx.yaml");
        files.insert("slxs/two/slx.yaml".to_string(), "2".to_string());
        write_tree(out, &files).unwrap();
        assert!(!out.join("slxs/one").exists());
        assert_eq!(
            std::fs::read_to_string(out.join("slxs/two/slx.yaml")).unwrap(),
            "2"
        );
        assert!(ledger_path(out).is_file());
        assert!(!out.join(STATE_DIR).join("staging").exists());
    }

    #[test]
    fn the_report_lists_items_in_order() {
        let s = |item: &str| Skipped {
            item: item.into(),
            location: "f.yaml:3".into(),
            reason: "bad | worse".into(),
        };
        let md = report_markdown("ws", &[s("b"), s("a")]);
        assert!(md.find("| a |").unwrap() < md.find("| b |").unwrap());
        assert!(md.contains("bad \\| worse"));
        assert!(report_markdown("ws", &[]).contains("Nothing was skipped"));
    }
}
