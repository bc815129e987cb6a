//! Map customization rules on the bundled example: SLX groups by priority and template,
//! SLX relationships with both verbs, group dependencies, and bad rules reported and skipped.

use serde_yaml::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use steward_discovery::kubernetes::Silent;
use steward_discovery::naming::{NameMode, qualified_name};
use steward_discovery::{DiscoverOptions, Summary, discover};

const CLUSTER: &str = "prod-eu";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

async fn generate(dir: &Path, rules: Option<&Path>) -> (Summary, Value) {
    let config = dir.join("workspaceInfo.yaml");
    std::fs::write(
        &config,
        format!(
            "workspaceName: shop-prod\nworkspaceOwnerEmail: sre@example.com\ndefaultLocation: local\n\
             defaultLOD: basic\ncodeCollections:\n  - repoURL: {}\n    codeBundles: [\"k8s-*\"]\n",
            repo().join("codecollections").display()
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let options = DiscoverOptions {
        config,
        from_snapshot: Some(repo().join("examples/discovery/cluster")),
        out: Some(out.clone()),
        cache_dir: dir.join("cache"),
        map_customization_rules: rules.map(Path::to_path_buf),
        ..Default::default()
    };
    let summary = discover(&options, Arc::new(Silent))
        .await
        .expect("discovery runs")
        .summary;
    // The platform takes the tree, groups and relationships included.
    let tree = steward_model::workspace::WorkspaceTree::load(&out).expect("the tree loads");
    assert!(tree.problems.is_empty(), "{:?}", tree.problems);
    let workspace = std::fs::read_to_string(out.join("workspace.yaml")).unwrap();
    (summary, serde_yaml::from_str(&workspace).unwrap())
}

fn namespace_slx(namespace: &str) -> String {
    qualified_name(
        "k8s-ns-health",
        &[namespace.into(), CLUSTER.into()],
        0,
        NameMode::Current,
    )
}

fn deployment_slx(name: &str, namespace: &str) -> String {
    qualified_name(
        "k8s-depl-health",
        &[name.into(), namespace.into(), CLUSTER.into()],
        0,
        NameMode::Current,
    )
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|s| s.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn group<'a>(workspace: &'a Value, name: &str) -> &'a Value {
    workspace["spec"]["slxGroups"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|g| g["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no group {name:?} in {:#?}", workspace["spec"]["slxGroups"]))
}

const GROUPS: &str = r#"
apiVersion: runwhen.com/v1
kind: MapCustomizationRules
spec:
  groupRules:
  # Upstream's style: namespace SLXs in a group named after their namespace...
  - match:
      type: pattern
      matchType: base-name
      pattern: k8s-ns-health
      matchMode: exact
    group: "{{resource.resource.metadata.name}}"
  # ...and deployments in their namespace's group.
  - match:
      type: pattern
      matchProperty: base-name
      pattern: k8s-depl-health
    group: "{{ resource.resource.metadata.namespace }}"
  # Listed last but tried first: everything of the shop namespace, whatever its kind.
  - match:
      type: and
      matches:
      - type: pattern
        matchProperty: namespace
        pattern: "^shop$"
      - type: not
        match:
          type: pattern
          matchProperty: spec/replicas
          pattern: "^0$"
    group: "storefront ({{ cluster.name }})"
    priority: -1
  groupRelationshipRules:
  - subject: payments
    matches:
    - type: pattern
      pattern: "^storefront"
"#;

const RELATIONSHIPS: &str = r#"
apiVersion: runwhen.com/v1
kind: MapCustomizationRules
spec:
  slxRelationVerbDefault: depended-on-by
  slxRelationshipRules:
  # Each deployment depends on its namespace's SLX (the default verb swaps the two).
  - subject: "{{ make_slx_directory_name('k8s-ns-health', [namespace.name, cluster.name]) }}"
    matches:
    - type: pattern
      matchProperty: base-name
      pattern: "^k8s-depl-health$"
  # The shop namespace's SLX named as depending on itself: nothing is written.
  - subject: "{{ make_slx_directory_name('k8s-ns-health', [namespace.name, cluster.name]) }}"
    matches:
    - type: pattern
      matchProperty: qualified-name
      pattern: "^shop-"
      matchMode: exact
  # A subject that is no SLX (for the other namespace SLXs): reported, not written.
  - subject: no-such-slx
    verb: dependent-on
    matches:
    - type: pattern
      matchProperty: qualified-name
      pattern: k8s-ns-health
"#;

#[tokio::test]
async fn groups_relationships_and_group_dependencies_reach_workspace_yaml() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("map-customization-rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("groups.yaml"), GROUPS).unwrap();
    std::fs::write(rules.join("relationships.yml"), RELATIONSHIPS).unwrap();
    std::fs::write(rules.join("README.md"), "not a rule file").unwrap();
    let (summary, workspace) = generate(tmp.path(), Some(&rules)).await;

    let storefront = group(&workspace, "storefront (prod-eu)");
    assert_eq!(
        strings(&storefront["slxs"]),
        [
            deployment_slx("cart", "shop"),
            deployment_slx("checkout", "shop"),
            deployment_slx("frontend", "shop"),
            namespace_slx("shop"),
        ]
    );
    let payments = group(&workspace, "payments");
    assert_eq!(
        strings(&payments["slxs"]),
        [
            deployment_slx("payments-api", "payments"),
            namespace_slx("payments")
        ]
    );
    assert_eq!(strings(&payments["dependsOn"]), ["storefront (prod-eu)"]);
    assert_eq!(
        strings(&group(&workspace, "monitoring")["slxs"]),
        [
            deployment_slx("grafana", "monitoring"),
            namespace_slx("monitoring")
        ]
    );
    // Every SLX of the tree is in exactly one group here.
    let grouped: usize = workspace["spec"]["slxGroups"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|g| strings(&g["slxs"]).len())
        .sum();
    assert_eq!(grouped, summary.slxs);

    let relationships: Vec<(String, String, String)> = workspace["spec"]["slxRelationships"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            (s("subject"), s("verb"), s("directObject"))
        })
        .collect();
    let depends = |name: &str, namespace: &str| {
        (
            deployment_slx(name, namespace),
            "dependent-on".to_string(),
            namespace_slx(namespace),
        )
    };
    assert_eq!(
        relationships,
        // In tree order: deployments by cluster, namespace and name.
        [
            depends("grafana", "monitoring"),
            depends("payments-api", "payments"),
            depends("cart", "shop"),
            depends("checkout", "shop"),
            depends("frontend", "shop"),
        ]
    );
    assert!(
        summary
            .skipped
            .iter()
            .any(|s| s.location.ends_with("relationships.yml:21")
                && s.reason
                    .starts_with("2 relationships name an SLX that is not in the tree")
                && s.reason.contains("\"no-such-slx\" dependent-on")),
        "{:#?}",
        summary.skipped
    );
}

#[tokio::test]
async fn bad_rules_are_reported_with_their_line_and_the_others_apply() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("a-broken.yaml"),
        "kind: MapCustomizationRules\nspec:\n  groupRules: [\n",
    )
    .unwrap();
    std::fs::write(
        rules.join("b-mixed.yaml"),
        "kind: MapCustomizationRules\nspec:\n  groupRules:\n  - match:\n      type: pattern\n      matchProperty: base-name\n      pattern: k8s-ns-health\n  - match:\n      type: exists\n      path: metadata\n    group: never\n  - match:\n      type: pattern\n      matchProperty: base-name\n      pattern: \"(\"\n    group: never\n  - match:\n      type: pattern\n      matchProperty: base-name\n      pattern: k8s-\n    group: everything\n  relationRules: []\n",
    )
    .unwrap();
    std::fs::write(
        rules.join("c-other.yaml"),
        "kind: GenerationRules\nspec: {}\n",
    )
    .unwrap();
    std::fs::write(
        rules.join("d-latin1.yaml"),
        b"kind: MapCustomizationRules\n# caf\xe9\n",
    )
    .unwrap();
    // Saved with a byte order mark; tried before the rest by priority. Its templates fail,
    // so the SLXs they match get no group at all (as upstream) and each rule is reported once.
    std::fs::write(
        rules.join("e-bom.yaml"),
        "\u{feff}kind: MapCustomizationRules\nspec:\n  groupRules:\n  - match:\n      type: pattern\n      matchProperty: namespace\n      pattern: ^shop$\n      matchmode: exact\n    group: \"team-{{ nope }}\"\n    priority: -5\n  - match:\n      type: pattern\n      matchProperty: namespace\n      pattern: ^payments$\n    group: \"{{ '' }}\"\n    priority: -6\n",
    )
    .unwrap();
    let (summary, workspace) = generate(tmp.path(), Some(&rules)).await;

    // Four SLXs of shop and two of payments have no group.
    let everything = group(&workspace, "everything");
    assert_eq!(strings(&everything["slxs"]).len(), summary.slxs - 6);
    assert_eq!(
        workspace["spec"]["slxGroups"].as_sequence().unwrap().len(),
        1
    );
    let reasons: Vec<(String, String)> = summary
        .skipped
        .iter()
        .map(|s| (s.location.clone(), s.reason.clone()))
        .collect();
    let has = |file_line: &str, reason: &str| {
        assert!(
            reasons
                .iter()
                .any(|(l, r)| l.contains(file_line) && r.contains(reason)),
            "no {file_line}: {reason} in {reasons:#?}"
        )
    };
    has("a-broken.yaml:", "not valid YAML");
    has("b-mixed.yaml:4", "needs `group:`");
    has("b-mixed.yaml:8", "\"exists\" is not supported");
    has("b-mixed.yaml:12", "does not compile");
    has("c-other.yaml:1", "expected \"MapCustomizationRules\"");
    has("d-latin1.yaml", "not UTF-8");
    has("e-bom.yaml:4", "(for 4 SLXs, which it leaves out)");
    has("e-bom.yaml:11", "renders empty (for 2 SLXs");
    let warned = |needle: &[&str]| {
        assert!(
            summary
                .warnings
                .iter()
                .any(|w| needle.iter().all(|n| w.contains(n))),
            "no warning with {needle:?} in {:#?}",
            summary.warnings
        )
    };
    warned(&["b-mixed.yaml:22", "spec.relationRules", "no effect"]);
    warned(&["e-bom.yaml:4", "`matchmode`", "no effect"]);
}

#[tokio::test]
async fn without_rules_there_are_no_groups_and_a_missing_path_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, workspace) = generate(tmp.path(), None).await;
    assert!(workspace["spec"].get("slxGroups").is_none());
    assert!(workspace["spec"].get("slxRelationships").is_none());

    let missing = tmp.path().join("no-rules-here");
    let options = DiscoverOptions {
        config: tmp.path().join("workspaceInfo.yaml"),
        from_snapshot: Some(repo().join("examples/discovery/cluster")),
        out: Some(tmp.path().join("out2")),
        cache_dir: tmp.path().join("cache"),
        map_customization_rules: Some(missing.clone()),
        ..Default::default()
    };
    let error = discover(&options, Arc::new(Silent))
        .await
        .err()
        .expect("a missing rules path fails the run")
        .to_string();
    assert!(
        error.contains("map customization rules") && error.contains("no-rules-here"),
        "{error}"
    );
}
