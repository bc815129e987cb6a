//! Generation-rule files: parsing, defaults, skipped entries and referenced types.

use steward_discovery::Lod;
use steward_discovery::rules::{
    OutputKind, ResourceTypeRef, ResourceTypeSpec, RuleError, RuleFile, referenced_types,
};

const ORIGIN: &str = "cc/codebundles/demo/.runwhen/generation-rules/demo.yaml";

fn parse(text: &str) -> RuleFile {
    RuleFile::parse(text, ORIGIN).unwrap_or_else(|e| panic!("{e}"))
}

// ---- parsing ---------------------------------------------------------------------------

const FULL: &str = r#"
apiVersion: runwhen.com/v1
kind: GenerationRules
spec:
  generationRules:
    - resourceTypes:
        - deployment
        - kubernetes:statefulset
        - {platform: kubernetes, resourceType: daemonset}
        - helmreleases.helm.toolkit.fluxcd.io/v2
        - certificates.cert-manager.io
        - {resourceType: custom, group: argoproj.io, version: "*", kind: applications}
        - {resourceType: custom, group: postgres-operator.crunchydata.com, version: v1beta1, kind: postgresclusters}
      matchRules:
        - type: pattern
          resourceType: ingress
          pattern: "."
          properties: [name]
      slxs:
        - baseName: workload-health
          shortenedBaseName: wl-health
          qualifiers: [resource, namespace, cluster]
          baseTemplateName: wl
          levelOfDetail: 1
          outputItems:
            - type: slx
            - type: sli
              levelOfDetail: 2
              templateVariables: {threshold: "{{ custom.x }}", count: 3}
            - type: runbook
              templateName: wl-taskset.yaml
            - type: taskSet
              path: "{{slx_directory_path}}/extra.yaml"
        - baseName: ns-summary
          qualifiers: [namespace]
          outputItems:
            - type: slx
              levelOfDetail: detailed
      outputItems:
        - type: workflow
          templateName: wf.yaml
          path: workflows/x.yaml
"#;

#[test]
fn a_full_rule_parses() {
    let file = parse(FULL);
    assert!(file.warnings.is_empty(), "{:#?}", file.warnings);
    assert_eq!(
        file.platform, "kubernetes",
        "spec.platform defaults to kubernetes"
    );
    let rule = &file.rules[0];
    assert_eq!(rule.line, Some(6));
    assert!(rule.is_indexed());
    let names: Vec<String> = rule
        .resource_types
        .iter()
        .map(|t| t.reference.registry_type())
        .collect();
    assert_eq!(
        names,
        [
            "deployment",
            "statefulset",
            "daemonset",
            "helmreleases.helm.toolkit.fluxcd.io",
            "certificates.cert-manager.io",
            "applications.argoproj.io",
            "postgresclusters.postgres-operator.crunchydata.com",
        ]
    );
    assert_eq!(
        rule.resource_types[3].reference,
        ResourceTypeRef::Custom {
            plural: "helmreleases".into(),
            group: "helm.toolkit.fluxcd.io".into(),
            version: Some("v2".into())
        }
    );
    assert_eq!(
        rule.resource_types[3].to_string(),
        "kubernetes:helmreleases.helm.toolkit.fluxcd.io/v2"
    );
    assert!(
        matches!(
            &rule.resource_types[5].reference,
            ResourceTypeRef::Custom { version: None, .. }
        ),
        "`*` = any version"
    );
    assert!(
        matches!(&rule.resource_types[6].reference, ResourceTypeRef::Custom { version: Some(v), .. } if v == "v1beta1")
    );

    let slx = &rule.slxs[0];
    assert_eq!(slx.base_name, "workload-health");
    assert_eq!(slx.shortened_base_name.as_deref(), Some("wl-health"));
    assert_eq!(slx.qualifiers, ["resource", "namespace", "cluster"]);
    assert_eq!(
        slx.level_of_detail,
        Lod::Basic,
        "integer levelOfDetail (defect d)"
    );
    assert_eq!(slx.line, Some(20));
    let items = &slx.output_items;
    assert_eq!(items[0].kind, Some(OutputKind::Slx));
    assert_eq!(
        items[0].template_name.as_deref(),
        Some("wl-slx.yaml"),
        "baseTemplateName-type.yaml"
    );
    assert_eq!(
        items[0].path.as_deref(),
        Some("{{slx_directory_path}}/slx.yaml")
    );
    assert_eq!(
        items[0].level_of_detail,
        Lod::Basic,
        "an item inherits its SLX's level"
    );
    assert_eq!(items[1].level_of_detail, Lod::Detailed);
    assert_eq!(items[1].template_variables["threshold"], "{{ custom.x }}");
    assert_eq!(items[1].template_variables["count"], 3);
    assert_eq!(items[2].template_name.as_deref(), Some("wl-taskset.yaml"));
    assert_eq!(items[3].kind, Some(OutputKind::TaskSet));
    assert_eq!(
        items[3].template_name.as_deref(),
        Some("wl-taskSet.yaml"),
        "the type as written"
    );
    assert_eq!(
        items[3].path.as_deref(),
        Some("{{slx_directory_path}}/extra.yaml")
    );
    assert_eq!(OutputKind::Sli.kind_name(), "ServiceLevelIndicator");

    // Level gating: an item is emitted when its level <= the resource's.
    assert!(slx.emitted_at(Lod::Basic));
    assert_eq!(slx.items_at(Lod::Basic).count(), 3);
    assert_eq!(slx.items_at(Lod::Detailed).count(), 4);
    assert!(!slx.emitted_at(Lod::None));
    let ns = &rule.slxs[1];
    assert_eq!(ns.level_of_detail, Lod::Basic, "default basic");
    assert_eq!(
        ns.output_items[0].template_name.as_deref(),
        Some("ns-summary-slx.yaml"),
        "baseName when no baseTemplateName"
    );
    assert!(!ns.emitted_at(Lod::Basic));

    assert_eq!(rule.output_items.len(), 1);
    assert_eq!(rule.output_items[0].kind, Some(OutputKind::Workflow));
    assert_eq!(
        rule.output_items[0].path.as_deref(),
        Some("workflows/x.yaml")
    );
}

#[test]
fn referenced_types_include_crds_and_cross_matched_types() {
    let file = parse(FULL);
    let refs = file.referenced_types();
    let shown: Vec<String> = refs.iter().map(ToString::to_string).collect();
    assert!(
        shown.contains(&"kubernetes:ingress".to_string()),
        "{shown:?}"
    );
    assert!(shown.contains(&"kubernetes:helmreleases.helm.toolkit.fluxcd.io/v2".to_string()));
    assert!(shown.contains(&"kubernetes:applications.argoproj.io".to_string()));
    assert_eq!(refs.len(), 8);
    let other = parse(
        "spec:\n  platform: azure\n  generationRules:\n  - resourceTypes: [virtual_machine, deployment]\n    matchRules: []\n    slxs: [{baseName: vm, outputItems: [{type: slx}]}]\n",
    );
    let all = referenced_types([&file, &other]);
    assert!(all.contains(&ResourceTypeSpec {
        platform: "azure".into(),
        reference: ResourceTypeRef::Builtin("deployment".into())
    }));
    assert_eq!(all.len(), 10);
}

#[test]
fn unknown_platforms_are_kept_and_reported() {
    let file = parse(
        "spec:\n  platform: azure\n  generationRules:\n  - resourceTypes: [azure_compute_virtual_machines]\n    matchRules: []\n    slxs: [{baseName: vm, outputItems: [{type: slx}]}]\n  - platform: kubernetes\n    resourceTypes: [namespace]\n    matchRules: []\n    slxs: [{baseName: ns, outputItems: [{type: slx}]}]\n",
    );
    assert_eq!(file.platform, "azure");
    assert_eq!(file.rules.len(), 2);
    assert!(!file.rules[0].is_indexed());
    assert_eq!(file.rules[1].platform, "kubernetes");
    assert_eq!(
        file.rules[1].resource_types[0].platform, "kubernetes",
        "the rule's platform applies to its types"
    );
    assert!(file.rules[1].is_indexed());
    assert_eq!(file.warnings.len(), 1, "{:#?}", file.warnings);
    assert!(
        file.warnings[0]
            .message
            .contains("\"azure\" is not indexed"),
        "{}",
        file.warnings[0]
    );
}

#[test]
fn invalid_rules_are_skipped_with_file_and_line_and_the_rest_loads() {
    let text = r#"spec:
  generationRules:
    - matchRules: []
      slxs: [{baseName: a, outputItems: [{type: slx}]}]
    - resourceTypes: [deployment]
      matchRules: []
      slxs:
        - qualifiers: [resource]
          outputItems: [{type: slx}]
    - resourceTypes: [deployment]
      matchRules:
        - type: pattern
          pattern: "foo(?=bar)"
          properties: [name]
      slxs: [{baseName: c, outputItems: [{type: slx}]}]
    - resourceTypes: [deployment]
      matchRules: [{type: regex, pattern: x}]
      slxs: [{baseName: d, outputItems: [{type: slx}]}]
    - resourceTypes: [deployment]
      matchRules: []
      slxs: [{baseName: e, levelOfDetail: verbose, outputItems: [{type: slx}]}]
    - resourceTypes: [deployment]
      matchRules: []
      slxs: [{baseName: good, outputItems: [{type: slx}]}]
    - resourceTypes: [deployment]
      slxs: [{baseName: f, outputItems: [{type: slx}]}]
"#;
    let file = parse(text);
    assert_eq!(file.rules.len(), 1);
    assert_eq!(file.rules[0].slxs[0].base_name, "good");
    assert_eq!(file.rules[0].index, 5);
    let w: Vec<String> = file.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(w.len(), 6, "{w:#?}");
    assert!(
        w[0].starts_with(&format!("{ORIGIN}:3: generation rule #1 skipped"))
            && w[0].contains("resourceTypes"),
        "{}",
        w[0]
    );
    assert!(
        w[1].starts_with(&format!("{ORIGIN}:8: generation rule #2 skipped"))
            && w[1].contains("baseName"),
        "{}",
        w[1]
    );
    assert!(
        w[2].starts_with(&format!("{ORIGIN}:12:"))
            && w[2].contains("\"foo(?=bar)\" does not compile"),
        "{}",
        w[2]
    );
    assert!(
        w[3].contains(":17:") && w[3].contains("unknown match rule type \"regex\""),
        "{}",
        w[3]
    );
    assert!(
        w[4].contains(":21:") && w[4].contains("verbose"),
        "{}",
        w[4]
    );
    assert!(
        w[5].contains(":25:") && w[5].contains("matchRules"),
        "{}",
        w[5]
    );
}

#[test]
fn whole_file_errors() {
    let err = RuleFile::parse(
        "spec:\n  generationRules:\n    - resourceTypes: [a\n",
        ORIGIN,
    )
    .unwrap_err();
    match &err {
        RuleError::Syntax { origin, line, .. } => {
            assert_eq!(origin, ORIGIN);
            assert_eq!(*line, 4);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().starts_with(&format!("{ORIGIN}:4:")),
        "{err}"
    );

    let err = RuleFile::parse("- a\n- b\n", ORIGIN).unwrap_err();
    assert!(matches!(err, RuleError::Shape { .. }), "{err:?}");
    let err = RuleFile::parse("spec:\n  generationRules: {a: 1}\n", ORIGIN).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{ORIGIN}:2: `spec.generationRules` is a mapping, expected a list of rules")
    );

    // Empty and comment-only files load with a warning and no rules.
    for text in ["", "# nothing yet\n", "apiVersion: v1\n"] {
        let file = parse(text);
        assert!(file.rules.is_empty());
        assert_eq!(file.warnings.len(), 1, "{text:?}");
    }
}

#[test]
fn doubtful_entries_warn_but_load() {
    let file = parse(
        "spec:\n  generationRules:\n  - resourceTypes: [stateful_set]\n    matchRules: []\n    slxs:\n    - baseName: ''\n      outputItems: [{type: report}]\n      qualifer: [x]\n",
    );
    assert_eq!(file.rules.len(), 1);
    let w: Vec<String> = file.warnings.iter().map(|w| w.message.clone()).collect();
    assert_eq!(w.len(), 4, "{w:#?}");
    assert!(
        w.iter()
            .any(|m| m.contains("stateful_set") && m.contains("plural.group"))
    );
    assert!(w.iter().any(|m| m.contains("empty baseName")));
    assert!(w.iter().any(|m| m.contains("\"report\"")));
    assert!(w.iter().any(|m| m.contains("`qualifer`")));
}
