//! Workspace builder benchmark: a synthetic cluster of 10,000 objects (200 namespaces with
//! deployments, statefulsets, services, ingresses and pods) against a synthetic CodeCollection
//! of 100 generation rules in 50 codebundles.
//!
//!     cargo bench -p steward-discovery --bench generate                  # everything, 5 runs each
//!     cargo bench -p steward-discovery --bench generate -- snapshot runs=10
//!     cargo bench -p steward-discovery --bench generate -- breakdown     # time and memory per step
//!     cargo bench -p steward-discovery --bench generate -- keep runs=1   # keep the inputs to profile
//!
//! Parts: `snapshot` (generate from a Steward snapshot), `snapshot-disk` (the same, the tree
//! written to the disk), `kubectl` (from `kubectl get -o yaml` List files), `index` (list the
//! objects from the in-memory API server), `live` (generate from that server end to end),
//! `breakdown` (the snapshot run step by step, with the resident set after each step). Trees
//! are written to `/dev/shm` except in `snapshot-disk`, so that the figures are Steward's
//! rather than the file system's; each run starts without a tree (and so without a name
//! ledger).
//!
//! Every measured run is a fresh child process (this binary again, told what to do through
//! the environment), so its peak RSS (`VmHWM`) is that run's alone and nothing is warm but the
//! page cache. The API server runs in this parent process: its memory is not counted, its CPU
//! shares the machine with the child.

#[path = "generate/cluster.rs"]
mod cluster;
#[path = "generate/collection.rs"]
mod collection;

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;
use steward_discovery::collection::CodeCollection;
use steward_discovery::config::WorkspaceInfo;
use steward_discovery::engine::{self, RuleSet};
use steward_discovery::kubernetes::{NamespacePolicy, Silent, index};
use steward_discovery::naming::Ledger;
use steward_discovery::rules::{
    GenerationRule, MatchContext, PayloadFilter, PropertyPath, RuleFile, Subject,
};
use steward_discovery::{DiscoverOptions, discover, output, snapshot};
use steward_model::workspace::WorkspaceTree;
use steward_testkit::kube::{KubeApiServer, write_kubeconfig};

/// Set in a child: which part to run.
const PART: &str = "STEWARD_BENCH_PART";
/// Set in a child: the benchmark's work directory.
const WORK: &str = "STEWARD_BENCH_DIR";
/// Set in a child: where to write the workspace tree.
const OUT: &str = "STEWARD_BENCH_OUT";
/// The child's result line starts with this.
const RESULT: &str = "bench-result ";
const CLUSTER: &str = "prod-us";
const PARTS: &[&str] = &[
    "snapshot",
    "snapshot-disk",
    "kubectl",
    "index",
    "live",
    "breakdown",
];

fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    if let Ok(part) = std::env::var(PART) {
        let work = PathBuf::from(std::env::var(WORK).expect("the parent sets the work directory"));
        let out = PathBuf::from(std::env::var(OUT).expect("the parent sets the output directory"));
        let result = child(&part, &work, &out);
        println!("{RESULT}{result}");
        return;
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let runs: usize = args
        .iter()
        .find_map(|a| a.strip_prefix("runs="))
        .map(|n| n.parse().expect("runs=<number>"))
        .unwrap_or(5);
    let named: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| PARTS.contains(a))
        .collect();
    let wanted = |part: &str| named.is_empty() || named.contains(&part);

    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().to_path_buf();
    let work = work.as_path();
    if args.iter().any(|a| a == "keep") {
        // For profiling by hand: the inputs stay (`steward discover --from-snapshot ...`).
        println!("inputs kept in {}", dir.keep().display());
    }
    // The tree goes to memory (tmpfs) so that what is measured is Steward, not the disk, whose
    // cost per created file varies by an order of magnitude with what was deleted before.
    // `snapshot-disk` writes it to the disk, to show that cost.
    let memory = Path::new("/dev/shm");
    let memory_dir = memory
        .is_dir()
        .then(|| tempfile::tempdir_in(memory).unwrap());
    let out = memory_dir
        .as_ref()
        .map(|d| d.path())
        .unwrap_or(work)
        .join("out");
    let disk_out = work.join("out");
    let objects = prepare(work);
    let mut rows = Vec::new();
    for (part, out) in [
        ("snapshot", &out),
        ("snapshot-disk", &disk_out),
        ("kubectl", &out),
    ] {
        if wanted(part) {
            rows.push(measure(part, work, out, runs, None));
        }
    }
    if wanted("index") || wanted("live") {
        let started = Instant::now();
        let server = KubeApiServer::builder().objects(objects).start();
        assert!(
            server.seed_problems().is_empty(),
            "{:?}",
            server.seed_problems()
        );
        println!(
            "API server seeded in {:.1} s (in this process, {} MB RSS)",
            started.elapsed().as_secs_f64(),
            rss_kib("VmRSS:") / 1024
        );
        // The context (and so the cluster) is named as the kubectl output's cluster directory.
        write_kubeconfig(
            &work.join("kubeconfig"),
            &[server.context(CLUSTER, KubeApiServer::ADMIN_TOKEN)],
        )
        .unwrap();
        for part in ["index", "live"] {
            if wanted(part) {
                rows.push(measure(part, work, &out, runs, Some(&server)));
            }
        }
    }
    if !rows.is_empty() {
        print_table(&rows);
    }
    if wanted("breakdown") {
        breakdown(work, &out);
    }
}

/// Writes the collection, the configurations, the kubectl output and the snapshot; returns
/// the objects for the API server.
fn prepare(work: &Path) -> Vec<Value> {
    let started = Instant::now();
    let written = collection::write(&work.join("collection")).unwrap();
    std::fs::write(
        work.join("workspaceInfo.yaml"),
        collection::workspace_info(&work.join("collection"), None),
    )
    .unwrap();
    std::fs::create_dir_all(work.join("live")).unwrap();
    std::fs::write(
        work.join("live/workspaceInfo.yaml"),
        collection::workspace_info(&work.join("collection"), Some(&work.join("kubeconfig"))),
    )
    .unwrap();
    let kubectl = work.join("kubectl").join(CLUSTER);
    std::fs::create_dir_all(&kubectl).unwrap();
    let mut all = Vec::new();
    let mut yaml_bytes = 0;
    for (stem, items) in cluster::objects() {
        let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items});
        let text = serde_yaml::to_string(&list).unwrap();
        yaml_bytes += text.len();
        std::fs::write(kubectl.join(format!("{stem}.yaml")), text).unwrap();
        all.extend(items);
    }
    // The snapshot is what `steward discover --snapshot-out` writes after indexing.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let summary = runtime
        .block_on(discover(
            &DiscoverOptions {
                config: work.join("workspaceInfo.yaml"),
                from_snapshot: Some(work.join("kubectl")),
                snapshot_out: Some(work.join("snapshot.jsonl")),
                index_only: true,
                cache_dir: work.join("cache"),
                ..Default::default()
            },
            Arc::new(Silent),
        ))
        .unwrap()
        .summary;
    let snapshot_bytes = std::fs::metadata(work.join("snapshot.jsonl"))
        .unwrap()
        .len();
    println!(
        "prepared in {:.1} s: {} objects in {} namespaces ({:.1} MB of kubectl YAML), snapshot of {} resources ({:.1} MB), {} codebundles with {} rules",
        started.elapsed().as_secs_f64(),
        all.len(),
        cluster::NAMESPACES,
        yaml_bytes as f64 / 1e6,
        summary.resources.values().sum::<usize>(),
        snapshot_bytes as f64 / 1e6,
        written.bundles,
        written.rules,
    );
    all
}

/// One part's runs, each in a fresh child.
struct Row {
    part: &'static str,
    runs: Vec<Value>,
    /// List calls the API server answered per run.
    server_lists: Vec<usize>,
    /// Bytes of the tree written by the first run.
    tree_bytes: u64,
}

fn measure(
    part: &'static str,
    work: &Path,
    out: &Path,
    runs: usize,
    server: Option<&KubeApiServer>,
) -> Row {
    let mut row = Row {
        part,
        runs: Vec::new(),
        server_lists: Vec::new(),
        tree_bytes: 0,
    };
    // Every run writes a new directory and nothing is deleted until the part is done: on this
    // machine's disk, creating files right after deleting many is several times slower.
    let base = out;
    for i in 0..runs {
        let out = &base.join(format!("run-{i}"));
        if let Some(server) = server {
            server.reset_counts();
        }
        let output = Command::new(std::env::current_exe().unwrap())
            .env(PART, part)
            .env(WORK, work)
            .env(OUT, out)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let Some(line) = stdout.lines().find_map(|l| l.strip_prefix(RESULT)) else {
            panic!(
                "{part}: the child failed ({}):\n{stdout}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let result: Value = serde_json::from_str(line).unwrap();
        if let Some(server) = server {
            let lists = server
                .request_counts()
                .iter()
                .filter(|((verb, _), _)| verb == "list")
                .map(|(_, n)| n)
                .sum();
            row.server_lists.push(lists);
        }
        if i == 0 {
            if result.get("slxs").is_some() {
                check_tree(part, out, &result);
            }
            row.tree_bytes = tree_bytes(out);
            if let Some(skipped) = result["skippedSample"].as_array().filter(|s| !s.is_empty()) {
                println!(
                    "{part}: {} items skipped, for example: {skipped:?}",
                    result["skipped"]
                );
            }
        }
        println!(
            "{part} run {}: {:.0} ms, peak RSS {:.1} MB",
            i + 1,
            result["wallMs"].as_f64().unwrap_or_default(),
            result["hwmKib"].as_f64().unwrap_or_default() / 1024.0
        );
        row.runs.push(result);
    }
    let _ = std::fs::remove_dir_all(base);
    row
}

/// The first run's tree must load as the platform loads it, with every SLX.
fn check_tree(part: &str, out: &Path, result: &Value) {
    let tree =
        WorkspaceTree::load(out).unwrap_or_else(|e| panic!("{part}: the tree does not load: {e}"));
    let problems: Vec<String> = tree
        .problems
        .iter()
        .take(5)
        .map(|p| format!("{p:?}"))
        .collect();
    assert!(
        problems.is_empty(),
        "{part}: the tree has problems: {problems:?}"
    );
    assert_eq!(
        Some(tree.slxs.len() as u64),
        result["slxs"].as_u64(),
        "{part}: SLXs in the tree"
    );
}

fn tree_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_bytes(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| part | runs | wall median | wall max | peak RSS (max) | resources | SLXs | files | tree | list calls |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        let mut walls: Vec<f64> = row
            .runs
            .iter()
            .map(|r| r["wallMs"].as_f64().unwrap_or_default())
            .collect();
        walls.sort_by(f64::total_cmp);
        let median = walls[walls.len() / 2];
        let max = walls.last().copied().unwrap_or_default();
        let hwm = row
            .runs
            .iter()
            .map(|r| r["hwmKib"].as_u64().unwrap_or_default())
            .max()
            .unwrap_or_default();
        let first = &row.runs[0];
        let field = |key: &str| {
            first
                .get(key)
                .filter(|v| !v.is_null())
                .map(Value::to_string)
                .unwrap_or_else(|| "–".into())
        };
        let lists = match (row.server_lists.first(), first.get("requests")) {
            (Some(server), Some(client)) => format!("{client} (server counted {server})"),
            (Some(server), None) => format!("{server} (server)"),
            _ => "–".into(),
        };
        let tree = if row.tree_bytes > 0 {
            format!("{:.1} MB", row.tree_bytes as f64 / 1e6)
        } else {
            "–".into()
        };
        println!(
            "| {} | {} | {median:.0} ms | {max:.0} ms | {:.1} MB | {} | {} | {} | {tree} | {lists} |",
            row.part,
            row.runs.len(),
            hwm as f64 / 1024.0,
            field("resources"),
            field("slxs"),
            field("files"),
        );
    }
    println!();
}

/// `/proc/self/status` field in KiB (`VmHWM:` is the peak resident set).
fn rss_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs one part in this (child) process and returns its figures.
fn child(part: &str, work: &Path, out: &Path) -> Value {
    // The CLI's runtime: multi-threaded, one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut result = match part {
        "snapshot" | "snapshot-disk" => runtime.block_on(generate(
            work,
            out,
            &work.join("workspaceInfo.yaml"),
            Some(work.join("snapshot.jsonl")),
        )),
        "kubectl" => runtime.block_on(generate(
            work,
            out,
            &work.join("workspaceInfo.yaml"),
            Some(work.join("kubectl")),
        )),
        "live" => runtime.block_on(generate(
            work,
            out,
            &work.join("live/workspaceInfo.yaml"),
            None,
        )),
        "index" => runtime.block_on(index_only(work)),
        "breakdown" => runtime.block_on(steps(work, out)),
        other => panic!("unknown part {other}"),
    };
    result["hwmKib"] = json!(rss_kib("VmHWM:"));
    result
}

/// `discover` end to end: configuration, rules, resources, generation, the tree on disk.
async fn generate(work: &Path, out: &Path, config: &Path, from: Option<PathBuf>) -> Value {
    let options = DiscoverOptions {
        config: config.into(),
        from_snapshot: from,
        out: Some(out.into()),
        cache_dir: work.join("cache"),
        ..Default::default()
    };
    let started = Instant::now();
    let run = discover(&options, Arc::new(Silent))
        .await
        .expect("discovery runs");
    let wall = started.elapsed();
    let s = &run.summary;
    let sample: Vec<String> = s
        .skipped
        .iter()
        .take(5)
        .map(|k| format!("{}: {} ({})", k.item, k.reason, k.location))
        .collect();
    json!({
        "wallMs": wall.as_secs_f64() * 1e3,
        "resources": s.resources.values().sum::<usize>(),
        "slxs": s.slxs,
        "files": s.files,
        "skipped": s.skipped.len(),
        "skippedSample": sample,
    })
}

/// Indexing alone, as `discover` does it for a kubeconfig: every context, every built-in kind.
async fn index_only(work: &Path) -> Value {
    let (info, _) = WorkspaceInfo::load(&work.join("live/workspaceInfo.yaml")).unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(work.join("kubeconfig")).unwrap();
    let started = Instant::now();
    let targets = index::targets_from_kubeconfig(&kubeconfig, &[]).await;
    let policy: Arc<dyn NamespacePolicy> = Arc::new(info);
    let result = index::index(targets, &[], policy, Arc::new(Silent)).await;
    let wall = started.elapsed();
    assert!(result.problems.is_empty(), "{:?}", result.problems);
    json!({
        "wallMs": wall.as_secs_f64() * 1e3,
        "resources": result.registry.len(),
        "requests": result.requests,
    })
}

/// The snapshot run's steps one by one, with the resident set after each.
async fn steps(work: &Path, out: &Path) -> Value {
    let mut steps: Vec<Value> = Vec::new();
    let mut clock = Instant::now();
    let mut step = |name: &str, detail: String| {
        steps.push(json!({"step": name, "ms": clock.elapsed().as_secs_f64() * 1e3, "rssKib": rss_kib("VmRSS:"), "hwmKib": rss_kib("VmHWM:"), "detail": detail}));
        clock = Instant::now();
    };
    let (info, _) = WorkspaceInfo::load(&work.join("workspaceInfo.yaml")).unwrap();
    step("read workspaceInfo.yaml", String::new());
    let collection = steward_discovery::collection::read_tree(
        &work.join("collection").display().to_string(),
        &work.join("collection"),
    )
    .unwrap();
    let collections: Vec<CodeCollection> = vec![collection];
    step(
        "read the collection",
        format!("{} codebundles", collections[0].bundles.len()),
    );
    let mut skipped = Vec::new();
    let rules = RuleSet::load(&info, &collections, &mut skipped);
    step("parse rules", format!("{} rules", rules.rule_count()));
    let registry = snapshot::read(&work.join("snapshot.jsonl")).unwrap();
    step("read the snapshot", format!("{} resources", registry.len()));
    let matched = match_only(&info, &collections, &registry);
    step("match only (one core)", format!("{matched} matches"));
    let mode = info.slx_name_mode.unwrap_or_default();
    let mut ledger = Ledger::new(&info.workspace_name, mode);
    // Held here to measure rendering apart from writing; `discover` writes as it renders.
    let mut files = BTreeMap::new();
    let generated = engine::generate(
        &info,
        &rules,
        &registry,
        mode,
        &mut ledger,
        &mut |path, text| {
            files.insert(path, text);
        },
    );
    let bytes: usize = files.values().map(String::len).sum();
    step(
        "generate (match, name, render)",
        format!(
            "{} SLXs, {} files, {:.1} MB",
            generated.slxs,
            files.len(),
            bytes as f64 / 1e6
        ),
    );
    let families = by_family(&files);
    step("(SLXs by codebundle family)", families);
    output::write_tree(out, &files).unwrap();
    step("write the tree", String::new());
    drop(files);
    drop(registry);
    step("free the registry and files", String::new());
    json!({"steps": steps})
}

/// Matching alone, on one core: each resource parsed at most once (the parts its rules read)
/// and tried against every rule that lists its type, as `generate` does (which spreads it over
/// the cores).
fn match_only(
    info: &WorkspaceInfo,
    collections: &[CodeCollection],
    registry: &steward_discovery::Registry,
) -> usize {
    let variables = info.variables();
    let mut by_type: BTreeMap<String, Vec<GenerationRule>> = BTreeMap::new();
    for bundle in collections.iter().flat_map(|c| &c.bundles) {
        for file in &bundle.rule_files {
            let Ok(parsed) = RuleFile::parse(&file.text, &file.path) else {
                continue;
            };
            for rule in parsed.rules {
                let types: BTreeSet<String> = rule
                    .resource_types
                    .iter()
                    .map(|s| s.reference.registry_type())
                    .collect();
                for t in types {
                    by_type.entry(t).or_default().push(rule.clone());
                }
            }
        }
    }
    let mut ctx = MatchContext::new(registry, &variables);
    let mut matched = 0;
    for (resource_type, rules) in &by_type {
        let mut filter = PayloadFilter::default();
        filter.add_path(&PropertyPath::new("apiVersion"));
        for p in rules.iter().flat_map(|r| &r.match_rules) {
            filter.add_predicate(p);
        }
        let filter = Arc::new(filter);
        for resource in registry.of_type(resource_type) {
            let subject = Subject::filtered(resource, filter.clone());
            for rule in rules {
                if rule
                    .resource_types
                    .iter()
                    .any(|s| s.accepts_subject(&subject))
                {
                    matched += usize::from(rule.matches_subject(&subject, &mut ctx).is_some());
                }
            }
        }
    }
    matched
}

fn breakdown(work: &Path, out: &Path) {
    let output = Command::new(std::env::current_exe().unwrap())
        .env(PART, "breakdown")
        .env(WORK, work)
        .env(OUT, out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(RESULT))
        .unwrap_or_else(|| {
            panic!(
                "breakdown failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    let result: Value = serde_json::from_str(line).unwrap();
    println!("| step (from the snapshot) | ms | RSS after | peak RSS so far | |");
    println!("|---|---|---|---|---|");
    for step in result["steps"].as_array().into_iter().flatten() {
        println!(
            "| {} | {:.0} | {:.1} MB | {:.1} MB | {} |",
            step["step"].as_str().unwrap_or_default(),
            step["ms"].as_f64().unwrap_or_default(),
            step["rssKib"].as_f64().unwrap_or_default() / 1024.0,
            step["hwmKib"].as_f64().unwrap_or_default() / 1024.0,
            step["detail"].as_str().unwrap_or_default(),
        );
    }
    let _ = std::fs::remove_dir_all(out);
}

/// SLXs per codebundle family (`k8s-deploy-*`...), counted by the robot their runbook runs.
fn by_family(files: &BTreeMap<String, String>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (path, text) in files {
        if !path.ends_with("/runbook.yaml") {
            continue;
        }
        let Some(at) = text.find("codebundles/k8s-") else {
            continue;
        };
        let rest = &text[at + "codebundles/k8s-".len()..];
        let family = rest.split(['-', '/']).next().unwrap_or_default();
        *counts.entry(family).or_default() += 1;
    }
    counts
        .iter()
        .map(|(f, n)| format!("{f} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
