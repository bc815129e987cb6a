//! The Helm charts under deploy/helm, rendered and linted by the real Helm engine (Helm's Go SDK
//! from PyPI's helm-python-sdk), every rendered object parsed into its k8s-openapi type.
//! deploy_images.rs checks the pinned versions.

mod helm;

use helm::*;
use k8s_openapi::api::core::v1::ResourceQuota;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use steward_runner::config_file::RunnerFile;
use steward_runner::kubernetes::pod;

/// Variables the runner chart sets that are not `steward runner` flags: STEWARD_POD_NAME feeds
/// --name, the Kubernetes executor reads STEWARD_POD_IP itself.
const RUNNER_NOT_READ_YET: &[&str] = &["STEWARD_POD_NAME", "STEWARD_POD_IP"];

#[test]
fn defaults_render_lint_and_match_the_binary() {
    let rendered = render_ok(&[
        case("steward-runner", "r1", runner_values(json!({}))),
        case("steward-platform", "p1", json!({})),
    ]);
    let (runner, platform) = (&rendered[0], &rendered[1]);

    let kinds = |pairs: &[(&str, usize)]| -> BTreeMap<String, usize> {
        pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
    };
    assert_eq!(
        runner.kinds(),
        kinds(&[
            ("ClusterRoleBinding", 1),
            ("ConfigMap", 2),
            ("Deployment", 1),
            ("Role", 1),
            ("RoleBinding", 1),
            ("Secret", 1),
            ("ServiceAccount", 1),
        ])
    );
    assert_eq!(
        platform.kinds(),
        kinds(&[
            ("Deployment", 1),
            ("PersistentVolumeClaim", 1),
            ("Service", 1),
            ("ServiceAccount", 1),
        ])
    );

    // Images default to deploy/images.yaml; the runner runs tasks in-process, so it uses the
    // runtime image.
    let images = images_yaml();
    let reference = |name: &str| {
        format!(
            "{}/{}:{}",
            images["registry"].as_str().unwrap(),
            images["images"][name]["repository"].as_str().unwrap(),
            images["images"][name]["tag"].as_str().unwrap()
        )
    };
    assert_eq!(runner.images(), vec![reference("runtime"); 2]);
    assert_eq!(platform.images(), vec![reference("steward")]);

    // The view ClusterRole by default, bound to the runner's ServiceAccount.
    let crb: ClusterRoleBinding =
        serde_json::from_value(runner.of_kind("ClusterRoleBinding")[0].value.clone()).unwrap();
    assert_eq!(crb.role_ref.name, "view");
    assert_eq!(crb.subjects.unwrap()[0].name, "r1-steward-runner");
    let role: Role = serde_json::from_value(runner.of_kind("Role")[0].value.clone()).unwrap();
    let granted: BTreeSet<String> = role
        .rules
        .unwrap()
        .iter()
        .flat_map(|r| r.resources.clone().unwrap_or_default())
        .collect();
    for resource in [
        "pods",
        "deployments",
        "resourcequotas",
        "limitranges",
        "leases",
        "secrets",
        "configmaps",
    ] {
        assert!(granted.contains(resource), "the Role lacks {resource}");
    }

    // Restricted pods.
    for spec in runner.pod_specs().iter().chain(&platform.pod_specs()) {
        let pod = spec.security_context.as_ref().unwrap();
        assert_eq!(pod.run_as_non_root, Some(true));
        for c in containers(spec) {
            let sc = c.security_context.as_ref().unwrap();
            assert_eq!(sc.allow_privilege_escalation, Some(false));
            assert_eq!(
                sc.capabilities.as_ref().unwrap().drop.as_deref(),
                Some(&["ALL".to_string()][..])
            );
        }
    }

    // The command lines are the binary's own flags and variables.
    let runner_container = &runner.pod_specs()[0].containers[0];
    assert_binary_accepts(runner_container, RUNNER_NOT_READ_YET);
    let env = env_of(runner_container);
    assert_eq!(env["STEWARD_PLATFORM_URL"], "https://steward.example.com");
    let platform_container = &platform.pod_specs()[0].containers[0];
    assert_binary_accepts(platform_container, &[]);
    assert_eq!(
        env_of(platform_container)["STEWARD_PUBLIC_URL"],
        "http://p1-steward-platform.ops.svc"
    );

    // The runner's configuration names what task pods need.
    let config = runner.runner_config();
    assert_eq!(config["kubernetes"]["namespace"], "ops");
    assert_eq!(config["kubernetes"]["image"], reference("runtime"));
    assert_eq!(
        config["kubernetes"]["labels"]["app.kubernetes.io/component"],
        "task"
    );
    // ...and the runner reads it without a warning.
    let (file, warnings) = RunnerFile::parse(&runner.runner_config_text()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(file.secret_providers.is_empty() && file.blocked_secrets.is_empty());
}

#[test]
fn secret_providers_and_namespaces_reach_the_runner() {
    let rendered = render_ok(&[case(
        "steward-runner",
        "r1",
        runner_values(json!({
            "runner": {
                "secretProviders": {"corp-vault": {"type": "vault", "vaultSecretProvider": {
                    "addr": "https://vault.corp:8200", "roleID": "steward",
                    "secretID": "k8s:file@secret/vault-approle:secret-id"}}},
                "blockedSecrets": ["k8s:*@kube-system/"],
                "secretCacheSeconds": 0,
            },
            "rbac": {"secretNamespaces": ["shop", "billing"]},
        })),
    )]);
    let runner = &rendered[0];
    let (file, warnings) = RunnerFile::parse(&runner.runner_config_text()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let vault = file.secret_providers["corp-vault"].vault.clone().unwrap();
    assert_eq!(vault.addr, "https://vault.corp:8200");
    assert_eq!(
        vault.secret_id.as_deref(),
        Some("k8s:file@secret/vault-approle:secret-id")
    );
    assert_eq!(file.blocked_secrets, ["k8s:*@kube-system/"]);
    assert_eq!(file.secret_cache_seconds, Some(0));
    let namespaces: BTreeSet<String> = runner
        .of_kind("Role")
        .iter()
        .filter(|o| o.name.ends_with("-secrets"))
        .map(|o| {
            let role: Role = serde_json::from_value(o.value.clone()).unwrap();
            let rule = &role.rules.unwrap()[0];
            assert_eq!(rule.verbs, ["get"]);
            role.metadata.namespace.unwrap()
        })
        .collect();
    assert_eq!(
        namespaces,
        BTreeSet::from(["billing".into(), "shop".into()])
    );
    assert_eq!(runner.of_kind("RoleBinding").len(), 3);

    let off = render_ok(&[case(
        "steward-runner",
        "r1",
        runner_values(json!({"rbac": {"readSecrets": false}})),
    )]);
    let role: Role = serde_json::from_value(off[0].of_kind("Role")[0].value.clone()).unwrap();
    assert!(role.rules.unwrap().iter().all(|r| {
        !r.resources
            .clone()
            .unwrap_or_default()
            .contains(&"secrets".to_string())
    }));
}

#[test]
fn registry_override_and_pull_secrets_reach_every_image() {
    let mirror = "mirror.example:5000/steward-mirror";
    let common = json!({
        "registryOverride": mirror,
        "imagePullSecrets": ["pull-a", {"name": "pull-b"}],
        // With a custom CA every pod also has an init container: it must be rewritten too.
        "customCA": {"secretName": "corp-ca"},
    });
    let mut platform_values = common.clone();
    merge(
        &mut platform_values,
        json!({"ingress": {"enabled": true}, "replicas": 2,
               "database": {"existingSecret": "db"}, "artifacts": {"url": "s3://bucket/runs"}}),
    );
    let cases = [
        case("steward-runner", "r1", runner_values(common.clone())),
        case(
            "steward-runner",
            "r2",
            runner_values({
                let mut v = common.clone();
                merge(&mut v, json!({"runner": {"executor": "kubernetes"}}));
                v
            }),
        ),
        case("steward-platform", "p1", platform_values),
    ];
    let rendered = render_ok(&cases);
    for (r, c) in rendered.iter().zip(&cases) {
        let images = r.images();
        assert!(!images.is_empty());
        for image in &images {
            assert!(
                image.starts_with(&format!("{mirror}/")),
                "{} ({}): image {image} escapes registryOverride",
                c.chart,
                c.release
            );
        }
        for spec in r.pod_specs() {
            assert!(spec.init_containers.as_ref().is_some_and(|i| !i.is_empty()));
            let names: Vec<String> = spec
                .image_pull_secrets
                .iter()
                .flatten()
                .map(|s| s.name.clone())
                .collect();
            assert_eq!(names, ["pull-a", "pull-b"], "{}", c.release);
        }
    }
    // The pods the runner will start get the same registry and pull secrets.
    for runner in &rendered[..2] {
        let config = runner.runner_config();
        assert!(
            config["kubernetes"]["image"]
                .as_str()
                .unwrap()
                .starts_with(mirror)
        );
        assert_eq!(
            config["kubernetes"]["imagePullSecrets"],
            json!(["pull-a", "pull-b"])
        );
    }
    // With the Kubernetes executor the runner itself runs from the small steward image.
    let image = rendered[1].pod_specs()[0].containers[0]
        .image
        .clone()
        .unwrap();
    assert_eq!(image, format!("{mirror}/steward:0.1.0"));
}

#[test]
fn proxy_and_custom_ca_reach_every_pod_and_the_pods_the_runner_starts() {
    let proxy = json!({
        "proxy": {"httpProxy": "http://proxy.corp:3128", "httpsProxy": "http://proxy.corp:3128"},
    });
    let with_ca = |ca: Value| {
        let mut v = proxy.clone();
        merge(&mut v, json!({ "customCA": ca }));
        v
    };
    let cases = [
        case(
            "steward-runner",
            "r1",
            runner_values(with_ca(json!({"secretName": "corp-ca"}))),
        ),
        case(
            "steward-runner",
            "r2",
            runner_values(with_ca(
                json!({"configMapName": "corp-ca", "key": "bundle.pem", "appendToSystem": false}),
            )),
        ),
        case(
            "steward-platform",
            "p1",
            with_ca(json!({"secretName": "corp-ca"})),
        ),
    ];
    let rendered = render_ok(&cases);
    let ca_file = "/etc/steward/ca/ca-certificates.crt";
    for (r, c) in rendered.iter().zip(&cases) {
        for spec in r.pod_specs() {
            let volumes = spec.volumes.clone().unwrap_or_default();
            let source = volumes.iter().find(|v| v.name == "ca-source").unwrap();
            let from = source
                .secret
                .as_ref()
                .and_then(|s| s.secret_name.clone())
                .or_else(|| source.config_map.as_ref().map(|m| m.name.clone()));
            assert_eq!(from.as_deref(), Some("corp-ca"), "{}", c.release);
            for container in &spec.containers {
                let env = env_of(container);
                for name in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "NO_PROXY"] {
                    assert!(env.contains_key(name), "{}: {name} missing", c.release);
                }
                for name in ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO"] {
                    assert_eq!(env[name], ca_file, "{}", c.release);
                }
                assert!(
                    container
                        .volume_mounts
                        .iter()
                        .flatten()
                        .any(|m| m.mount_path == "/etc/steward/ca"),
                    "{}: the CA is not mounted",
                    c.release
                );
            }
        }
    }
    // appendToSystem: an init container writes the combined bundle; without it the source is
    // mounted as the bundle itself.
    assert!(rendered[0].pod_specs()[0].init_containers.is_some());
    assert!(rendered[1].pod_specs()[0].init_containers.is_none());
    for runner in &rendered[..2] {
        let container = &runner.pod_specs()[0].containers[0];
        assert!(
            container
                .args
                .iter()
                .flatten()
                .any(|a| a == &format!("--ca-cert={ca_file}"))
        );
        assert_binary_accepts(container, RUNNER_NOT_READ_YET);
        let config = runner.runner_config();
        let env: BTreeSet<&str> = config["kubernetes"]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert!(env.contains("HTTPS_PROXY") && env.contains("SSL_CERT_FILE"));

        // The task pods the runner builds from that file trust the CA too.
        let (file, warnings) = RunnerFile::parse(&runner.runner_config_text()).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let settings = file.kubernetes.unwrap();
        let run = steward_model::run::RunSpec {
            run_id: uuid::Uuid::now_v7(),
            kind: steward_model::run::RunKind::Runbook,
            workspace: "ws".into(),
            slx: "slx".into(),
            location: "here".into(),
            code_bundle: Default::default(),
            config: vec![],
            secrets: vec![],
            task_titles: vec![],
            timeout_seconds: 60,
            session_id: None,
            interval_seconds: None,
        };
        let labels = pod::labels(&settings, &run, "runner-0");
        let task = pod::task_pod(&settings, &run, "ops", &labels, "runtime:1");
        let spec = task.spec.unwrap();
        let task_env = env_of(&spec.containers[0]);
        assert_eq!(task_env["SSL_CERT_FILE"], ca_file);
        assert_eq!(task_env["HTTPS_PROXY"], "http://proxy.corp:3128");
        assert!(
            spec.containers[0]
                .volume_mounts
                .iter()
                .flatten()
                .any(|m| m.mount_path == "/etc/steward/ca")
        );
        assert!(spec.volumes.unwrap().iter().any(|v| v.name == "ca-source"));
        assert_eq!(
            spec.init_containers.is_some(),
            runner.pod_specs()[0].init_containers.is_some()
        );
        assert_eq!(labels["app.kubernetes.io/component"], "task");
    }
    let volumes = &rendered[1].runner_config()["kubernetes"]["volumes"];
    assert_eq!(volumes[0]["configMap"]["name"], "corp-ca", "{volumes}");
}

#[test]
fn the_kubernetes_executor_gets_its_address_and_port() {
    let rendered = render_ok(&[case(
        "steward-runner",
        "r1",
        runner_values(json!({"runner": {"executor": "kubernetes"}})),
    )]);
    let runner = &rendered[0];
    let container = &runner.pod_specs()[0].containers[0];
    assert_binary_accepts(container, RUNNER_NOT_READ_YET);
    let env = env_of(container);
    assert_eq!(env["STEWARD_EXECUTOR"], "kubernetes");
    assert!(env.contains_key("STEWARD_POD_IP"));
    assert!(
        container
            .ports
            .iter()
            .flatten()
            .any(|p| p.container_port == 8000)
    );
    let (file, warnings) = RunnerFile::parse(&runner.runner_config_text()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let settings = file.kubernetes.unwrap();
    assert!(settings.image.unwrap().contains("runtime"));
    // It may manage the per-run and pool Secrets.
    let role: Role = serde_json::from_value(runner.of_kind("Role")[0].value.clone()).unwrap();
    assert!(role.rules.unwrap().iter().any(|r| {
        r.resources
            .clone()
            .unwrap_or_default()
            .contains(&"secrets".to_string())
            && ["create", "delete"]
                .iter()
                .all(|v| r.verbs.contains(&v.to_string()))
    }));
    // The runner itself runs from the small image.
    assert!(container.image.as_deref().unwrap().contains("/steward:"));
}

#[test]
fn a_kubeconfig_secret_replaces_the_cluster_view() {
    let rendered = render_ok(&[case(
        "steward-runner",
        "r1",
        runner_values(json!({
            "kubeconfig": {"existingSecret": "fleet-kubeconfig", "key": "config"},
            "cloudCredentials": {"aws": {"data": {"aws_credentials": "[default]\n"}},
                                 "gcp": {"existingSecret": "gcp-sa"}},
        })),
    )]);
    let runner = &rendered[0];
    assert!(runner.of_kind("ClusterRoleBinding").is_empty());
    assert_eq!(
        runner.of_kind("Role").len(),
        1,
        "the runner still manages pods"
    );
    assert!(
        runner
            .of_kind("ConfigMap")
            .iter()
            .all(|o| !o.name.ends_with("-kubeconfig")),
        "no in-cluster kubeconfig"
    );
    let spec = &runner.pod_specs()[0];
    let secrets = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "secrets")
        .and_then(|v| v.projected.clone())
        .unwrap();
    let sources = secrets.sources.unwrap();
    let kubeconfig = sources[0].secret.as_ref().unwrap();
    assert_eq!(kubeconfig.name, "fleet-kubeconfig");
    let item = &kubeconfig.items.as_ref().unwrap()[0];
    assert_eq!(
        (item.key.as_str(), item.path.as_str()),
        ("config", "kubeconfig")
    );
    let cloud: Vec<&str> = sources[1..]
        .iter()
        .map(|s| s.secret.as_ref().unwrap().name.as_str())
        .collect();
    assert_eq!(cloud, ["r1-steward-runner-aws", "gcp-sa"]);
    assert!(
        runner
            .of_kind("Secret")
            .iter()
            .any(|o| o.name == "r1-steward-runner-aws")
    );
    // Task pods get these through the runner (it resolves the bare keys and passes the values
    // in each run's Secret), so the runner's file needs no more than it accepts.
    let (_, warnings) = RunnerFile::parse(&runner.runner_config_text()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn quota_limits_and_network_policy_are_optional() {
    let rendered = render_ok(&[
        case("steward-runner", "off", runner_values(json!({}))),
        case(
            "steward-runner",
            "on",
            runner_values(json!({
                "quota": {"enabled": true, "hard": {"pods": "20", "limits.cpu": "6"}},
                "limitRange": {"enabled": true},
                "networkPolicy": {"enabled": true},
            })),
        ),
    ]);
    for kind in ["ResourceQuota", "LimitRange", "NetworkPolicy"] {
        assert!(
            rendered[0].of_kind(kind).is_empty(),
            "{kind} without asking"
        );
        assert_eq!(rendered[1].of_kind(kind).len(), 1, "{kind}");
    }
    let on = &rendered[1];
    let quota: ResourceQuota =
        serde_json::from_value(on.of_kind("ResourceQuota")[0].value.clone()).unwrap();
    let hard = quota.spec.unwrap().hard.unwrap();
    assert_eq!(hard["pods"].0, "20");
    assert_eq!(hard["limits.cpu"].0, "6");
    let policy: NetworkPolicy =
        serde_json::from_value(on.of_kind("NetworkPolicy")[0].value.clone()).unwrap();
    let spec = policy.spec.unwrap();
    assert_eq!(
        spec.policy_types.as_deref(),
        Some(&["Ingress".to_string(), "Egress".to_string()][..])
    );
    // Ingress only from the release's own pods; the selector covers the runner and the pods
    // it starts (their labels come from the runner's configuration).
    let selector = spec.pod_selector.unwrap().match_labels.unwrap();
    let runner_labels = on
        .deployment()
        .spec
        .unwrap()
        .template
        .metadata
        .unwrap()
        .labels
        .unwrap();
    let config = on.runner_config();
    for (k, v) in &selector {
        assert_eq!(runner_labels.get(k), Some(v));
        assert_eq!(config["kubernetes"]["labels"][k], json!(v));
    }
    let dns = &spec.egress.unwrap()[0];
    assert!(
        dns.ports
            .iter()
            .flatten()
            .any(|p| p.port == Some(IntOrString::Int(53)))
    );
}

#[test]
fn two_releases_share_a_namespace() {
    let cases = [
        case("steward-runner", "team-a", runner_values(json!({}))),
        case("steward-runner", "team-b", runner_values(json!({}))),
        case(
            "steward-platform",
            "team-a",
            json!({"ingress": {"enabled": true}}),
        ),
        case(
            "steward-platform",
            "team-b",
            json!({"ingress": {"enabled": true, "host": "b.example.com"}}),
        ),
    ];
    let rendered = render_ok(&cases);
    let mut seen = BTreeSet::new();
    for (r, c) in rendered.iter().zip(&cases) {
        for o in &r.objects {
            let expected = (o.kind != "ClusterRoleBinding").then_some("ops");
            assert_eq!(o.namespace.as_deref(), expected, "{} {}", o.kind, o.name);
            let key = (o.kind.clone(), o.namespace.clone(), o.name.clone());
            assert!(
                seen.insert(key.clone()),
                "{key:?} of {} {} collides",
                c.chart,
                c.release
            );
        }
    }
    // A Deployment's selector must not match another release's pods.
    let labels_and_selectors: Vec<_> = rendered
        .iter()
        .map(|r| {
            let d = r.deployment().spec.unwrap();
            (
                d.template.metadata.unwrap().labels.unwrap(),
                d.selector.match_labels.unwrap(),
            )
        })
        .collect();
    for (i, (_, selector)) in labels_and_selectors.iter().enumerate() {
        for (j, (labels, _)) in labels_and_selectors.iter().enumerate() {
            let matches = selector.iter().all(|(k, v)| labels.get(k) == Some(v));
            assert_eq!(matches, i == j, "selector {i} against pods of {j}");
        }
    }
}

#[test]
fn bad_values_are_refused_with_the_reason() {
    let cases = [
        case(
            "steward-runner",
            "r1",
            runner_values(json!({"replicas": "two"})),
        ),
        case("steward-platform", "p1", json!({"replicas": "two"})),
        case(
            "steward-runner",
            "r1",
            runner_values(json!({"runnner": {"capacity": 2}})),
        ),
        case(
            "steward-runner",
            "r1",
            json!({"registrationToken": {"value": "t"}}),
        ),
        case(
            "steward-runner",
            "r1",
            json!({"platformUrl": "https://steward.example.com"}),
        ),
        case("steward-platform", "p1", json!({"replicas": 2})),
        case(
            "steward-runner",
            "r1",
            runner_values(json!({"runner": {"executor": "docker"}})),
        ),
        case(
            "steward-runner",
            "r1",
            runner_values(json!({"runner": {"secretProviders": {"v": {"type": "aws"}}}})),
        ),
    ];
    let expected = [
        "/replicas",
        "/replicas",
        "runnner",
        "platformUrl is required",
        "registrationToken",
        "replicas > 1 needs PostgreSQL",
        "/runner/executor",
        "/runner/secretProviders/v/type",
    ];
    for ((result, c), want) in render(&cases).into_iter().zip(&cases).zip(expected) {
        let error = result.err().unwrap_or_else(|| {
            panic!(
                "{} rendered with {}, which should be refused",
                c.chart, c.values
            )
        });
        assert!(error.contains(want), "{want:?} not in: {error}");
    }
}
