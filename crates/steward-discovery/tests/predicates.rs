//! Match predicates: every `matchRules` type and quirk.

use serde_json::{Value, json};
use steward_discovery::rules::{GenerationRule, MatchContext, RuleFile};
use steward_discovery::{Lod, Registry, Resource};

const ORIGIN: &str = "cc/codebundles/demo/.runwhen/generation-rules/demo.yaml";

fn resource(resource_type: &str, name: &str, namespace: &str, payload: Value) -> Resource {
    Resource {
        platform: "kubernetes".into(),
        resource_type: resource_type.into(),
        name: name.into(),
        qualified_name: format!("c1/{namespace}/{name}"),
        cluster: Some("c1".into()),
        context: Some("ctx-1".into()),
        namespace: Some(namespace.into()),
        lod: Lod::Detailed,
        payload: payload.into(),
    }
}

fn deployment(name: &str, payload: Value) -> Resource {
    resource("deployment", name, "shop", payload)
}

fn parse(text: &str) -> RuleFile {
    RuleFile::parse(text, ORIGIN).unwrap_or_else(|e| panic!("{e}"))
}

/// A file with one rule on deployments using `match_rules` (YAML flow or block text).
fn rule(match_rules: &str) -> GenerationRule {
    let text = format!(
        "spec:\n  generationRules:\n  - resourceTypes: [deployment]\n    matchRules:\n{}\n    slxs:\n    - baseName: x\n      outputItems: [{{type: slx}}]\n",
        match_rules
            .lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let file = parse(&text);
    assert!(file.warnings.is_empty(), "{:#?}", file.warnings);
    file.rules.into_iter().next().expect("one rule")
}

fn matches(rule: &GenerationRule, resource: &Resource) -> bool {
    let registry = Registry::new();
    let vars = json!({});
    let mut ctx = MatchContext::new(&registry, &vars);
    rule.matches(resource, &mut ctx).is_some()
}

#[test]
fn exact_mode_is_anchored_at_the_start_only() {
    let r = rule("- {type: pattern, pattern: front, properties: [name], mode: exact}");
    assert!(
        matches(&r, &deployment("frontend", json!({}))),
        "re.match: not a full match (defect f kept)"
    );
    assert!(!matches(&r, &deployment("my-frontend", json!({}))));
    let r = rule("- {type: pattern, pattern: front, properties: [name]}");
    assert!(
        matches(&r, &deployment("my-frontend", json!({}))),
        "substring is the default"
    );
}

#[test]
fn payload_paths_escape_slashes_and_walk_lists() {
    let d = deployment(
        "lb",
        json!({
            "metadata": {"annotations": {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}},
            "spec": {
                "ports": [{"port": 80}, {"port": 8443}],
                "tls": [{"hosts": ["a.example.com"]}, {"hosts": ["b.example.com", "c.example.org"]}],
                "paused": false,
                "ratio": 1.0,
                "selector": {"app": "x"}
            }
        }),
    );
    let r = rule(
        "- {type: pattern, pattern: '^true$', properties: ['metadata/annotations/service.beta.kubernetes.io//azure-load-balancer-internal']}",
    );
    assert!(matches(&r, &d));
    let r = rule("- {type: pattern, pattern: '^8443$', properties: [spec/ports/port]}");
    assert!(
        matches(&r, &d),
        "numbers are matched as text, in every list element"
    );
    let r = rule("- {type: pattern, pattern: 'example\\.org', properties: [spec/tls/hosts]}");
    assert!(matches(&r, &d), "nested lists are walked");
    let r = rule("- {type: pattern, pattern: '^False$', properties: [spec/paused]}");
    assert!(matches(&r, &d), "booleans read as Python writes them");
    let r = rule("- {type: pattern, pattern: '^false$', properties: [spec/paused]}");
    assert!(!matches(&r, &d));
    let r = rule("- {type: pattern, pattern: '^1\\.0$', properties: [spec/ratio]}");
    assert!(matches(&r, &d), "floats read as Python writes them");
    let r = rule("- {type: pattern, pattern: 'app', properties: [spec/selector]}");
    assert!(
        !matches(&r, &d),
        "a mapping at the end of the path never matches"
    );
    let r = rule("- {type: pattern, pattern: '.', properties: [spec/nothing/here]}");
    assert!(!matches(&r, &d));
}

#[test]
fn label_and_annotation_properties() {
    let d = deployment(
        "x",
        json!({"metadata": {
            "labels": {"app.kubernetes.io/name": "checkout", "tier": "web"},
            "annotations": {"owner": "team-a", "kustomize.toolkit.fluxcd.io/name": "apps"}
        }}),
    );
    let check = |prop: &str, pattern: &str| {
        matches(
            &rule(&format!(
                "- {{type: pattern, pattern: '{pattern}', properties: [{prop}]}}"
            )),
            &d,
        )
    };
    // `labels` tests keys and values separately, never `key=value`.
    assert!(check("labels", "^tier$"));
    assert!(check("labels", "^web$"));
    assert!(!check("labels", "tier=web"));
    assert!(check("label-keys", "app.kubernetes.io"));
    assert!(!check("label-keys", "checkout"));
    assert!(check("label-values", "^checkout$"));
    assert!(!check("label-values", "^tier$"));
    assert!(check("annotations", "kustomize.toolkit.fluxcd.io/name"));
    assert!(check("annotations", "team-a"));
    assert!(check("annotation-keys", "^owner$"));
    assert!(!check("annotation-keys", "team-a"));
    assert!(check("annotation-values", "^apps$"));
    // Several properties are OR-ed.
    let r = rule("- {type: pattern, pattern: '^checkout$', properties: [name, label-values]}");
    assert!(matches(&r, &d));
    // No labels at all.
    assert!(!matches(
        &rule("- {type: pattern, pattern: '.', properties: [labels]}"),
        &deployment("y", json!({}))
    ));
}

#[test]
fn cross_resource_match_exposes_the_matched_resource() {
    let db = resource(
        "statefulset",
        "orders-db",
        "shop",
        json!({"metadata": {"labels": {"role": "db"}}}),
    );
    let cache = resource("statefulset", "cache", "shop", json!({}));
    let web = deployment("web", json!({}));
    let registry: Registry = [db.clone(), cache, web.clone()].into_iter().collect();
    let vars = json!({});
    let r = rule(
        "- {type: pattern, resourceType: statefulset, pattern: '^db$', properties: [label-values]}\n- {type: pattern, pattern: web, properties: [name]}",
    );
    let mut ctx = MatchContext::new(&registry, &vars);
    let web_ref = registry.get("deployment", "c1/shop/web").unwrap();
    let found = rule_match(&r, web_ref, &mut ctx).expect("matches");
    assert_eq!(found["statefulset"].name, "orders-db");
    assert_eq!(
        found["deployment"].name, "web",
        "the matched resource itself is there too"
    );
    assert_eq!(r.referenced_types().len(), 2);

    // Nothing of the other type matches: the rule fails, and nothing is exposed.
    let r =
        rule("- {type: pattern, resourceType: statefulset, pattern: '^nope$', properties: [name]}");
    let mut ctx = MatchContext::new(&registry, &vars);
    assert!(rule_match(&r, web_ref, &mut ctx).is_none());
    assert!(ctx.matched().is_empty());

    // A version-pinned custom type only sees objects of that version.
    let v1 = resource(
        "helmreleases.helm.toolkit.fluxcd.io",
        "a",
        "shop",
        json!({"apiVersion": "helm.toolkit.fluxcd.io/v2beta1"}),
    );
    let v2 = resource(
        "helmreleases.helm.toolkit.fluxcd.io",
        "b",
        "shop",
        json!({"apiVersion": "helm.toolkit.fluxcd.io/v2"}),
    );
    let registry: Registry = [v1, v2, web].into_iter().collect();
    let file = parse(
        "spec:\n  generationRules:\n  - resourceTypes: [helmreleases.helm.toolkit.fluxcd.io/v2, helmreleases.helm.toolkit.fluxcd.io/v2]\n    matchRules: []\n    slxs: [{baseName: hr, outputItems: [{type: slx}]}]\n  - resourceTypes: [helmreleases.helm.toolkit.fluxcd.io]\n    matchRules: []\n    slxs: [{baseName: hr2, outputItems: [{type: slx}]}]\n",
    );
    let pinned: Vec<&str> = file.rules[0]
        .candidates(&registry)
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(pinned, ["b"]);
    assert_eq!(file.rules[1].candidates(&registry).len(), 2);
}

fn rule_match<'a>(
    rule: &GenerationRule,
    resource: &'a Resource,
    ctx: &mut MatchContext<'a>,
) -> Option<std::collections::BTreeMap<String, &'a Resource>> {
    rule.matches(resource, ctx)
}

#[test]
fn not_and_or_nest() {
    let r = rule(
        r#"- type: and
  matches:
    - type: or
      matches:
        - {type: pattern, pattern: '^web', properties: [name]}
        - {type: pattern, pattern: '^api', properties: [name]}
    - type: not
      predicate:
        type: pattern
        pattern: canary
        properties: [name]
    - type: not
      match: {type: exists, path: spec/paused}"#,
    );
    assert!(matches(&r, &deployment("web-1", json!({}))));
    assert!(matches(&r, &deployment("api-1", json!({}))));
    assert!(!matches(&r, &deployment("db-1", json!({}))));
    assert!(!matches(&r, &deployment("web-canary", json!({}))));
    assert!(!matches(
        &r,
        &deployment("web-2", json!({"spec": {"paused": true}}))
    ));
    // `not` with a one-element `matches` list.
    let r = rule("- {type: not, matches: [{type: pattern, pattern: x, properties: [name]}]}");
    assert!(matches(&r, &deployment("web", json!({}))));
    // Empty and / or.
    assert!(matches(
        &rule("- {type: and, matches: []}"),
        &deployment("a", json!({}))
    ));
    assert!(!matches(
        &rule("- {type: or, matches: []}"),
        &deployment("a", json!({}))
    ));
}

#[test]
fn exists_is_true_for_present_values_including_non_empty_containers() {
    let d = deployment(
        "x",
        json!({"spec": {
            "tls": [{"hosts": ["a"]}],
            "empty_map": {},
            "empty_list": [],
            "nothing": null,
            "blank": "",
            "map": {"k": "v"},
            "list_of_maps": [{"a": 1}]
        }}),
    );
    let exists = |path: &str, match_empty: bool| {
        matches(
            &rule(&format!(
                "- {{type: exists, path: {path}, matchEmpty: {match_empty}}}"
            )),
            &d,
        )
    };
    assert!(exists("spec/tls/hosts", false));
    assert!(
        exists("spec/blank", false),
        "a present scalar, even empty, as upstream"
    );
    assert!(
        exists("spec/map", false),
        "non-empty mapping: true (upstream false, defect e)"
    );
    assert!(
        exists("spec/list_of_maps", false),
        "non-empty list of mappings: true (upstream false)"
    );
    assert!(exists("spec/tls", false));
    assert!(!exists("spec/empty_map", false));
    assert!(!exists("spec/empty_list", false));
    assert!(!exists("spec/nothing", false));
    assert!(
        exists("spec/empty_map", true),
        "matchEmpty accepts empty containers"
    );
    assert!(exists("spec/empty_list", true));
    assert!(exists("spec/nothing", true), "and null");
    assert!(!exists("spec/absent", true), "but not an absent key");
    assert!(!exists("spec/blank/deeper", true));
}

#[test]
fn custom_variable_and_its_legacy_form() {
    let registry = Registry::new();
    let vars =
        json!({"custom": {"gitops_provider": "github", "flags": [true, "x"]}, "secrets": {}});
    let d = deployment("web", json!({}));
    let eval = |text: &str| {
        let r = rule(text);
        let mut ctx = MatchContext::new(&registry, &vars);
        r.matches(&d, &mut ctx).is_some()
    };
    assert!(eval(
        "- {type: custom-variable, path: custom/gitops_provider, pattern: '^git'}"
    ));
    assert!(!eval(
        "- {type: custom-variable, path: custom/gitops_provider, pattern: hub, mode: exact}"
    ));
    assert!(eval(
        "- {type: custom-variable, path: custom/gitops_provider, pattern: hub}"
    ));
    assert!(eval(
        "- {type: custom-variable, path: custom/flags, pattern: '^True$'}"
    ));
    assert!(!eval(
        "- {type: custom-variable, path: custom/missing, pattern: '.'}"
    ));
    // The old spelling: a `pattern` with `resourceType: variables`.
    assert!(eval(
        "- {type: pattern, resourceType: variables, pattern: github, properties: [custom/gitops_provider]}"
    ));
    assert!(!eval(
        "- {type: pattern, resourceType: Variables, pattern: gitlab, properties: [custom/gitops_provider], mode: substring}"
    ));
    // ...which must name exactly one path.
    let file = parse(
        "spec:\n  generationRules:\n  - resourceTypes: [deployment]\n    matchRules: [{type: pattern, resourceType: variables, pattern: x, properties: [a, b]}]\n    slxs: [{baseName: x, outputItems: [{type: slx}]}]\n",
    );
    assert!(file.rules.is_empty());
    assert!(
        file.warnings[0].message.contains("exactly one"),
        "{}",
        file.warnings[0]
    );
}

#[test]
fn python_pattern_spellings_work() {
    let r = rule("- {type: pattern, pattern: 'a{,2}b\\Z', properties: [name], mode: exact}");
    assert!(matches(&r, &deployment("aab", json!({}))));
    assert!(!matches(&r, &deployment("aabc", json!({}))));
    let r = rule("- {type: pattern, pattern: '{{literal}}', properties: [name]}");
    assert!(matches(&r, &deployment("x{{literal}}y", json!({}))));
}

// Large registries with cross-resource predicates: each rule finds exactly its resources.
// (Speed is measured by `cargo bench -p steward-discovery --bench generate`.)
#[test]
fn matching_ten_thousand_resources_against_a_hundred_rules() {
    let mut registry = Registry::new();
    for i in 0..10_000 {
        registry.insert(deployment(
            &format!("app-{i}"),
            json!({"metadata": {"name": format!("app-{i}"), "labels": {"app": format!("app-{i}"), "tier": if i % 2 == 0 { "web" } else { "batch" }}},
                   "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "main", "image": format!("registry/app:{i}")}]}}}}),
        ));
    }
    registry.insert(resource("statefulset", "db", "shop", json!({})));
    let mut text = String::from("spec:\n  generationRules:\n");
    for i in 0..100 {
        text.push_str(&format!(
            "  - resourceTypes: [deployment]\n    matchRules:\n    - type: and\n      matches:\n      - {{type: pattern, pattern: 'app-{i}', properties: [name]}}\n      - {{type: pattern, pattern: '^web$', properties: [label-values]}}\n      - {{type: pattern, pattern: 'registry/', properties: [spec/template/spec/containers/image]}}\n      - {{type: pattern, resourceType: statefulset, pattern: db, properties: [name]}}\n    slxs: [{{baseName: r{i}, outputItems: [{{type: slx}}]}}]\n"
        ));
    }
    let file = parse(&text);
    assert_eq!(file.rules.len(), 100);
    let vars = json!({});
    let mut ctx = MatchContext::new(&registry, &vars);
    let mut hits: Vec<Vec<String>> = Vec::new();
    for rule in &file.rules {
        let mut names = Vec::new();
        for r in rule.candidates(&registry) {
            if rule.matches(r, &mut ctx).is_some() {
                names.push(r.name.clone());
            }
        }
        hits.push(names);
    }
    // `app-0` is a substring of no other name; odd numbers are not tier=web.
    assert_eq!(hits[0], ["app-0"]);
    // app-1 itself is odd; app-10, app-12, app-100... are even.
    assert!(!hits[1].contains(&"app-1".to_string()) && hits[1].contains(&"app-10".to_string()));
    // app-2, app-20..app-29, app-200..., all even ones.
    assert!(hits[2].contains(&"app-2".to_string()) && hits[2].contains(&"app-2000".to_string()));
    assert!(
        hits[2]
            .iter()
            .all(|n| n.trim_start_matches("app-").parse::<u32>().unwrap() % 2 == 0)
    );
}
