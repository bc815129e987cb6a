//! Rendering templates we wrote (`fixtures/render/demo-health/`) for sample Kubernetes
//! resources, compared byte for byte with `golden/render/`. Run with `STEWARD_BLESS=1` to
//! rewrite the golden files after an intended change, then review the diff.

mod support;

use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use steward_discovery::config::CodebundleOverride;
use steward_discovery::render::{
    ItemInput, MISSING_PLACEHOLDER, RenderError, RenderedItem, Renderer, RuleSource, SlxGroup,
    SlxRelationship, SlxRenderInput, WarningKind, WorkspaceContext, WorkspaceVars, codebundle_id,
};
use steward_discovery::{Registry, Resource};
use steward_model::workspace::WorkspaceTree;

const REPO: &str = "https://example.com/demo-collection.git";
const BUNDLE: &str = "demo-health";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compares with `tests/golden/<name>`, or writes it when `STEWARD_BLESS=1`.
fn golden(name: &str, actual: &str) {
    let path = manifest_dir().join("tests/golden").join(name);
    if std::env::var("STEWARD_BLESS").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with STEWARD_BLESS=1 to create it",
            path.display()
        )
    });
    assert!(
        actual == expected,
        "{} differs (STEWARD_BLESS=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

fn templates() -> BTreeMap<String, String> {
    let dir = manifest_dir().join("tests/fixtures/render").join(BUNDLE);
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p: PathBuf| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

fn renderer() -> Renderer {
    let mut r = Renderer::new();
    let errors = r.add_codebundle(&codebundle_id(REPO, "main", BUNDLE), &templates());
    assert!(errors.is_empty(), "{errors:?}");
    r
}

fn source() -> RuleSource {
    RuleSource {
        repo_url: REPO.into(),
        git_ref: "main".into(),
        codebundle: BUNDLE.into(),
        rule_file_path: format!("codebundles/{BUNDLE}/.runwhen/generation-rules/{BUNDLE}.yaml"),
    }
}

fn vars(custom: serde_json::Value) -> WorkspaceVars {
    let mut vars = WorkspaceVars::new("ws", "owner@example.com", "loc-1");
    vars.location_name = Some("Location One".into());
    vars.custom = custom;
    vars
}

fn kubeconfig_custom() -> serde_json::Value {
    json!({"kubeconfig_secret_name": "k8s:file@secret/kubeconfig:kubeconfig"})
}

fn input<'a>(
    resource: &'a Resource,
    registry: &'a Registry,
    base: &str,
    qualifiers: &[&str],
) -> SlxRenderInput<'a> {
    let values: Vec<String> = qualifiers
        .iter()
        .map(|q| support::qualifier_value(resource, q))
        .collect();
    SlxRenderInput {
        resource,
        registry,
        base_name: base.into(),
        name: support::slx_name("ws", base, &values),
        qualifiers: qualifiers
            .iter()
            .map(|q| q.to_string())
            .zip(values)
            .collect(),
        child_resource_names: if qualifiers.contains(&"resource") {
            vec![]
        } else {
            vec![resource.name.clone()]
        },
        resources: BTreeMap::new(),
        source: source(),
    }
}

fn item(output_type: &str, template: &str, variables: serde_json::Value) -> ItemInput {
    ItemInput {
        output_type: output_type.into(),
        template_name: template.into(),
        path: None,
        template_variables: variables.as_object().cloned().unwrap_or_default(),
    }
}

fn render_deployment(
    workspace: &WorkspaceContext,
    item: &ItemInput,
) -> Result<RenderedItem, RenderError> {
    let registry = support::registry(json!({}));
    let deployment = registry
        .get("deployment", "prod-cluster/online-boutique/frontend")
        .unwrap()
        .clone();
    let slx = workspace.slx(&input(
        &deployment,
        &registry,
        "depl-health",
        &["resource", "namespace", "cluster"],
    ));
    renderer().render_item(&slx, item)
}

#[test]
fn a_deployment_slx_renders_with_includes_methods_and_whitespace_control() {
    let workspace = WorkspaceContext::new(vars(kubeconfig_custom()));
    let out =
        render_deployment(&workspace, &item("slx", "demo-health-slx.yaml", json!({}))).unwrap();
    assert_eq!(
        out.path,
        "slxs/frontend-online-boutique-prod-cluster-depl-health-74582bf1/slx.yaml"
    );
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    golden("render/deployment-slx.yaml", &out.text);
}

/// The text before post-processing, where Jinja2's whitespace rules show: `trim_blocks`,
/// `lstrip_blocks` and the dropped trailing newline of each include.
#[test]
fn the_raw_render_keeps_jinja2_whitespace_control() {
    let registry = support::registry(json!({}));
    let deployment = registry
        .get("deployment", "prod-cluster/online-boutique/frontend")
        .unwrap()
        .clone();
    let workspace = WorkspaceContext::new(vars(kubeconfig_custom()));
    let slx = workspace.slx(&input(
        &deployment,
        &registry,
        "depl-health",
        &["resource", "namespace", "cluster"],
    ));
    let r = renderer();
    let prepared = r
        .prepare(&slx, &item("slx", "demo-health-slx.yaml", json!({})))
        .unwrap();
    let raw = r
        .render_named(&prepared.template, prepared.variables())
        .unwrap();
    golden("render/deployment-slx.raw.txt", &raw.text);
}

#[test]
fn template_variables_render_as_templates_and_secrets_are_deduplicated() {
    let workspace = WorkspaceContext::new(vars(kubeconfig_custom()));
    let variables = json!({
        "threshold": "{{ custom.threshold | default('5') }}",
        "ns": "namespace",
        "upper_name": "{{ match_resource.name | upper }}",
        "derived": "{{ upper_name }}-{{ threshold }}",
    });
    let out =
        render_deployment(&workspace, &item("sli", "demo-health-sli.yaml", variables)).unwrap();
    assert_eq!(
        out.path,
        "slxs/frontend-online-boutique-prod-cluster-depl-health-74582bf1/sli.yaml"
    );
    golden("render/deployment-sli.yaml", &out.text);
}

#[test]
fn slx_variables_and_naming_functions_render_as_upstream_names_them() {
    let registry = support::registry(json!({"cluster_type": "aks", "subscription_id": "sub-1"}));
    let deployment = registry
        .get("deployment", "prod-cluster/online-boutique/frontend")
        .unwrap()
        .clone();
    let workspace = WorkspaceContext::new(vars(kubeconfig_custom()));
    let slx = workspace.slx(&input(
        &deployment,
        &registry,
        "depl-health",
        &["resource", "namespace", "cluster"],
    ));
    let r = renderer();
    let render = |source: &str| r.render_str("t", source, slx.variables()).map(|o| o.text);
    assert_eq!(
        render("{{ shorten_name('k8s-deployment-healthcheck', 15) }}").unwrap(),
        "k8s-dply-hlth"
    );
    assert_eq!(
        render("{{ make_slx_directory_name('depl-health', ['frontend', 'online-boutique', 'prod-cluster']) }}").unwrap(),
        "frontend-online-boutique-prod-cluster-depl-health-74582bf1"
    );
    assert_eq!(
        render("{{ make_slx_name('my-ws', 'a/b') }}").unwrap(),
        "my-ws--a-b"
    );
    assert!(render("{{ shorten_name('a-b', 2, separator='_') }}").is_err());
    assert_eq!(
        render("{{ full_slx_name }} {{ slx_directory_path }} {{ base_name }} {{ slx_name.split('--')[1] == full_slx_name }}").unwrap(),
        "frontend-online-boutique-prod-cluster-depl-health-74582bf1 workspaces/ws/slxs/frontend-online-boutique-prod-cluster-depl-health-74582bf1 depl-health True"
    );
    assert_eq!(
        render("{{ match_resource.resource_type.name }}/{{ match_resource.resource_type.platform.name }} {{ match_resource.kind }} {{ match_resource.namespace.name }} {{ namespace.cluster.name }} {{ cluster.context }} {{ context }} {{ subscription_id }} {{ cluster.cluster_type }}").unwrap(),
        "deployment/kubernetes Deployment online-boutique prod-cluster prod-ctx prod-ctx sub-1 aks"
    );
    assert_eq!(
        render("{{ qualifiers }} {{ child_resource_names }} {{ match_resource.cluster is defined }} {{ cluster.resource is defined }}").unwrap(),
        "{'resource': 'frontend', 'namespace': 'online-boutique', 'cluster': 'prod-cluster'} [] False False"
    );

    // A `qualifiers` list among templateVariables picks variables into the dict, as upstream.
    let item = item(
        "slx",
        "demo-health-slx.yaml",
        json!({"qualifiers": ["resource", "extra", "missing"], "resource": "frontend", "extra": "{{ context }}"}),
    );
    let prepared = r.prepare(&slx, &item).unwrap();
    // A template variable hides the SLX's and the platform's variable of the same name.
    let shadow = ItemInput {
        template_variables: json!({"context": "from-the-rule", "base_name": "{{ context }}!"})
            .as_object()
            .cloned()
            .unwrap(),
        ..item.clone()
    };
    let shadowed = r.prepare(&slx, &shadow).unwrap();
    let text = r.render_str("t", "{{ context }} {{ base_name }}", shadowed.variables());
    assert_eq!(text.unwrap().text, "from-the-rule from-the-rule!");
    let text = r
        .render_str("t", "{{ qualifiers }}", prepared.variables())
        .unwrap()
        .text;
    assert_eq!(
        text,
        "{'resource': 'frontend', 'extra': 'prod-ctx', 'missing': 'undefined_missing'}"
    );
}

/// runwhen-local issue #456: an undefined `custom.*` value rendered as nothing and broke the
/// YAML; it renders as a placeholder, and the warning names the variable and the line.
#[test]
fn an_undefined_custom_variable_renders_as_the_placeholder_and_is_reported() {
    let workspace = WorkspaceContext::new(vars(kubeconfig_custom()));
    let variables = json!({"threshold": "1", "ns": "namespace", "upper_name": "x", "derived": "y"});
    let out =
        render_deployment(&workspace, &item("sli", "demo-health-sli.yaml", variables)).unwrap();
    assert!(
        out.text
            .contains(&format!("value: {MISSING_PLACEHOLDER}\n")),
        "{}",
        out.text
    );
    let undefined: Vec<_> = out
        .warnings
        .iter()
        .filter_map(|w| match &w.kind {
            WarningKind::Undefined { expression } => {
                Some((w.template.as_str(), w.line, expression.as_deref()))
            }
            _ => None,
        })
        .collect();
    let template = format!(
        "{}/.runwhen/templates/demo-health-sli.yaml",
        codebundle_id(REPO, "main", BUNDLE)
    );
    assert_eq!(
        undefined,
        [(
            template.as_str(),
            Some(23),
            Some("custom.kubernetes_distribution")
        )]
    );
    let message = out.warnings[0].to_string();
    assert!(
        message.contains("`custom.kubernetes_distribution` is undefined"),
        "{message}"
    );
}

#[test]
fn overrides_become_variables_and_patch_the_rendered_config_provided() {
    let mut vars = vars(kubeconfig_custom());
    let config = |pairs: serde_json::Value| pairs.as_object().cloned().unwrap();
    vars.overrides = vec![
        CodebundleOverride {
            repo_url: REPO.into(),
            codebundle_directory: BUNDLE.into(),
            item_type: "runbook".into(),
            config_provided: config(json!({"THRESHOLD": 7, "LOOKBACK": "2h", "ABSENT": "x"})),
        },
        CodebundleOverride {
            repo_url: REPO.into(),
            codebundle_directory: BUNDLE.into(),
            item_type: "sli".into(),
            config_provided: config(json!({"LOOKBACK": "never for a runbook"})),
        },
        CodebundleOverride {
            repo_url: "https://example.com/other.git".into(),
            codebundle_directory: BUNDLE.into(),
            item_type: "runbook".into(),
            config_provided: config(json!({"LOOKBACK": "other collection"})),
        },
    ];
    let workspace = WorkspaceContext::new(vars);
    let out = render_deployment(
        &workspace,
        &item("runbook", "demo-health-taskset.yaml", json!({})),
    )
    .unwrap();
    assert_eq!(
        out.path,
        "slxs/frontend-online-boutique-prod-cluster-depl-health-74582bf1/runbook.yaml"
    );
    golden("render/deployment-runbook.yaml", &out.text);
}

/// runwhen-local PR #795 (bug 16 of the contract): a cluster-level SLX listed its cluster twice
/// in resourcePath. Also checks tag values become strings and repeated tags are dropped.
#[test]
fn a_rendered_cluster_level_slx_names_its_cluster_once_and_tags_become_strings() {
    let registry = support::registry(json!({}));
    let cluster = registry.get("cluster", support::CLUSTER).unwrap().clone();
    let workspace = WorkspaceContext::new(vars(kubeconfig_custom()));
    let slx = workspace.slx(&input(&cluster, &registry, "cluster-health", &["cluster"]));
    let out = renderer()
        .render_item(&slx, &item("slx", "demo-cluster-slx.yaml", json!({})))
        .unwrap();
    assert!(
        out.text.contains("resourcePath: kubernetes/prod-cluster\n"),
        "{}",
        out.text
    );
    golden("render/cluster-slx.yaml", &out.text);
}

#[test]
fn the_rendered_kubeconfig_secret_follows_the_cluster_kind_and_workspace_settings() {
    let cases: Vec<(
        &str,
        serde_json::Value,
        serde_json::Value,
        serde_json::Value,
    )> = vec![
        (
            "plain cluster, custom.kubeconfig_secret_name",
            json!({}),
            kubeconfig_custom(),
            json!({}),
        ),
        (
            "plain cluster, custom.kubeconfig_key",
            json!({}),
            json!({"kubeconfig_key": "kubeconfig-key"}),
            json!({}),
        ),
        (
            "plain cluster, secrets.kubernetes_kubeconfig",
            json!({}),
            json!({}),
            json!({"kubernetes_kubeconfig": "file@/kube/config"}),
        ),
        (
            "plain cluster, nothing configured",
            json!({}),
            json!({}),
            json!({}),
        ),
        (
            "aks, azure_explicit",
            json!({"cluster_type": "aks", "auth_type": "azure_explicit", "resource_group": "rg1"}),
            json!({"azure_service_principal_secret_name": "az-sp"}),
            json!({}),
        ),
        (
            "aks, azure_service_principal_secret",
            json!({"cluster_type": "aks", "auth_type": "azure_service_principal_secret", "resource_group": "rg1", "auth_secret": "sp-secret"}),
            json!({}),
            json!({}),
        ),
        (
            "aks, azure_managed_identity",
            json!({"cluster_type": "aks", "auth_type": "azure_managed_identity", "resource_group": "rg1"}),
            json!({}),
            json!({}),
        ),
        (
            "aks, unknown auth falls back to the workspace kubeconfig",
            json!({"cluster_type": "aks", "auth_type": "kubeconfig"}),
            kubeconfig_custom(),
            json!({}),
        ),
        (
            "eks, aws_workload_identity_assume_role",
            json!({"cluster_type": "eks", "auth_type": "aws_workload_identity_assume_role", "region": "eu-west-1", "cluster_name": "shop", "assume_role_arn": "arn:aws:iam::1:role/r"}),
            json!({}),
            json!({}),
        ),
        (
            "eks, aws_explicit",
            json!({"cluster_type": "eks", "auth_type": "aws_explicit", "cluster_name": "shop"}),
            json!({"aws_credentials_secret_name": "aws-creds"}),
            json!({}),
        ),
        (
            "eks, aws_secret",
            json!({"cluster_type": "eks", "auth_type": "aws_secret", "cluster_name": "shop", "auth_secret": "aws-secret"}),
            json!({}),
            json!({}),
        ),
        (
            "eks, other auth",
            json!({"cluster_type": "eks", "cluster_name": "shop"}),
            json!({}),
            json!({}),
        ),
        (
            "gke, gcp_service_account_secret",
            json!({"cluster_type": "gke", "auth_type": "gcp_service_account_secret", "project_id": "p1", "zone": "europe-west1-b", "auth_secret": "gcp-sa"}),
            json!({}),
            json!({}),
        ),
        (
            "gke, gcp_adc",
            json!({"cluster_type": "gke", "auth_type": "gcp_adc", "project_id": "p1", "location": "europe-west1"}),
            json!({}),
            json!({}),
        ),
        (
            "gke, other auth",
            json!({"cluster_type": "gke", "project_id": "p1"}),
            json!({}),
            json!({}),
        ),
    ];
    let renderer = renderer();
    let mut all = String::new();
    for (label, extension, custom, secrets) in cases {
        let registry = support::registry(extension);
        let namespace = registry
            .get("namespace", "prod-cluster/online-boutique")
            .unwrap()
            .clone();
        let mut vars = vars(custom);
        vars.secrets = secrets;
        let workspace = WorkspaceContext::new(vars);
        let slx = workspace.slx(&input(
            &namespace,
            &registry,
            "ns-health",
            &["namespace", "cluster"],
        ));
        let out = renderer
            .render_item(&slx, &item("sli", "demo-auth-sli.yaml", json!({})))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert!(out.warnings.is_empty(), "{label}: {:?}", out.warnings);
        let spec = &out.text[out.text.find("spec:\n").unwrap() + "spec:\n".len()..];
        all.push_str(&format!("# {label}\n{spec}"));
    }
    golden("render/kubernetes-auth.yaml", &all);
}

#[test]
fn a_render_that_is_not_yaml_is_reported_with_template_and_line() {
    let workspace = WorkspaceContext::new(vars(kubeconfig_custom()));
    let e =
        render_deployment(&workspace, &item("slx", "demo-broken-slx.yaml", json!({}))).unwrap_err();
    let RenderError::Yaml {
        template,
        line,
        snippet,
        ..
    } = &e
    else {
        panic!("expected a YAML error, got {e:?}");
    };
    assert!(
        template.ends_with("/.runwhen/templates/demo-broken-slx.yaml"),
        "{template}"
    );
    assert_eq!(*line, 6);
    assert!(
        snippet.starts_with("  alias: frontend: a colon"),
        "{snippet}"
    );
    assert!(e.to_string().contains("not valid YAML at line 6"), "{e}");
}

#[test]
fn rendering_a_missing_template_is_an_error_naming_the_codebundle() {
    let workspace = WorkspaceContext::new(vars(kubeconfig_custom()));
    let e = render_deployment(&workspace, &item("slx", "nope-slx.yaml", json!({}))).unwrap_err();
    assert!(matches!(e, RenderError::NotFound { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("demo-health: no template nope-slx.yaml"),
        "{e}"
    );
}

#[test]
fn paths_default_per_type_render_when_given_and_stay_inside_the_tree() {
    let registry = support::registry(json!({}));
    let deployment = registry
        .get("deployment", "prod-cluster/online-boutique/frontend")
        .unwrap()
        .clone();
    let workspace = WorkspaceContext::new(vars(kubeconfig_custom()));
    let slx = workspace.slx(&input(
        &deployment,
        &registry,
        "depl-health",
        &["resource", "namespace", "cluster"],
    ));
    let r = renderer();
    let mut workflow = item("workflow", "demo-health-slx.yaml", json!({}));
    assert_eq!(
        r.prepare(&slx, &workflow).unwrap().path,
        "workflows/frontend-online-boutique-prod-cluster-depl-health-74582bf1.yaml"
    );
    workflow.output_type = "slx".into();
    workflow.path = Some("{{ slxs_path }}/{{ match_resource.name }}/extra.yaml".into());
    assert_eq!(
        r.prepare(&slx, &workflow).unwrap().path,
        "slxs/frontend/extra.yaml"
    );
    workflow.path = Some("{{ workspace_path }}/../escape.yaml".into());
    assert!(matches!(
        r.prepare(&slx, &workflow),
        Err(RenderError::BadPath { .. })
    ));
}

#[test]
fn the_workspace_document_and_rendered_slxs_load_as_a_workspace_tree() {
    let r = renderer();
    let workspace = WorkspaceContext::new(vars(kubeconfig_custom()));
    let groups = [SlxGroup {
        name: "online-boutique (prod-cluster)".into(),
        slxs: vec!["frontend-online-boutique-prod-cluster-depl-health-74582bf1".into()],
        depends_on: vec!["platform".into()],
    }];
    let relationships = [SlxRelationship {
        subject: "frontend-online-boutique-prod-cluster-depl-health-74582bf1".into(),
        verb: "dependent-on".into(),
        object: "redis-online-boutique-prod-cluster-sts-health-3bc8ed57".into(),
    }];
    let ws = r
        .render_workspace(&workspace, &groups, &relationships)
        .unwrap();
    assert_eq!(ws.path, "workspace.yaml");
    golden("render/workspace.yaml", &ws.text);

    let variables = json!({"threshold": "1", "ns": "namespace", "upper_name": "x", "derived": "y"});
    let mut files = BTreeMap::from([(ws.path, ws.text)]);
    for item in [
        item("slx", "demo-health-slx.yaml", json!({})),
        item("sli", "demo-health-sli.yaml", variables),
        item("runbook", "demo-health-taskset.yaml", json!({})),
    ] {
        let out = render_deployment(&workspace, &item).unwrap();
        files.insert(out.path, out.text);
    }
    let tree = WorkspaceTree::from_files(files).unwrap();
    assert!(tree.problems.is_empty(), "{:?}", tree.problems);
    assert_eq!(tree.name(), "ws");
    let slx = &tree.slxs["frontend-online-boutique-prod-cluster-depl-health-74582bf1"];
    assert!(slx.sli.is_some() && slx.runbook.is_some());
    assert_eq!(
        slx.full_name(),
        "ws--frontend-online-boutique-prod-cluster-depl-health-74582bf1"
    );
}
