//! Renders every template of a real CodeCollection (runwhen-contrib/rw-cli-codecollection) for
//! sample resources and reports what fails and why. Not part of the normal suite: it needs a
//! local git mirror of the collection, which is read, never committed.
//!
//! ```text
//! STEWARD_RW_CLI_MIRROR=/path/to/rw-cli-codecollection.git \
//!   cargo test -p steward-discovery --test render_collection -- --ignored --nocapture
//! ```

mod support;

use serde_yaml::Value as Yaml;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use steward_discovery::render::{
    ItemInput, RenderError, Renderer, RuleSource, SlxRenderInput, WarningKind, WorkspaceContext,
    WorkspaceVars,
};
use steward_discovery::{Registry, Resource};
use steward_model::workspace::WorkspaceTree;

const DEFAULT_MIRROR: &str = "/work/.mirror/runwhen-contrib+rw-cli-codecollection/repo";
const REPO_URL: &str = "https://github.com/runwhen-contrib/rw-cli-codecollection.git";

fn export(mirror: &Path, into: &Path) -> bool {
    let archive = Command::new("git")
        .arg(format!("--git-dir={}", mirror.display()))
        .args(["archive", "--format=tar", "HEAD", "codebundles"])
        .output();
    let Some(archive) = archive.ok().filter(|o| o.status.success()) else {
        return false;
    };
    let mut tar = tar::Archive::new(archive.stdout.as_slice());
    tar.unpack(into).is_ok()
}

/// One SLX output item found in a rule file.
struct Planned {
    platform: String,
    resource_type: String,
    base_name: String,
    qualifiers: Vec<String>,
    item: ItemInput,
    rule_file: String,
}

fn text(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

fn plan(rule_file: &str, rules: &Yaml) -> Vec<Planned> {
    let spec = &rules["spec"];
    let platform = spec
        .get("platform")
        .map(text)
        .unwrap_or_else(|| "kubernetes".into());
    let mut out = Vec::new();
    for rule in spec
        .get("generationRules")
        .and_then(Yaml::as_sequence)
        .into_iter()
        .flatten()
    {
        let Some(first) = rule
            .get("resourceTypes")
            .and_then(Yaml::as_sequence)
            .and_then(|s| s.first())
        else {
            continue;
        };
        let resource_type = match first {
            Yaml::Mapping(m) => match (
                m.get("resourceType").map(text).as_deref(),
                m.get("kind"),
                m.get("group"),
            ) {
                (Some("custom"), Some(kind), Some(group)) => {
                    format!("{}.{}", text(kind), text(group))
                }
                (Some(t), _, _) => t.to_string(),
                _ => continue,
            },
            other => {
                let t = text(other);
                t.split_once(':').map(|(_, t)| t.to_string()).unwrap_or(t)
            }
        };
        let resource_type = resource_type
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        for slx in rule
            .get("slxs")
            .and_then(Yaml::as_sequence)
            .into_iter()
            .flatten()
        {
            let base_name = slx.get("baseName").map(text).unwrap_or_default();
            let base_template = slx
                .get("baseTemplateName")
                .map(text)
                .unwrap_or_else(|| base_name.clone());
            let qualifiers: Vec<String> = slx
                .get("qualifiers")
                .and_then(Yaml::as_sequence)
                .map(|q| q.iter().map(text).collect())
                .unwrap_or_default();
            for item in slx
                .get("outputItems")
                .and_then(Yaml::as_sequence)
                .into_iter()
                .flatten()
            {
                let output_type = item.get("type").map(text).unwrap_or_default();
                let template_name = item
                    .get("templateName")
                    .map(text)
                    .unwrap_or_else(|| format!("{base_template}-{output_type}.yaml"));
                let template_variables = item
                    .get("templateVariables")
                    .and_then(Yaml::as_mapping)
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (text(k), serde_json::to_value(v).unwrap_or_default()))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Planned {
                    platform: platform.clone(),
                    resource_type: resource_type.clone(),
                    base_name: base_name.clone(),
                    qualifiers: qualifiers.clone(),
                    item: ItemInput {
                        output_type,
                        template_name,
                        path: item.get("path").map(text),
                        template_variables,
                    },
                    rule_file: rule_file.to_string(),
                });
            }
        }
    }
    out
}

/// A sample resource of the type a rule matches.
fn sample(platform: &str, resource_type: &str) -> Resource {
    use support::*;
    if platform != "kubernetes" {
        let payload = serde_json::json!({
            "name": format!("sample-{resource_type}"), "id": format!("/ids/{resource_type}/sample"),
            "location": "eastus", "region": "us-east-1", "project_id": "sample-project",
            "resource_group": "sample-rg", "subscription_id": "0000-sub", "account_id": "123456789012",
            "tags": {"Name": "sample", "env": "prod"}, "url": "https://example.com/sample",
        });
        let mut r = resource(resource_type, &format!("sample-{resource_type}"), payload);
        r.platform = platform.to_string();
        r.cluster = None;
        r.context = None;
        r.namespace = None;
        r.qualified_name = format!("sample-rg/sample-{resource_type}");
        return r;
    }
    match resource_type {
        "cluster" => cluster(serde_json::json!({})),
        "namespace" => namespace(),
        "deployment" => deployment("frontend"),
        "statefulset" => statefulset("redis"),
        "daemonset" => daemonset("node-agent"),
        "service" => service("frontend"),
        "ingress" => ingress("shop"),
        "persistentvolumeclaim" => persistentvolumeclaim("data"),
        "cronjob" => job("nightly", "CronJob"),
        "job" => job("migrate", "Job"),
        "pod" => resource(
            "pod",
            "frontend-1",
            serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "frontend-1", "namespace": NAMESPACE}}),
        ),
        other => custom(other, "sample", false),
    }
}

fn output_type_of(template: &str) -> &'static str {
    let stem = template.trim_end_matches(".yaml");
    match stem.rsplit('-').next().unwrap_or_default() {
        "slx" => "slx",
        "sli" => "sli",
        "slo" => "slo",
        "workflow" => "workflow",
        _ => "runbook",
    }
}

#[test]
#[ignore = "needs a local mirror of rw-cli-codecollection (STEWARD_RW_CLI_MIRROR)"]
fn every_rw_cli_template_renders() {
    let mirror = PathBuf::from(
        std::env::var("STEWARD_RW_CLI_MIRROR").unwrap_or_else(|_| DEFAULT_MIRROR.into()),
    );
    let dir = tempfile::tempdir().unwrap();
    if !export(&mirror, dir.path()) {
        eprintln!(
            "no CodeCollection mirror at {}; nothing to do",
            mirror.display()
        );
        return;
    }
    let collection = steward_discovery::collection::read_tree(REPO_URL, dir.path()).unwrap();
    let mut renderer = Renderer::new();
    let mut failures: BTreeMap<String, String> = BTreeMap::new();
    let mut all_templates: BTreeSet<(String, String)> = BTreeSet::new();
    for bundle in &collection.bundles {
        let id = steward_discovery::render::codebundle_id(REPO_URL, "main", &bundle.name);
        for e in renderer.add_codebundle(&id, &bundle.templates) {
            failures.insert(e.template().to_string(), format!("compile: {e}"));
        }
        all_templates.extend(
            bundle
                .templates
                .keys()
                .map(|t| (bundle.name.clone(), t.clone())),
        );
    }

    let mut vars = WorkspaceVars::new("t1", "owner@example.com", "location-01");
    vars.custom = serde_json::json!({"kubeconfig_secret_name": "k8s:file@secret/kubeconfig:kubeconfig", "kubernetes_distribution_binary": "kubectl"});
    let workspace = WorkspaceContext::new(vars);
    let mut registry: Registry = support::registry(serde_json::json!({}));
    let mut rendered_ok: BTreeSet<(String, String)> = BTreeSet::new();
    let mut by_platform: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut undefined: BTreeMap<String, usize> = BTreeMap::new();
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let mut attempted: BTreeSet<(String, String)> = BTreeSet::new();
    // The inputs of every Kubernetes item, for comparing with runwhen-local outside this test.
    let mut manifest: Vec<serde_json::Value> = Vec::new();

    let mut outcome = |bundle: &str,
                       template: &str,
                       platform: &str,
                       result: Result<steward_discovery::render::RenderedItem, RenderError>,
                       files: &mut BTreeMap<String, String>| {
        let key = (bundle.to_string(), template.to_string());
        let entry = by_platform.entry(platform.to_string()).or_default();
        match result {
            Ok(item) => {
                entry.0 += 1;
                for w in &item.warnings {
                    match &w.kind {
                        WarningKind::Undefined { expression } => {
                            *undefined
                                .entry(expression.clone().unwrap_or_else(|| "?".into()))
                                .or_default() += 1;
                        }
                        WarningKind::UnsupportedInclude { name } => {
                            *undefined.entry(format!("(include {name})")).or_default() += 1
                        }
                        WarningKind::RepeatedKey { key } => {
                            *undefined
                                .entry(format!("(repeated key {key})"))
                                .or_default() += 1
                        }
                        WarningKind::TemplateVariable { name, .. } => {
                            *undefined
                                .entry(format!("(templateVariables.{name})"))
                                .or_default() += 1
                        }
                    }
                }
                if platform == "kubernetes" {
                    files.entry(item.path.clone()).or_insert(item.text);
                }
                rendered_ok.insert(key);
            }
            Err(e) => {
                entry.1 += 1;
                // The reason without the template's name, so that failures group.
                let reason = match &e {
                    RenderError::Runtime { message, .. } | RenderError::Syntax { message, .. } => {
                        message.clone()
                    }
                    RenderError::Yaml { message, .. } => format!("invalid YAML: {message}"),
                    other => other.to_string(),
                };
                failures
                    .entry(format!("{bundle}/{template} [{platform}]"))
                    .or_insert(reason);
            }
        }
    };

    for bundle in &collection.bundles {
        for rule_file in &bundle.rule_files {
            let Ok(rules) = serde_yaml::from_str::<Yaml>(&rule_file.text) else {
                continue;
            };
            for planned in plan(&rule_file.path, &rules) {
                let resource = sample(&planned.platform, &planned.resource_type);
                registry.insert_if_absent(resource.clone());
                let values: Vec<String> = planned
                    .qualifiers
                    .iter()
                    .map(|q| support::qualifier_value(&resource, q))
                    .collect();
                let input = SlxRenderInput {
                    resource: &resource,
                    registry: &registry,
                    base_name: planned.base_name.clone(),
                    name: support::slx_name("t1", &planned.base_name, &values),
                    qualifiers: planned
                        .qualifiers
                        .iter()
                        .cloned()
                        .zip(values.iter().cloned())
                        .collect(),
                    child_resource_names: if planned.qualifiers.iter().any(|q| q == "resource") {
                        vec![]
                    } else {
                        vec![resource.name.clone()]
                    },
                    resources: BTreeMap::new(),
                    source: RuleSource {
                        repo_url: REPO_URL.into(),
                        git_ref: "main".into(),
                        codebundle: bundle.name.clone(),
                        rule_file_path: planned.rule_file.clone(),
                    },
                };
                let slx = workspace.slx(&input);
                attempted.insert((bundle.name.clone(), planned.item.template_name.clone()));
                if planned.platform == "kubernetes" {
                    manifest.push(serde_json::json!({
                        "bundle": bundle.name, "template": planned.item.template_name,
                        "output_type": planned.item.output_type, "path": renderer.prepare(&slx, &planned.item).map(|p| p.path).ok(),
                        "template_variables": planned.item.template_variables, "rule_file": planned.rule_file,
                        "resource": resource, "base_name": planned.base_name, "slx_name": input.name.full,
                        "directory": input.name.directory, "qualifiers": input.qualifiers,
                        "child_resource_names": input.child_resource_names,
                    }));
                }
                outcome(
                    &bundle.name,
                    &planned.item.template_name,
                    &planned.platform,
                    renderer.render_item(&slx, &planned.item),
                    &mut files,
                );
            }
        }
    }
    // Templates no rule refers to: render them for a deployment.
    let deployment = support::deployment("frontend");
    for (bundle, template) in all_templates.difference(&attempted) {
        let values = vec![
            "frontend".to_string(),
            support::NAMESPACE.into(),
            support::CLUSTER.into(),
        ];
        let input = SlxRenderInput {
            resource: &deployment,
            registry: &registry,
            base_name: "unreferenced".into(),
            name: support::slx_name("t1", "unreferenced", &values),
            qualifiers: ["resource", "namespace", "cluster"]
                .iter()
                .map(|q| q.to_string())
                .zip(values.clone())
                .collect(),
            child_resource_names: vec![],
            resources: BTreeMap::new(),
            source: RuleSource {
                repo_url: REPO_URL.into(),
                git_ref: "main".into(),
                codebundle: bundle.clone(),
                rule_file_path: String::new(),
            },
        };
        let slx = workspace.slx(&input);
        let item = ItemInput {
            output_type: output_type_of(template).into(),
            template_name: template.clone(),
            path: None,
            template_variables: Default::default(),
        };
        outcome(
            bundle,
            template,
            "unreferenced",
            renderer.render_item(&slx, &item),
            &mut files,
        );
    }

    let ws = renderer.render_workspace(&workspace, &[], &[]).unwrap();
    files.insert(ws.path, ws.text);
    let tree = WorkspaceTree::from_files(files.clone()).expect("workspace.yaml loads");
    if let Ok(out) = std::env::var("STEWARD_RENDER_DUMP") {
        let registry_dump: Vec<&Resource> = registry.iter().collect();
        let inputs = serde_json::json!({"items": manifest, "registry": registry_dump, "custom": workspace.vars().custom});
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(
            Path::new(&out).join("inputs.json"),
            serde_json::to_string_pretty(&inputs).unwrap(),
        )
        .unwrap();
        for (path, text) in &files {
            let target = Path::new(&out).join(path);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(target, text).unwrap();
        }
    }

    println!("templates: {}", all_templates.len());
    println!("templates rendered at least once: {}", rendered_ok.len());
    for (platform, (ok, failed)) in &by_platform {
        println!("  {platform}: {ok} items rendered, {failed} failed");
    }
    println!("failures ({}), by reason:", failures.len());
    let mut by_reason: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (what, why) in &failures {
        by_reason.entry(why).or_default().push(what);
    }
    for (why, what) in &by_reason {
        println!(
            "  {} x {why}: {}{}",
            what.len(),
            what[..what.len().min(3)].join(", "),
            if what.len() > 3 { ", ..." } else { "" }
        );
    }
    println!("warnings (undefined expression or message: items):");
    for (expr, n) in &undefined {
        println!("  {expr}: {n}");
    }
    println!(
        "workspace loader: {} SLXs loaded, {} skipped, problems: {:?}",
        tree.slxs.len(),
        tree.skipped_slxs.len(),
        tree.problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
    );
    let kubernetes_failures: Vec<&String> = failures
        .keys()
        .filter(|k| k.ends_with("[kubernetes]"))
        .collect();
    assert!(
        kubernetes_failures.is_empty(),
        "Kubernetes templates failed: {kubernetes_failures:?}"
    );
    assert!(
        tree.problems.is_empty(),
        "the workspace loader refused rendered files"
    );
}
