//! The namespace policy of `workspaceInfo.yaml`: which namespaces are indexed, at which level.

use std::collections::BTreeMap;
use std::path::Path;
use steward_discovery::Lod;
use steward_discovery::config::{
    ConfigWarning, LodSource, NamespaceDecision, SkipReason, WorkspaceInfo,
};

const ORIGIN: &str = "/etc/steward/workspaceInfo.yaml";

fn parse(text: &str) -> (WorkspaceInfo, Vec<ConfigWarning>) {
    WorkspaceInfo::parse(text, Path::new(ORIGIN)).unwrap_or_else(|e| panic!("{e}"))
}

const HEADER: &str =
    "workspaceName: shop\nworkspaceOwnerEmail: ops@example.com\ndefaultLocation: loc-1\n";

fn with_header(rest: &str) -> String {
    format!("{HEADER}{rest}")
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn none() -> BTreeMap<String, String> {
    BTreeMap::new()
}

const POLICY: &str = r#"
defaultLOD: basic
namespaceLODs:
  global-detailed: detailed
  shared: detailed
  kube-system: none
cloudConfig:
  kubernetes:
    kubeconfigFile: k
    contexts:
      prod:
        defaultNamespaceLOD: none
        namespaceLODs:
          shared: basic
          prod-only: detailed
      dev:
        defaultNamespaceLOD: detailed
"#;

#[test]
fn lod_precedence_for_ordinary_contexts() {
    let (info, _) = parse(&with_header(POLICY));
    let lod = |ctx: &str, ns: &str| info.namespace_decision(ctx, ns, &none(), &none());

    // Context namespaceLODs > global namespaceLODs.
    assert_eq!(
        lod("prod", "shared"),
        NamespaceDecision::Index {
            lod: Lod::Basic,
            source: LodSource::ContextNamespaceLods
        }
    );
    // Global namespaceLODs > context defaultNamespaceLOD (even a `none` default).
    assert_eq!(
        lod("prod", "global-detailed"),
        NamespaceDecision::Index {
            lod: Lod::Detailed,
            source: LodSource::GlobalNamespaceLods
        }
    );
    // Context default for the rest.
    assert_eq!(
        lod("prod", "random"),
        NamespaceDecision::Skip(SkipReason::LodNone(LodSource::ContextDefault))
    );
    assert_eq!(
        lod("dev", "random"),
        NamespaceDecision::Index {
            lod: Lod::Detailed,
            source: LodSource::ContextDefault
        }
    );
    // Global default for contexts the file does not name.
    assert_eq!(
        lod("other", "random"),
        NamespaceDecision::Index {
            lod: Lod::Basic,
            source: LodSource::GlobalDefault
        }
    );
    assert_eq!(
        info.namespace_lod("other", "kube-system", &none(), &none()),
        None
    );
    assert_eq!(
        info.configured_namespace_lod("dev", "shared"),
        (Lod::Detailed, LodSource::GlobalNamespaceLods)
    );
}

// Defect §6.2c: per-cluster namespaceLODs leaked into every other cluster/context upstream.
#[test]
fn context_levels_do_not_leak_into_other_contexts() {
    let (info, _) = parse(&with_header(POLICY));
    assert_eq!(
        info.namespace_lod("prod", "prod-only", &none(), &none()),
        Some(Lod::Detailed)
    );
    assert_eq!(
        info.namespace_lod("dev", "prod-only", &none(), &none()),
        Some(Lod::Detailed),
        "dev's own default"
    );
    assert_eq!(
        info.namespace_lod("other", "prod-only", &none(), &none()),
        Some(Lod::Basic),
        "global default, not prod's"
    );
    assert!(!info.namespace_lods.contains_key("prod-only"));
}

// Upstream bug #543: setting namespaceLODs (as the Helm chart does) excluded all namespaces.
#[test]
fn naming_some_namespaces_does_not_exclude_the_others() {
    let (info, _) = parse(&with_header(
        "cloudConfig:\n  kubernetes:\n    kubeconfigFile: k\n    namespaceLODs:\n      kube-system: 0\n      kube-public: 0\n      flux-system: 0\n",
    ));
    assert_eq!(
        info.namespace_lod("any", "kube-system", &none(), &none()),
        None
    );
    assert_eq!(
        info.namespace_lod("any", "shop", &none(), &none()),
        Some(Lod::Detailed)
    );
    assert_eq!(
        info.namespace_lod("any", "default", &none(), &none()),
        Some(Lod::Detailed)
    );
}

#[test]
fn the_lod_annotation_overrides_everything() {
    let (info, _) = parse(&with_header(POLICY));
    let detailed = map(&[("config.runwhen.com/lod", "detailed")]);
    // Even a namespace the configuration sets to `none`...
    assert_eq!(
        info.namespace_decision("prod", "random", &none(), &detailed),
        NamespaceDecision::Index {
            lod: Lod::Detailed,
            source: LodSource::Annotation
        }
    );
    assert_eq!(
        info.namespace_lod("other", "kube-system", &none(), &detailed),
        Some(Lod::Detailed)
    );
    // ...and `none` skips a namespace the configuration would index.
    let off = map(&[("config.runwhen.com/lod", "none")]);
    assert_eq!(
        info.namespace_decision("dev", "shared", &none(), &off),
        NamespaceDecision::Skip(SkipReason::LodNone(LodSource::Annotation))
    );
    // Any other value is ignored.
    let junk = map(&[("config.runwhen.com/lod", "everything")]);
    assert_eq!(
        info.namespace_lod("dev", "random", &none(), &junk),
        Some(Lod::Detailed)
    );
}

#[test]
fn ignore_annotation_and_label_skip_a_namespace() {
    let (info, _) = parse(&with_header("cloudConfig: {}\n"));
    let ann = map(&[("config.runwhen.com/ignore", "true")]);
    assert!(matches!(
        info.namespace_decision("c", "ns", &none(), &ann),
        NamespaceDecision::Skip(SkipReason::Ignored { .. })
    ));
    let label = map(&[("runwhen-local", "ignore")]);
    assert_eq!(info.namespace_lod("c", "ns", &label, &none()), None);
    let not_quite = map(&[("config.runwhen.com/ignore", "false")]);
    assert_eq!(
        info.namespace_lod("c", "ns", &none(), &not_quite),
        Some(Lod::Detailed)
    );
}

#[test]
fn include_and_exclude_filters() {
    let (info, _) = parse(&with_header(
        "cloudConfig:\n  kubernetes:\n    kubeconfigFile: k\n    excludeLabels: {type: [coderun, croncoderun], tier: scratch}\n    excludeAnnotations: {skip: 'true'}\n    includeLabels: {team: [a, b]}\n    includeAnnotations: {owner: ops}\n",
    ));
    let lod = |labels: &[(&str, &str)], ann: &[(&str, &str)]| {
        info.namespace_decision("c", "ns", &map(labels), &map(ann))
    };
    assert!(matches!(
        lod(&[("team", "a"), ("type", "coderun")], &[]),
        NamespaceDecision::Skip(SkipReason::Excluded { .. })
    ));
    assert!(matches!(
        lod(&[("team", "a"), ("tier", "scratch")], &[]),
        NamespaceDecision::Skip(SkipReason::Excluded { .. })
    ));
    assert!(matches!(
        lod(&[("team", "a")], &[("skip", "true")]),
        NamespaceDecision::Skip(SkipReason::Excluded { .. })
    ));
    assert_eq!(
        lod(&[("team", "c")], &[]),
        NamespaceDecision::Skip(SkipReason::NotIncluded)
    );
    assert!(lod(&[("team", "b")], &[]).lod().is_some());
    assert!(
        lod(&[], &[("owner", "ops")]).lod().is_some(),
        "an include annotation is enough"
    );
}

#[test]
fn namespace_filters_take_exact_names_and_full_match_regexes() {
    let (info, _) = parse(&with_header(
        "cloudConfig:\n  kubernetes:\n    kubeconfigFile: k\n    namespaces: [shop, 'prod-.*', 'bad(']\n    contexts:\n      team:\n        namespaces: ['team-[0-9]+']\n",
    ));
    assert!(info.namespace_selected("any", "shop"));
    assert!(
        !info.namespace_selected("any", "shop2"),
        "exact names are not prefixes"
    );
    assert!(info.namespace_selected("any", "prod-eu"));
    assert!(
        !info.namespace_selected("any", "xprod-eu"),
        "regexes must match the whole name"
    );
    assert!(
        info.namespace_selected("any", "bad("),
        "an invalid regex is compared literally"
    );
    // A context's own list replaces the global one.
    assert!(info.namespace_selected("team", "team-42"));
    assert!(!info.namespace_selected("team", "team-x"));
    assert!(!info.namespace_selected("team", "shop"));
    assert_eq!(
        info.namespace_decision("any", "other", &none(), &none()),
        NamespaceDecision::Skip(SkipReason::NotSelected)
    );
    assert_eq!(info.configured_namespaces("any"), ["shop", "bad("]);
    assert!(info.configured_namespaces("team").is_empty());

    let (info, _) = parse(&with_header(
        "cloudConfig:\n  kubernetes:\n    kubeconfigFile: k\n",
    ));
    assert!(
        info.namespace_selected("any", "whatever"),
        "no filter: every namespace"
    );
}

#[test]
fn invalid_namespace_regex_is_reported() {
    let (_, warnings) = parse(&with_header(
        "cloudConfig:\n  kubernetes:\n    kubeconfigFile: k\n    namespaces: ['bad(']\n",
    ));
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].key, "cloudConfig.kubernetes.namespaces[0]");
    assert!(warnings[0].message.contains("plain name"));
}
