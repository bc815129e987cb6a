//! One discovery run, end to end: configuration → CodeCollections → resources (clusters or a
//! snapshot) → generation → the tree on disk, with a summary of what happened.

use crate::collection::{self, CodeCollection};
use crate::config::{CodeCollectionConfig, ConfigError, WorkspaceInfo};
use crate::engine::{self, Generated};
use crate::kubernetes::{self, IndexProblem, Progress};
use crate::levels;
use crate::map_rules::{LoadError, MapRules};
use crate::naming::{Ledger, LedgerError, NameMode};
use crate::output::{self, OutputError, Skipped};
use crate::resource::Registry;
use crate::snapshot::{self, SnapshotError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use steward_runtime::collection::CollectionResolver;

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    MapRules(#[from] LoadError),
    #[error("no CodeCollection could be loaded: {0}")]
    NoCollections(String),
    #[error(
        "cannot read the kubeconfig {path}: {cause}; give another with --kubeconfig, or generate from a snapshot with --from-snapshot"
    )]
    Kubeconfig { path: PathBuf, cause: String },
    #[error(
        "nothing to index: no kubeconfig (cloudConfig.kubernetes.kubeconfigFile, --kubeconfig, KUBECONFIG or ~/.kube/config) and no inClusterAuth; or generate from a snapshot with --from-snapshot"
    )]
    NoKubeconfig,
}

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct DiscoverOptions {
    pub config: PathBuf,
    pub upload_info: Option<PathBuf>,
    pub kubeconfig: Option<PathBuf>,
    pub contexts: Vec<String>,
    pub from_snapshot: Option<PathBuf>,
    pub snapshot_out: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub name_mode: Option<NameMode>,
    pub index_only: bool,
    /// runwhen-local's map customization rules: a file or a directory of them.
    pub map_customization_rules: Option<PathBuf>,
    /// CodeCollection checkouts live under `<cache_dir>/collections`.
    pub cache_dir: PathBuf,
}

/// What a run did, for people and (as JSON) for programs.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub workspace: String,
    /// Where the resources came from.
    pub source: String,
    pub out: Option<PathBuf>,
    pub report: Option<PathBuf>,
    pub snapshot: Option<PathBuf>,
    pub contexts: Vec<String>,
    /// Contexts that could not be indexed at all (the reason is in `skipped`).
    pub failed_contexts: Vec<String>,
    /// Resources per type.
    pub resources: BTreeMap<String, usize>,
    pub collections: usize,
    pub codebundles: usize,
    pub slxs: usize,
    pub files: usize,
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<String>,
    pub elapsed_ms: u128,
    /// The platform's answer to an upload, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload: Option<serde_json::Value>,
}

/// The loaded configuration, kept for the caller (the upload needs the URL and token).
pub struct Run {
    pub info: WorkspaceInfo,
    pub summary: Summary,
}

pub async fn discover(
    options: &DiscoverOptions,
    progress: Arc<dyn Progress>,
) -> Result<Run, DiscoverError> {
    let started = Instant::now();
    let upload_info = options.upload_info.clone().or_else(|| {
        let beside = options.config.with_file_name("uploadInfo.yaml");
        beside.is_file().then_some(beside)
    });
    let (info, config_warnings) =
        WorkspaceInfo::load_with_upload(&options.config, upload_info.as_deref())?;
    let mut skipped: Vec<Skipped> = Vec::new();
    let mut warnings: Vec<String> = config_warnings
        .iter()
        // Which kubeconfig would be used does not matter when generating from a snapshot.
        .filter(|w| options.from_snapshot.is_none() || !w.message.contains("kubeconfig"))
        .map(|w| w.to_string())
        .collect();
    let config_dir = options
        .config
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();

    let resolver = CollectionResolver::new(&options.cache_dir, Default::default());
    let collections = load_collections(&info, &config_dir, &resolver, &mut skipped).await?;
    let mut rules = engine::RuleSet::load(&info, &collections, &mut skipped);
    if let Some(path) = &options.map_customization_rules {
        rules.customize_map(MapRules::load(path, &mut skipped, &mut warnings)?);
    }

    let mut failed_contexts = Vec::new();
    let (mut registry, source, contexts) = match &options.from_snapshot {
        Some(path) => {
            let registry = read_snapshot(path, &rules.custom_kinds(), &mut skipped)?;
            (registry, format!("snapshot {}", path.display()), Vec::new())
        }
        None => {
            let k8s = info.kubernetes.as_ref();
            let in_cluster = k8s.is_some_and(|k| k.in_cluster_auth);
            let kubeconfig_path = options
                .kubeconfig
                .clone()
                .or_else(|| k8s.and_then(|k| k.kubeconfig_file.clone()))
                .or_else(|| (!in_cluster).then(default_kubeconfig).flatten());
            let mut targets = Vec::new();
            let mut sources = Vec::new();
            if let Some(path) = &kubeconfig_path {
                let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                    DiscoverError::Kubeconfig {
                        path: path.clone(),
                        cause: e.to_string(),
                    }
                })?;
                targets.extend(
                    kubernetes::index::targets_from_kubeconfig(&kubeconfig, &options.contexts)
                        .await,
                );
                sources.push(format!("kubeconfig {}", path.display()));
            }
            if in_cluster {
                targets.push(kubernetes::index::in_cluster_target("default"));
                sources.push("in-cluster service account".to_string());
            }
            if targets.is_empty() && kubeconfig_path.is_none() && !in_cluster {
                return Err(DiscoverError::NoKubeconfig);
            }
            let policy: Arc<dyn kubernetes::NamespacePolicy> = Arc::new(info.clone());
            let result =
                kubernetes::index::index(targets, &rules.custom_refs(), policy, progress).await;
            skipped.extend(levels::report_skipped(&info, &result.skipped_namespaces));
            for p in &result.problems {
                skipped.push(index_skipped(p));
                if p.fatal {
                    failed_contexts.push(p.context.clone());
                }
            }
            (result.registry, sources.join(" and "), result.contexts)
        }
    };
    // Levels of detail follow this run's configuration whatever the source recorded.
    skipped.extend(levels::apply(&info, &mut registry));

    let snapshot = match &options.snapshot_out {
        Some(path) => {
            snapshot::write(&registry, path)?;
            Some(path.clone())
        }
        None => None,
    };
    let mut summary = Summary {
        workspace: info.workspace_name.clone(),
        source,
        out: None,
        report: None,
        snapshot,
        contexts,
        failed_contexts,
        resources: registry.counts(),
        collections: collections.len(),
        codebundles: collections.iter().map(|c| c.bundles.len()).sum(),
        slxs: 0,
        files: 0,
        skipped: Vec::new(),
        warnings: Vec::new(),
        elapsed_ms: 0,
        upload: None,
    };
    if !options.index_only {
        let out = options
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("output/workspaces").join(&info.workspace_name));
        let mode = options.name_mode.or(info.slx_name_mode).unwrap_or_default();
        let ledger_path = output::ledger_path(&out);
        let mut ledger = Ledger::load(&ledger_path, &info.workspace_name, mode)?;
        let (generated, files) = generate_into(&out, &info, &rules, &registry, mode, &mut ledger)?;
        skipped.extend(generated.skipped);
        warnings.extend(generated.warnings);
        ledger.save(&ledger_path)?;
        summary.report = Some(output::write_report(&out, &info.workspace_name, &skipped)?);
        summary.out = Some(out);
        summary.slxs = generated.slxs;
        summary.files = files;
    }
    skipped.sort();
    summary.skipped = skipped;
    summary.warnings = warnings;
    // Freeing a large registry and rule set takes a noticeable fraction of a run; it need not
    // delay the answer.
    std::thread::spawn(move || drop((registry, rules, collections)));
    summary.elapsed_ms = started.elapsed().as_millis();
    Ok(Run { info, summary })
}

/// Files handed from generation to the writer and not yet written: enough to keep both
/// busy, few enough that the tree is never held in memory.
const WRITE_QUEUE: usize = 1024;

/// Generates the tree into a staging directory beside `out` and swaps it in; returns what
/// generation found and the number of files. The files are written on their own thread as
/// they are rendered, which keeps them out of memory and the writing off the rendering's
/// critical path.
fn generate_into(
    out: &Path,
    info: &WorkspaceInfo,
    rules: &engine::RuleSet,
    registry: &Registry,
    mode: NameMode,
    ledger: &mut Ledger,
) -> Result<(Generated, usize), OutputError> {
    let mut staging = output::Staging::new(out)?;
    let (sender, receiver) = std::sync::mpsc::sync_channel::<(String, String)>(WRITE_QUEUE);
    let (generated, written) = std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            for (path, text) in receiver {
                // On an error the receiver is dropped here, which stops the queue; the error
                // is reported once generation ends.
                staging.write(&path, &text)?;
            }
            Ok::<_, OutputError>(staging)
        });
        let generated = engine::generate(info, rules, registry, mode, ledger, &mut |path, text| {
            // A failed send means the writer stopped on an error, which `join` returns.
            let _ = sender.send((path, text));
        });
        drop(sender);
        let written = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (generated, written)
    });
    let staging = written?;
    let files = staging.len();
    staging.commit()?;
    Ok((generated, files))
}

fn index_skipped(p: &IndexProblem) -> Skipped {
    Skipped {
        item: if p.fatal {
            format!("context {}", p.context)
        } else {
            p.during.clone()
        },
        location: format!("context {}", p.context),
        reason: if p.fatal {
            format!("{} failed: {}", p.during, p.message)
        } else {
            p.message.clone()
        },
    }
}

/// A snapshot file, or kubectl output (a directory or a YAML/JSON file).
fn read_snapshot(
    path: &Path,
    custom: &[kubernetes::kinds::Kind],
    skipped: &mut Vec<Skipped>,
) -> Result<Registry, SnapshotError> {
    if path.is_file() && snapshot::is_snapshot_file(path) {
        return snapshot::read(path);
    }
    let (registry, report) = snapshot::read_kubectl_output(path, "default", custom)?;
    for s in report.skipped {
        skipped.push(Skipped {
            item: "kubectl output".into(),
            location: path.display().to_string(),
            reason: s,
        });
    }
    Ok(registry)
}

async fn load_collections(
    info: &WorkspaceInfo,
    config_dir: &Path,
    resolver: &CollectionResolver,
    skipped: &mut Vec<Skipped>,
) -> Result<Vec<CodeCollection>, DiscoverError> {
    let mut loaded = Vec::new();
    let mut failures = Vec::new();
    let specs = CodeCollectionConfig::effective(info.code_collections.as_deref());
    for spec in &specs {
        let url = resolve_relative(&spec.repo_url, config_dir);
        let accepts = |bundle: &str| spec.includes_bundle(bundle);
        match collection::load(
            resolver,
            &url,
            &spec.git_ref,
            spec.repo_path.as_deref(),
            &accepts,
        )
        .await
        {
            Ok(mut c) => {
                // Templates and annotations name the collection as the config wrote it, except
                // that a relative path becomes absolute: runners do not share our directory.
                c.repo_url = url.clone();
                for w in &c.warnings {
                    skipped.push(Skipped {
                        item: "CodeCollection".into(),
                        location: spec.repo_url.clone(),
                        reason: w.clone(),
                    });
                }
                loaded.push(c);
            }
            Err(e) => {
                failures.push(e.to_string());
                skipped.push(Skipped {
                    item: "CodeCollection".into(),
                    location: spec.repo_url.clone(),
                    reason: e.to_string(),
                });
            }
        }
    }
    if loaded.is_empty() && !failures.is_empty() {
        return Err(DiscoverError::NoCollections(failures.join("; ")));
    }
    Ok(loaded)
}

/// `~/.kube/config` when it exists (`$KUBECONFIG` is read by the caller).
fn default_kubeconfig() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let path = PathBuf::from(home).join(".kube/config");
    path.is_file().then_some(path)
}

/// `./x` and `../x` are relative to the workspaceInfo file, not to where steward runs.
fn resolve_relative(url: &str, config_dir: &Path) -> String {
    if url.starts_with("./") || url.starts_with("../") {
        let joined = config_dir.join(url);
        joined
            .canonicalize()
            .unwrap_or(joined)
            .to_string_lossy()
            .into_owned()
    } else {
        url.to_string()
    }
}
