//! The on-disk layout: `workspace.yaml` and `slxs/<name>/{slx,sli,slo,runbook}.yaml`.

use super::{
    API_VERSION, Document, Kind, LoadError, LoadProblem, RunbookDoc, SliDoc, SloDoc, SlxDoc,
    WorkspaceDoc,
};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Files larger than this are not workspace documents; they are reported and skipped.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The documents of one SLX directory.
#[derive(Debug, Clone)]
pub struct SlxDocuments {
    /// The directory name under `slxs/`: the SLX's short name.
    pub name: String,
    /// `slx.yaml`
    pub slx: SlxDoc,
    /// `sli.yaml`, if present.
    pub sli: Option<SliDoc>,
    /// `slo.yaml`, if present.
    pub slo: Option<SloDoc>,
    /// `runbook.yaml`, if present.
    pub runbook: Option<RunbookDoc>,
    /// The text of every file of the directory as read, by file name (documents included), so
    /// the directory can be written back byte for byte.
    pub files: BTreeMap<String, String>,
}

impl SlxDocuments {
    /// `metadata.name` of `slx.yaml`, or the directory name when that is empty.
    pub fn full_name(&self) -> &str {
        if self.slx.metadata.name.is_empty() {
            &self.name
        } else {
            &self.slx.metadata.name
        }
    }
}

/// A loaded workspace tree.
#[derive(Debug, Clone)]
pub struct WorkspaceTree {
    /// `workspace.yaml`
    pub workspace: WorkspaceDoc,
    /// SLXs by directory name.
    pub slxs: BTreeMap<String, SlxDocuments>,
    /// Every file of the tree as read, by path relative to the root.
    pub files: BTreeMap<String, String>,
    /// Items that were reported and skipped while loading.
    pub problems: Vec<LoadProblem>,
    /// SLX directories that exist but were skipped because of a problem.
    pub skipped_slxs: Vec<String>,
}

impl WorkspaceTree {
    /// Loads the tree under `root`.
    ///
    /// Files other than YAML documents are kept as they are; hidden files and directories
    /// (`.git`) are ignored.
    pub fn load(root: &Path) -> Result<Self, LoadError> {
        if !root.join("workspace.yaml").is_file() {
            return Err(LoadError::MissingWorkspaceFile(root.display().to_string()));
        }
        let mut files = BTreeMap::new();
        let mut problems = Vec::new();
        read_dir_into(root, root, &mut files, &mut problems)?;
        Self::build(files, problems)
    }

    /// Builds the tree from `(relative path, text)` pairs, as an upload delivers them.
    pub fn from_files(
        files: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, LoadError> {
        let mut problems = Vec::new();
        let mut kept = BTreeMap::new();
        for (path, text) in files {
            let normalized = normalize(&path);
            if is_safe_path(&normalized) {
                kept.insert(normalized, text);
            } else {
                problems.push(LoadProblem::new(
                    path,
                    "not a relative path inside the workspace tree",
                    "file skipped",
                ));
            }
        }
        Self::build(kept, problems)
    }

    /// `problems` are files that could not be read; an SLX with such a file is skipped as a
    /// whole, so that an import never replaces it with an incomplete version.
    fn build(
        files: BTreeMap<String, String>,
        mut problems: Vec<LoadProblem>,
    ) -> Result<Self, LoadError> {
        let workspace_text = files
            .get("workspace.yaml")
            .ok_or_else(|| LoadError::MissingWorkspaceFile("(upload)".into()))?;
        let workspace: WorkspaceDoc = parse_document(
            "workspace.yaml",
            workspace_text,
            Kind::Workspace,
            "workspace not loaded",
        )
        .map_err(LoadError::Workspace)?;
        if !is_valid_slx_name(&workspace.metadata.name) {
            return Err(LoadError::Workspace(LoadProblem {
                line: line_of(workspace_text, "  name:"),
                ..LoadProblem::new(
                    "workspace.yaml",
                    format!(
                        "metadata.name {:?} is not a workspace name: use letters, digits, '-', '_' and '.'",
                        workspace.metadata.name
                    ),
                    "workspace not loaded",
                )
            }));
        }

        let unreadable: BTreeSet<String> =
            problems.iter().filter_map(|p| slx_of(&p.path)).collect();
        let mut by_slx: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (path, text) in &files {
            if let Some(slx) = slx_of(path) {
                let file = path.rsplit('/').next().unwrap_or_default();
                // Deeper files are kept in `files` but belong to no document.
                if path.matches('/').count() == 2 {
                    by_slx
                        .entry(slx)
                        .or_default()
                        .insert(file.to_string(), text.clone());
                }
            }
        }

        let mut slxs = BTreeMap::new();
        let mut skipped_slxs: Vec<String> = unreadable.iter().cloned().collect();
        for (name, dir_files) in by_slx {
            if unreadable.contains(&name) {
                continue;
            }
            match load_slx(&name, &dir_files) {
                Ok(docs) => {
                    slxs.insert(name, docs);
                }
                Err(problem) => {
                    problems.push(problem);
                    skipped_slxs.push(name);
                }
            }
        }
        skipped_slxs.sort();
        for problem in &mut problems {
            if let Some(slx) = slx_of(&problem.path)
                && unreadable.contains(&slx)
                && problem.skipped == "file skipped"
            {
                problem.skipped = format!("SLX {slx} skipped");
            }
        }
        Ok(WorkspaceTree {
            workspace,
            slxs,
            files,
            problems,
            skipped_slxs,
        })
    }

    /// The workspace's short name.
    pub fn name(&self) -> &str {
        self.workspace.name()
    }

    /// Writes every file of the tree under `root`, creating directories as needed.
    pub fn write_to(&self, root: &Path) -> std::io::Result<()> {
        for (path, text) in &self.files {
            let target = root.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(target, text)?;
        }
        Ok(())
    }
}

fn load_slx(name: &str, files: &BTreeMap<String, String>) -> Result<SlxDocuments, LoadProblem> {
    let skipped = format!("SLX {name} skipped");
    let path = |file: &str| format!("slxs/{name}/{file}");
    if !is_valid_slx_name(name) {
        return Err(LoadProblem::new(
            format!("slxs/{name}"),
            "an SLX directory name may only hold letters, digits, '-', '_' and '.'",
            skipped,
        ));
    }
    let Some(slx_text) = files.get("slx.yaml") else {
        return Err(LoadProblem::new(
            path("slx.yaml"),
            "missing; every SLX directory needs an slx.yaml",
            skipped,
        ));
    };
    let slx: SlxDoc = parse_document(&path("slx.yaml"), slx_text, Kind::ServiceLevelX, &skipped)?;
    let sli: Option<SliDoc> = parse_optional(files, name, Kind::ServiceLevelIndicator, &skipped)?;
    let slo: Option<SloDoc> = parse_optional(files, name, Kind::ServiceLevelObjective, &skipped)?;
    let runbook: Option<RunbookDoc> = parse_optional(files, name, Kind::Runbook, &skipped)?;
    if let Some(sli) = &sli {
        require_robot(&path("sli.yaml"), &sli.spec.code_bundle, &skipped)?;
        require_variable_names(
            &path("sli.yaml"),
            &files["sli.yaml"],
            &sli.spec.config_provided,
            &skipped,
        )?;
        if let Some(Err((level, why))) = sli.spec.alerts.as_ref().map(|a| a.check()) {
            return Err(LoadProblem {
                line: line_of_key(&files["sli.yaml"], level.as_str()),
                ..LoadProblem::new(
                    path("sli.yaml"),
                    format!("spec.alerts.{}: {why}", level.as_str()),
                    skipped,
                )
            });
        }
    }
    if let Some(runbook) = &runbook {
        require_robot(&path("runbook.yaml"), &runbook.spec.code_bundle, &skipped)?;
        require_variable_names(
            &path("runbook.yaml"),
            &files["runbook.yaml"],
            &runbook.spec.config_provided,
            &skipped,
        )?;
    }
    Ok(SlxDocuments {
        name: name.to_string(),
        slx,
        sli,
        slo,
        runbook,
        files: files.clone(),
    })
}

fn require_robot(
    path: &str,
    bundle: &super::CodeBundleRef,
    skipped: &str,
) -> Result<(), LoadProblem> {
    if *bundle == super::CodeBundleRef::default() {
        return Err(LoadProblem::new(
            path,
            "spec.codeBundle is missing; give repoUrl, ref and pathToRobot of the codebundle to run",
            skipped,
        ));
    }
    if bundle.repo_url.trim().is_empty() {
        return Err(LoadProblem::new(
            path,
            "spec.codeBundle.repoUrl is empty; name the CodeCollection",
            skipped,
        ));
    }
    match bundle.path_to_robot.as_deref().map(str::trim) {
        Some(p) if p.ends_with(".robot") => Ok(()),
        Some(p) if !p.is_empty() => Err(LoadProblem::new(
            path,
            format!("spec.codeBundle.pathToRobot {p:?} does not name a .robot file"),
            skipped,
        )),
        _ => Err(LoadProblem::new(
            path,
            "spec.codeBundle.pathToRobot is missing; set it to e.g. codebundles/<bundle>/sli.robot",
            skipped,
        )),
    }
}

/// `configProvided` names become environment variables of the task.
fn require_variable_names(
    path: &str,
    text: &str,
    vars: &[super::ConfigVar],
    skipped: &str,
) -> Result<(), LoadProblem> {
    for var in vars {
        let valid = !var.name.is_empty()
            && !var.name.starts_with(|c: char| c.is_ascii_digit())
            && var
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(LoadProblem {
                line: text
                    .lines()
                    .position(|l| l.contains(&format!("name: {}", var.name)))
                    .map(|i| i + 1),
                ..LoadProblem::new(
                    path,
                    format!(
                        "configProvided name {:?} cannot be an environment variable: use letters, digits and '_', not starting with a digit",
                        var.name
                    ),
                    skipped,
                )
            });
        }
    }
    Ok(())
}

fn parse_optional<S: DeserializeOwned + Default>(
    files: &BTreeMap<String, String>,
    slx: &str,
    kind: Kind,
    skipped: &str,
) -> Result<Option<Document<S>>, LoadProblem> {
    files
        .get(kind.file_name())
        .map(|text| {
            parse_document(
                &format!("slxs/{slx}/{}", kind.file_name()),
                text,
                kind,
                skipped,
            )
        })
        .transpose()
}

/// Parses one document and checks its `apiVersion` and `kind` against the file it came from.
fn parse_document<S: DeserializeOwned + Default>(
    path: &str,
    text: &str,
    kind: Kind,
    skipped: &str,
) -> Result<Document<S>, LoadProblem> {
    if text.trim().is_empty() {
        return Err(LoadProblem::new(
            path,
            format!(
                "the file is empty; it should hold a {} document",
                kind.as_str()
            ),
            skipped,
        ));
    }
    let doc = Document::<S>::parse(text).map_err(|e| {
        let mut problem = LoadProblem::from_yaml(path, &e, skipped);
        if problem.message.contains("more than one document") {
            problem.line = text.lines().skip(1).position(|l| l.trim_end() == "---").map(|i| i + 2);
            problem.message = "the file holds several YAML documents (separated by ---); put one document in each file".into();
        }
        problem
    })?;
    if doc.kind != kind.as_str() {
        let found = if doc.kind.is_empty() {
            "no kind".to_string()
        } else {
            format!("kind {}", doc.kind)
        };
        return Err(LoadProblem {
            line: line_of(text, "kind:"),
            ..LoadProblem::new(
                path,
                format!(
                    "{} must hold kind {}, but this file has {found}",
                    kind.file_name(),
                    kind.as_str()
                ),
                skipped,
            )
        });
    }
    if doc.api_version != API_VERSION {
        return Err(LoadProblem {
            line: line_of(text, "apiVersion:"),
            ..LoadProblem::new(
                path,
                format!(
                    "apiVersion is {:?}; workspace documents use {API_VERSION}",
                    doc.api_version
                ),
                skipped,
            )
        });
    }
    Ok(doc)
}

/// The line of an indented `key:`.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.trim_start().starts_with(&format!("{key}:")))
        .map(|i| i + 1)
}

fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines().position(|l| l.starts_with(key)).map(|i| i + 1)
}

/// SLX names become directory names, URL segments and metric names.
pub fn is_valid_slx_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The SLX a path belongs to (`slxs/<name>/...`).
fn slx_of(path: &str) -> Option<String> {
    let mut parts = path.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("slxs"), Some(slx), Some(_)) if !slx.is_empty() => Some(slx.to_string()),
        _ => None,
    }
}

/// Relative, inside the tree: no empty, `.` or `..` segments.
fn is_safe_path(path: &str) -> bool {
    !path.is_empty()
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

fn normalize(path: &str) -> String {
    path.trim_start_matches("./").replace('\\', "/")
}

fn read_dir_into(
    root: &Path,
    dir: &Path,
    files: &mut BTreeMap<String, String>,
    problems: &mut Vec<LoadProblem>,
) -> Result<(), LoadError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| LoadError::Io { path, cause }
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .collect::<Result<_, _>>()
        .map_err(io(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        // Links are not followed: a tree must not pull in files from elsewhere on the machine.
        let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        if meta.file_type().is_symlink() {
            problems.push(LoadProblem::new(
                relative,
                "a symbolic link; links are not followed",
                "file skipped",
            ));
        } else if meta.is_dir() {
            read_dir_into(root, &path, files, problems)?;
        } else if meta.len() > MAX_FILE_BYTES {
            problems.push(LoadProblem::new(
                relative,
                format!(
                    "{} bytes is too large for a workspace file (limit {MAX_FILE_BYTES})",
                    meta.len()
                ),
                "file skipped",
            ));
        } else {
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    files.insert(relative, text);
                }
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    problems.push(LoadProblem::new(
                        relative,
                        "not UTF-8 text; workspace files are YAML or Markdown",
                        "file skipped",
                    ))
                }
                Err(e) => return Err(LoadError::Io { path, cause: e }),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WS: &str = "apiVersion: runwhen.com/v1\nkind: Workspace\nmetadata:\n  name: demo\nspec:\n  slxGroups: []\n";
    const SLX: &str = "apiVersion: runwhen.com/v1\nkind: ServiceLevelX\nmetadata:\n  name: demo--web\nspec:\n  alias: Web\n  statement: up\n";
    const SLI: &str = "apiVersion: runwhen.com/v1\nkind: ServiceLevelIndicator\nmetadata:\n  name: demo--web\nspec:\n  locations: [local]\n  intervalSeconds: 30\n  codeBundle:\n    repoUrl: builtin://steward\n    ref: main\n    pathToRobot: codebundles/http-endpoint-health/sli.robot\n  configProvided:\n  - name: URL\n    value: http://127.0.0.1:8080/\n";

    fn files(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v = vec![
            ("workspace.yaml".to_string(), WS.to_string()),
            ("slxs/web/slx.yaml".to_string(), SLX.to_string()),
            ("slxs/web/sli.yaml".to_string(), SLI.to_string()),
        ];
        v.extend(extra.iter().map(|(p, t)| (p.to_string(), t.to_string())));
        v
    }

    #[test]
    fn loads_documents_and_keeps_other_files() {
        let tree = WorkspaceTree::from_files(files(&[("slxs/web/SKILL.md", "# web\n")])).unwrap();
        assert_eq!(tree.name(), "demo");
        let web = &tree.slxs["web"];
        assert_eq!(web.full_name(), "demo--web");
        assert_eq!(web.sli.as_ref().unwrap().spec.interval(), 30);
        assert_eq!(web.files["SKILL.md"], "# web\n");
        assert!(tree.problems.is_empty());
    }

    #[test]
    fn a_bad_document_skips_its_slx_with_file_and_line() {
        let bad = "apiVersion: runwhen.com/v1\nkind: Runbook\nmetadata:\n  name: demo--db\nspec:\n  configProvided:\n  - name: A\n    value: [1, 2]\n";
        let tree = WorkspaceTree::from_files(files(&[
            ("slxs/db/slx.yaml", SLX),
            ("slxs/db/runbook.yaml", bad),
        ]))
        .unwrap();
        assert!(tree.slxs.contains_key("web"));
        assert!(!tree.slxs.contains_key("db"));
        assert_eq!(tree.skipped_slxs, vec!["db".to_string()]);
        let problem = &tree.problems[0];
        assert_eq!(problem.path, "slxs/db/runbook.yaml");
        assert_eq!(problem.line, Some(8), "{problem}");
        assert!(
            problem
                .to_string()
                .starts_with("slxs/db/runbook.yaml:8:12:"),
            "{problem}"
        );
        assert!(
            problem.message.contains("configProvided[0].value"),
            "{problem}"
        );
        assert!(
            problem.message.contains("invalid type: sequence"),
            "{problem}"
        );
    }

    #[test]
    fn kind_mismatch_names_the_kind_line() {
        let tree = WorkspaceTree::from_files(files(&[
            ("slxs/db/slx.yaml", SLX),
            ("slxs/db/sli.yaml", SLX),
        ]))
        .unwrap();
        let problem = &tree.problems[0];
        assert_eq!(problem.line, Some(2));
        assert!(
            problem
                .message
                .contains("sli.yaml must hold kind ServiceLevelIndicator, but this file has kind ServiceLevelX"),
            "{problem}"
        );
    }

    #[test]
    fn missing_slx_yaml_and_missing_robot_path_are_reported() {
        let no_path = SLI.replace(
            "    pathToRobot: codebundles/http-endpoint-health/sli.robot\n",
            "",
        );
        let tree = WorkspaceTree::from_files(files(&[
            ("slxs/orphan/runbook.yaml", SLI),
            ("slxs/nopath/slx.yaml", SLX),
            ("slxs/nopath/sli.yaml", &no_path),
        ]))
        .unwrap();
        let messages: Vec<String> = tree.problems.iter().map(|p| p.to_string()).collect();
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("slxs/orphan/slx.yaml: missing")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("pathToRobot is missing")),
            "{messages:?}"
        );
        assert_eq!(tree.slxs.len(), 1);
    }

    #[test]
    fn broken_workspace_yaml_is_fatal_with_line() {
        let err = WorkspaceTree::from_files(vec![(
            "workspace.yaml".to_string(),
            "apiVersion: runwhen.com/v1\nkind: Workspace\nmetadata: [oops\n".to_string(),
        )])
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("workspace.yaml:"), "{text}");
    }

    #[test]
    fn load_and_write_round_trip_byte_for_byte() {
        let src = tempfile::tempdir().unwrap();
        let tree =
            WorkspaceTree::from_files(files(&[("slxs/web/taskset.yaml", "x: 1 # comment\n")]))
                .unwrap();
        tree.write_to(src.path()).unwrap();
        std::fs::create_dir_all(src.path().join(".git")).unwrap();
        std::fs::write(src.path().join(".git/HEAD"), "ref").unwrap();
        let again = WorkspaceTree::load(src.path()).unwrap();
        assert_eq!(again.files, tree.files);
        let dst = tempfile::tempdir().unwrap();
        again.write_to(dst.path()).unwrap();
        for (path, text) in &tree.files {
            assert_eq!(
                &std::fs::read_to_string(dst.path().join(path)).unwrap(),
                text
            );
        }
    }

    #[test]
    fn unreadable_files_skip_their_whole_slx_and_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let tree = WorkspaceTree::from_files(files(&[("slxs/db/slx.yaml", SLX)])).unwrap();
        tree.write_to(dir.path()).unwrap();
        std::fs::write(
            dir.path().join("slxs/db/runbook.yaml"),
            b"\xff\xfe not utf-8",
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("slxs/web/runbook.yaml"))
            .unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();
        let tree = WorkspaceTree::load(dir.path()).unwrap();
        assert!(
            tree.slxs.is_empty(),
            "{:?}",
            tree.slxs.keys().collect::<Vec<_>>()
        );
        assert_eq!(tree.skipped_slxs, vec!["db".to_string(), "web".to_string()]);
        let text: Vec<String> = tree.problems.iter().map(|p| p.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("slxs/db/runbook.yaml: not UTF-8")
                    && t.ends_with("(SLX db skipped)")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("slxs/web/runbook.yaml: a symbolic link")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("loop: a symbolic link") && t.ends_with("(file skipped)")),
            "{text:?}"
        );
    }

    #[test]
    fn unsafe_paths_and_bad_workspace_names_are_refused() {
        let tree = WorkspaceTree::from_files(files(&[
            ("../../etc/x", "x"),
            ("/abs", "y"),
            ("slxs/a//b", "z"),
        ]))
        .unwrap();
        assert_eq!(tree.problems.len(), 3, "{:?}", tree.problems);
        assert!(tree.files.keys().all(|p| !p.contains("..")));
        let bad = WS.replace("name: demo", "name: Bad Name/../x");
        let err = WorkspaceTree::from_files(vec![("workspace.yaml".to_string(), bad)]).unwrap_err();
        assert!(err.to_string().contains("not a workspace name"), "{err}");
    }

    #[test]
    fn common_mistakes_get_plain_messages() {
        let multi = format!("{SLI}---\n{SLI}");
        let bad_name = SLI.replace("  - name: URL", "  - name: 1-URL");
        let no_bundle = "apiVersion: runwhen.com/v1\nkind: Runbook\nmetadata:\n  name: demo--r\nspec:\n  location: x\n";
        let tree = WorkspaceTree::from_files(files(&[
            ("slxs/a/slx.yaml", ""),
            ("slxs/b/slx.yaml", SLX),
            ("slxs/b/sli.yaml", &multi),
            ("slxs/c/slx.yaml", SLX),
            ("slxs/c/sli.yaml", &bad_name),
            ("slxs/d/slx.yaml", SLX),
            ("slxs/d/runbook.yaml", no_bundle),
            ("slxs/e/slx.yaml", "- a list\n"),
        ]))
        .unwrap();
        let text: Vec<String> = tree.problems.iter().map(|p| p.to_string()).collect();
        let find = |needle: &str| {
            text.iter()
                .find(|t| t.contains(needle))
                .cloned()
                .unwrap_or_else(|| panic!("{needle} not in {text:?}"))
        };
        assert!(find("slxs/a/slx.yaml").contains("the file is empty"));
        assert!(
            find("slxs/b/sli.yaml")
                .starts_with("slxs/b/sli.yaml:15: the file holds several YAML documents"),
            "{text:?}"
        );
        assert!(find("slxs/c/sli.yaml").contains("\"1-URL\" cannot be an environment variable"));
        assert!(find("slxs/d/runbook.yaml").contains("spec.codeBundle is missing"));
        assert!(
            find("slxs/e/slx.yaml").contains("expected a document"),
            "{text:?}"
        );
    }

    #[test]
    fn missing_workspace_yaml_says_what_a_tree_holds() {
        let dir = tempfile::tempdir().unwrap();
        let err = WorkspaceTree::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("no workspace.yaml"), "{err}");
    }
}
