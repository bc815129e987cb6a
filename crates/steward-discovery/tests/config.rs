//! `workspaceInfo.yaml` / `uploadInfo.yaml` parsing and the namespace policy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use steward_discovery::Lod;
use steward_discovery::config::{Action, ConfigError, ConfigWarning, UploadInfo, WorkspaceInfo};
use steward_discovery::naming::NameMode;

const ORIGIN: &str = "/etc/steward/workspaceInfo.yaml";

fn parse(text: &str) -> (WorkspaceInfo, Vec<ConfigWarning>) {
    WorkspaceInfo::parse(text, Path::new(ORIGIN)).unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(text: &str) -> ConfigError {
    match WorkspaceInfo::parse(text, Path::new(ORIGIN)) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

const HEADER: &str =
    "workspaceName: shop\nworkspaceOwnerEmail: ops@example.com\ndefaultLocation: loc-1\n";

fn with_header(rest: &str) -> String {
    format!("{HEADER}{rest}")
}

const FULL: &str = r#"
workspaceName: shop
workspaceOwnerEmail: ops@example.com
defaultLocation: loc-default
locationId: loc-1
defaultLocationName: Default name
locationName: Location One
papiURL: https://papi.example.invalid
token: secret-token
defaultLOD: 1
namespaceLODs:
  legacy-ns: detailed
  both: none
slxNameMode: legacy
cloudConfig:
  kubernetes:
    kubeconfigFile: kube/config
    inClusterAuth: false
    namespaces: [shop, "prod-.*"]
    namespaceLODs:
      both: basic
      kube-system: 0
    contexts:
      prod:
        defaultNamespaceLOD: none
        namespaceLODs:
          payments: detailed
        namespaces: [payments, "team-[a-z]+"]
      staging: {}
    excludeLabels:
      type: [croncoderun, coderun]
    excludeAnnotations:
      steward.io/skip: "yes"
    includeLabels:
      team: payments
    includeAnnotations:
      owner: ops
codeCollections:
  - https://example.invalid/plain.git
  - repoURL: https://example.invalid/private.git
    tag: v1.2.0
    branch: ignored-because-tag-wins
    repoPath: sub/dir
    codeBundles: ["!k8s-legacy-*", "k8s-*", {pattern: "^gcp-", patternType: regex, matchMode: exact, ignoreCase: false}]
    authUser: bot
    authToken: inline
    authTokenSecretName: git-token
    authTokenFromEnv: GIT_TOKEN
  - repoURL: defaults
  - repoURL: https://github.com/runwhen-contrib/aws-c7n-codecollection.git
    action: exclude
custom:
  kubeconfig_secret_name: k8s:file@secret/kubeconfig:kubeconfig
  nested: {a: [1, true]}
secrets:
  kubernetes_kubeconfig: {key: kubeconfig}
overrides:
  codebundles:
    - repoURL: https://example.invalid/private.git
      codebundleDirectory: k8s-deployment-healthcheck
      type: SLI
      configProvided:
        CHECK_INTERVAL_SECONDS: 60
taskTagExclusions: [Access:Read-Write, DESTRUCTIVE]
"#;

#[test]
fn every_key_is_read() {
    let (info, warnings) = parse(FULL);
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert_eq!(info.workspace_name, "shop");
    assert_eq!(info.owner_email, "ops@example.com");
    assert_eq!(
        info.location_id, "loc-1",
        "locationId wins over defaultLocation"
    );
    assert_eq!(info.location_name(), "Location One");
    assert_eq!(
        info.papi_url.as_deref(),
        Some("https://papi.example.invalid")
    );
    assert_eq!(info.token.as_deref(), Some("secret-token"));
    assert_eq!(info.default_lod, Lod::Basic, "integer defaultLOD");
    assert_eq!(info.slx_name_mode, Some(NameMode::Legacy));

    // Global namespaceLODs: top-level merged with cloudConfig.kubernetes (which wins).
    assert_eq!(info.namespace_lods["legacy-ns"], Lod::Detailed);
    assert_eq!(info.namespace_lods["both"], Lod::Basic);
    assert_eq!(info.namespace_lods["kube-system"], Lod::None);

    let k8s = info.kubernetes.as_ref().unwrap();
    assert_eq!(
        k8s.kubeconfig_file.as_deref(),
        Some(Path::new("/etc/steward/kube/config"))
    );
    assert!(!k8s.in_cluster_auth);
    assert_eq!(
        k8s.namespaces
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>(),
        ["shop", "prod-.*"]
    );
    let prod = &k8s.contexts["prod"];
    assert_eq!(prod.default_namespace_lod, Some(Lod::None));
    assert_eq!(prod.namespace_lods["payments"], Lod::Detailed);
    assert_eq!(prod.namespaces.len(), 2);
    assert_eq!(k8s.contexts["staging"], Default::default());
    assert_eq!(k8s.exclude_labels["type"], ["croncoderun", "coderun"]);
    assert_eq!(k8s.exclude_annotations["steward.io/skip"], ["yes"]);
    assert_eq!(k8s.include_labels["team"], ["payments"]);
    assert_eq!(k8s.include_annotations["owner"], ["ops"]);

    let cc = info.code_collections.as_ref().unwrap();
    assert_eq!(cc.len(), 4);
    assert_eq!(cc[0].repo_url, "https://example.invalid/plain.git");
    assert_eq!(cc[0].git_ref, "main");
    assert!(cc[0].includes_bundle("anything"));
    assert_eq!(cc[1].git_ref, "v1.2.0", "ref > tag > branch");
    assert_eq!(cc[1].repo_path.as_deref(), Some("sub/dir"));
    assert_eq!(cc[1].auth.user.as_deref(), Some("bot"));
    assert_eq!(cc[1].auth.token.as_deref(), Some("inline"));
    assert_eq!(cc[1].auth.token_secret_name.as_deref(), Some("git-token"));
    assert_eq!(cc[1].auth.token_secret_key, "token");
    assert_eq!(cc[1].auth.token_from_env.as_deref(), Some("GIT_TOKEN"));
    assert!(cc[2].is_defaults());
    assert_eq!(cc[3].action, Action::Exclude);

    assert_eq!(
        info.custom["kubeconfig_secret_name"],
        "k8s:file@secret/kubeconfig:kubeconfig"
    );
    assert_eq!(info.custom["nested"]["a"][1], true);
    assert_eq!(info.secrets["kubernetes_kubeconfig"]["key"], "kubeconfig");
    assert_eq!(info.overrides.len(), 1);
    let o = &info.overrides[0];
    assert!(o.applies_to(
        "https://example.invalid/private.git",
        "k8s-deployment-healthcheck",
        "sli"
    ));
    assert!(!o.applies_to(
        "https://example.invalid/private.git",
        "k8s-deployment-healthcheck",
        "runbook"
    ));
    assert_eq!(o.config_provided["CHECK_INTERVAL_SECONDS"], 60);
    assert_eq!(
        info.task_tag_exclusions,
        ["access:read-write", "destructive"]
    );
    assert!(info.excludes_task_tags(&["Destructive".to_string()]));
    assert!(info.excludes_task_tags(&["DESTRUCT_IVE".to_string()]));
    assert!(!info.excludes_task_tags(&["access:read-only".to_string()]));
    // Compared as Robot Framework compares tags: case, spaces and underscores ignored.
    assert!(info.excludes_task_tags(&["Access : Read-Write".to_string()]));

    // The raw document stays available, and the variable tree roots `custom`.
    assert_eq!(
        info.raw["cloudConfig"]["kubernetes"]["inClusterAuth"],
        false
    );
    let vars = info.variables();
    assert_eq!(vars["custom"]["nested"]["a"][0], 1);
    assert_eq!(vars["workspace"]["owner_email"], "ops@example.com");
    assert_eq!(vars["generated_by"], "workspace-builder:Location One");
}

#[test]
fn code_bundle_patterns_follow_upstream_order_and_modes() {
    let (info, _) = parse(FULL);
    let private = &info.code_collections.as_ref().unwrap()[1];
    // `!k8s-legacy-*` comes first, so it wins over `k8s-*`.
    assert!(!private.includes_bundle("k8s-legacy-thing"));
    // Globs default to substring matching and ignore case.
    assert!(private.includes_bundle("my-K8S-deployment"));
    // The regex entry is start-anchored and case-sensitive.
    assert!(private.includes_bundle("gcp-bucket"));
    assert!(!private.includes_bundle("GCP-bucket"));
    assert!(!private.includes_bundle("azure-aks"));

    let (info, _) = parse(&with_header(
        "codeCollections:\n- repoURL: u1\n  codeBundles: ['*', '!skip-me']\n- repoURL: u2\n  codeBundles: [{pattern: exact-one, patternType: literal, matchMode: exact}]\n",
    ));
    let cc = info.code_collections.unwrap();
    // First match decides: `*` matches first, so the exclusion after it never applies.
    assert!(cc[0].includes_bundle("skip-me"));
    assert!(cc[1].includes_bundle("Exact-One"));
    assert!(!cc[1].includes_bundle("exact-one-more"));
}

#[test]
fn location_name_defaults_to_the_id_and_default_lod_to_detailed() {
    let (info, warnings) = parse(&with_header("cloudConfig: {}\n"));
    assert_eq!(info.location_id, "loc-1");
    assert_eq!(info.location_name(), "loc-1");
    assert_eq!(info.default_lod, Lod::Detailed);
    assert!(info.kubernetes.is_none());
    assert!(info.code_collections.is_none());
    assert_eq!(info.custom, serde_json::json!({}));
    assert!(warnings.is_empty(), "{warnings:?}");

    for (written, lod) in [
        ("basic", Lod::Basic),
        ("DETAILED", Lod::Detailed),
        ("0", Lod::None),
        ("'2'", Lod::Detailed),
    ] {
        let (info, _) = parse(&with_header(&format!(
            "cloudConfig: {{}}\ndefaultLOD: {written}\n"
        )));
        assert_eq!(info.default_lod, lod, "{written}");
    }
}

#[test]
fn upload_info_wins_except_for_the_owner_email() {
    let upload_text = "papiURL: https://upload.invalid\ntoken: up-token\nworkspaceName: from-upload\n\
                       workspaceOwnerEmail: upload@example.com\ndefaultLocation: loc-up\ndefaultLocationName: Up\n";
    let (upload, warnings) =
        UploadInfo::parse(upload_text, Path::new("/x/uploadInfo.yaml")).unwrap();
    assert!(warnings.is_empty());
    let ws = "workspaceName: from-ws\nworkspaceOwnerEmail: ws@example.com\nlocationId: loc-ws\npapiURL: https://ws.invalid\ncloudConfig: {}\n";
    let (info, _) = WorkspaceInfo::parse_with_upload(ws, Path::new(ORIGIN), Some(&upload)).unwrap();
    assert_eq!(info.workspace_name, "from-upload");
    assert_eq!(info.owner_email, "ws@example.com");
    assert_eq!(info.location_id, "loc-up");
    assert_eq!(info.location_name(), "Up");
    assert_eq!(info.papi_url.as_deref(), Some("https://upload.invalid"));
    assert_eq!(info.token.as_deref(), Some("up-token"));

    // Required keys may come from uploadInfo alone.
    let (info, _) =
        WorkspaceInfo::parse_with_upload("cloudConfig: {}\n", Path::new(ORIGIN), Some(&upload))
            .unwrap();
    assert_eq!(info.owner_email, "upload@example.com");
}

#[test]
fn files_load_from_disk_with_upload_info() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("workspaceInfo.yaml");
    let up = dir.path().join("uploadInfo.yaml");
    std::fs::write(
        &ws,
        "workspaceOwnerEmail: a@b.c\ncloudConfig:\n  kubernetes:\n    kubeconfigFile: kubeconfig\n",
    )
    .unwrap();
    std::fs::write(&up, "workspaceName: w\nlocationId: l\ntoken: t\n").unwrap();
    let (info, _) = WorkspaceInfo::load_with_upload(&ws, Some(&up)).unwrap();
    assert_eq!(info.workspace_name, "w");
    assert_eq!(
        info.kubernetes.unwrap().kubeconfig_file,
        Some(dir.path().join("kubeconfig"))
    );

    let missing = dir.path().join("nope.yaml");
    let err = WorkspaceInfo::load(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    assert!(err.to_string().contains("nope.yaml"), "{err}");
}

// Upstream bug #533: `cloudConfig.kubernetes: null` crashed run.py with AttributeError.
#[test]
fn null_kubernetes_section_is_an_error_naming_the_key_and_line() {
    let err = parse_err(&with_header("cloudConfig:\n  kubernetes: null\n"));
    assert_eq!(err.key(), Some("cloudConfig.kubernetes"));
    assert_eq!(err.line(), Some(5));
    let text = err.to_string();
    assert!(text.starts_with(&format!("{ORIGIN}:5:")), "{text}");
    assert!(
        text.contains("null") && text.contains("kubernetes: {}"),
        "{text}"
    );
}

#[test]
fn null_sections_are_errors() {
    let err = parse_err(&with_header("cloudConfig: null\n"));
    assert_eq!(err.key(), Some("cloudConfig"));
    assert_eq!(err.line(), Some(4));
    assert!(err.to_string().contains("cloudConfig: {}"), "{err}");

    let err = parse_err(&with_header("cloudConfig: {}\ncustom: ~\n"));
    assert_eq!(err.key(), Some("custom"));
    assert!(
        matches!(err, ConfigError::WrongType { found: "null", .. }),
        "{err:?}"
    );

    let err = parse_err(&with_header("cloudConfig: {}\ncodeCollections:\n"));
    assert_eq!(err.key(), Some("codeCollections"));
    assert!(err.to_string().contains("codeCollections: []"), "{err}");

    let err = parse_err(&with_header(
        "cloudConfig:\n  kubernetes:\n    namespaceLODs:\n",
    ));
    assert_eq!(err.key(), Some("cloudConfig.kubernetes.namespaceLODs"));
}

// Upstream bug #533 again: a list where a mapping is expected.
#[test]
fn contexts_written_as_a_list_is_an_error_saying_what_to_write() {
    let text = with_header(
        "cloudConfig:\n  kubernetes:\n    kubeconfigFile: k\n    contexts:\n      - name: prod\n        defaultNamespaceLOD: basic\n",
    );
    let err = parse_err(&text);
    assert_eq!(err.key(), Some("cloudConfig.kubernetes.contexts"));
    assert_eq!(err.line(), Some(7));
    let msg = err.to_string();
    assert!(
        msg.contains("is a list") && msg.contains("<context-name>:"),
        "{msg}"
    );

    let err = parse_err(&with_header("cloudConfig: {}\ncustom: [a, b]\n"));
    assert!(err.to_string().contains("not as `- ` list items"), "{err}");
}

// Upstream bug #533: `azure: null` / `aksClusters` as a list crashed; here the azure block is
// ignored (cloud discovery is not built), with a warning and no crash.
#[test]
fn cloud_blocks_are_ignored_with_a_warning_whatever_their_shape() {
    let (info, warnings) = parse(&with_header(
        "cloudConfig:\n  kubernetes:\n    kubeconfigFile: k\n  azure: null\n  gcp:\n    gkeClusters: [a]\n  aws:\n    eksClusters: []\n",
    ));
    assert!(info.kubernetes.is_some());
    let keys: Vec<&str> = warnings.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(
        keys,
        ["cloudConfig.azure", "cloudConfig.gcp", "cloudConfig.aws"]
    );
    assert!(
        warnings[0].message.contains("not built yet"),
        "{}",
        warnings[0]
    );
    assert_eq!(warnings[0].line, Some(7));
    assert!(
        warnings[0]
            .to_string()
            .starts_with(&format!("{ORIGIN}:7: `cloudConfig.azure`")),
        "{}",
        warnings[0]
    );
}

// Upstream bug #500: no kubeconfigFile gave HTTP 500 "cannot access local variable".
#[test]
fn kubernetes_without_a_kubeconfig_file_falls_back_to_the_default_kubeconfig() {
    let (info, warnings) = parse(&with_header(
        "cloudConfig:\n  kubernetes:\n    namespaces: [shop]\n",
    ));
    let k8s = info.kubernetes.unwrap();
    assert_eq!(k8s.kubeconfig_file, None);
    assert!(!k8s.in_cluster_auth);
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].key, "cloudConfig.kubernetes");
    assert!(warnings[0].message.contains("default kubeconfig"));

    let (info, warnings) = parse(&with_header(
        "cloudConfig:\n  kubernetes:\n    inClusterAuth: yes\n",
    ));
    assert!(info.kubernetes.unwrap().in_cluster_auth, "YAML 1.1 `yes`");
    assert!(warnings.is_empty());

    let (info, _) = parse(&with_header(
        "cloudConfig:\n  kubernetes:\n    kubeconfigFile: /abs/kubeconfig\n",
    ));
    assert_eq!(
        info.kubernetes.unwrap().kubeconfig_file,
        Some(PathBuf::from("/abs/kubeconfig"))
    );
}

#[test]
fn missing_required_keys_are_named() {
    let cases = [
        (
            "workspaceOwnerEmail: a@b.c\ndefaultLocation: l\ncloudConfig: {}\n",
            "workspaceName",
        ),
        (
            "workspaceName: w\ndefaultLocation: l\ncloudConfig: {}\n",
            "workspaceOwnerEmail",
        ),
        (
            "workspaceName: w\nworkspaceOwnerEmail: a@b.c\ncloudConfig: {}\n",
            "defaultLocation",
        ),
        (
            "workspaceName: ''\nworkspaceOwnerEmail: a@b.c\ndefaultLocation: l\n",
            "workspaceName",
        ),
    ];
    for (text, key) in cases {
        let err = parse_err(text);
        assert!(matches!(err, ConfigError::Missing { .. }), "{err:?}");
        assert_eq!(err.key(), Some(key));
        assert!(err.to_string().contains(&format!("`{key}`")), "{err}");
    }
    let err = parse_err("workspaceName: my shop\nworkspaceOwnerEmail: a@b.c\ndefaultLocation: l\n");
    assert_eq!(err.key(), Some("workspaceName"));
}

#[test]
fn syntax_errors_carry_file_line_and_column() {
    let err = parse_err("workspaceName: w\ncloudConfig:\n  kubernetes: [a, b\nfoo: 1\n");
    match &err {
        ConfigError::Syntax {
            file, line, column, ..
        } => {
            assert_eq!(file, Path::new(ORIGIN));
            assert_eq!(*line, 4);
            assert!(*column >= 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().starts_with(&format!("{ORIGIN}:4:")),
        "{err}"
    );

    let err = parse_err("- a\n- b\n");
    assert!(
        matches!(
            err,
            ConfigError::WrongType {
                found: "a list",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn invalid_values_are_errors_with_the_key_path() {
    let err = parse_err(&with_header("defaultLOD: verbose\ncloudConfig: {}\n"));
    assert_eq!(err.key(), Some("defaultLOD"));
    assert_eq!(err.line(), Some(4));
    assert!(err.to_string().contains("none, basic or detailed"), "{err}");

    let err = parse_err(&with_header(
        "cloudConfig:\n  kubernetes:\n    contexts:\n      prod:\n        namespaceLODs: {payments: 5}\n",
    ));
    assert_eq!(
        err.key(),
        Some("cloudConfig.kubernetes.contexts.prod.namespaceLODs.payments")
    );

    let err = parse_err(&with_header("slxNameMode: short\ncloudConfig: {}\n"));
    assert_eq!(err.key(), Some("slxNameMode"));

    let err = parse_err(&with_header(
        "cloudConfig: {}\ncodeCollections:\n  - branch: main\n",
    ));
    assert_eq!(err.key(), Some("codeCollections[0]"));
    assert!(err.to_string().contains("repoURL"), "{err}");

    let err = parse_err(&with_header(
        "cloudConfig: {}\ncodeCollections:\n  - repoURL: u\n    codeBundles: [{pattern: '(', patternType: regex}]\n",
    ));
    assert_eq!(err.key(), Some("codeCollections[0].codeBundles[0].pattern"));

    let err = parse_err(&with_header(
        "cloudConfig:\n  kubernetes:\n    namespaces: shop\n",
    ));
    assert_eq!(err.key(), Some("cloudConfig.kubernetes.namespaces"));
    assert!(err.to_string().contains("namespaces: [shop]"), "{err}");
}

#[test]
fn unknown_and_ineffective_keys_are_reported_by_key_path() {
    let text = with_header(
        "namespaces: [a]\nuseLocalGit: true\nazureThrottleMaxAttempts: 3\nwriteWorkspaceFilesToDisk: true\n\
         resourceStoreBackend: sqlite\nnamespaceLods: {a: none}\nmystery: 1\n\
         cloudConfig:\n  kubernetes:\n    kubeconfigFile: k\n    defaultNamespaceLOD: basic\n    contexts:\n      prod:\n        defaultLOD: basic\n  openstack: {}\n",
    );
    let (_, warnings) = parse(&text);
    let by_key: BTreeMap<&str, &ConfigWarning> =
        warnings.iter().map(|w| (w.key.as_str(), w)).collect();
    assert!(
        by_key["namespaces"]
            .message
            .contains("cloudConfig.kubernetes.namespaces")
    );
    assert!(by_key["useLocalGit"].message.contains("no effect"));
    assert!(
        by_key["azureThrottleMaxAttempts"]
            .message
            .contains("not built yet")
    );
    assert!(by_key.contains_key("writeWorkspaceFilesToDisk"));
    assert!(by_key.contains_key("resourceStoreBackend"));
    assert!(
        by_key["namespaceLods"]
            .message
            .contains("did you mean `namespaceLODs`")
    );
    assert!(by_key["mystery"].message.contains("unknown key"));
    assert!(by_key.contains_key("cloudConfig.kubernetes.defaultNamespaceLOD"));
    assert!(by_key.contains_key("cloudConfig.kubernetes.contexts.prod.defaultLOD"));
    assert!(by_key.contains_key("cloudConfig.openstack"));
    assert_eq!(by_key["mystery"].line, Some(10));
    assert_eq!(warnings.len(), 10, "{warnings:#?}");
}

#[test]
fn a_missing_cloud_config_is_a_warning() {
    let (info, warnings) = parse(HEADER);
    assert!(info.kubernetes.is_none());
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].key, "cloudConfig");
}
