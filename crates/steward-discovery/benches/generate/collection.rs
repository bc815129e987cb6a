//! The synthetic CodeCollection: 50 codebundles with two generation rules each, shaped like a
//! public Kubernetes collection.
//!
//! Bundles come in families by what they watch (namespaces, deployments, workloads per
//! namespace, statefulsets, services, ingresses, pods). Each rule picks one of its family's
//! match rules (name, label, annotation and payload-path patterns, `exists`, `and`/`or`/`not`,
//! a cross-resource and a `custom-variable` predicate), so some rules match every object of a
//! kind (as a deployment health check does) and most match a slice. Namespace overviews are
//! `basic`; per-resource checks, second opinions and every SLI are `detailed`, generated only
//! in namespaces that ask for detail (production ones here).
//! Templates use the built-in includes and the variables real templates use.

use std::path::Path;

/// One family of codebundles.
struct Family {
    /// Bundle name prefix (`k8s-deploy-` + topic).
    prefix: &'static str,
    /// `resourceTypes` of its rules.
    types: &'static str,
    /// Per-resource (`[resource, namespace, cluster]`) or per namespace (`[namespace, cluster]`).
    per_resource: bool,
    topics: &'static [&'static str],
    /// `matchRules` lists (YAML flow sequences), picked by rule number.
    matches: &'static [&'static str],
    /// What the SLX's checks are about, for descriptions.
    noun: &'static str,
    /// How many of the topics have a `basic` first rule; every other rule is `detailed`.
    basic_topics: usize,
}

const FAMILIES: &[Family] = &[
    Family {
        prefix: "k8s-ns-",
        types: "[namespace]",
        per_resource: false,
        topics: &[
            "health",
            "events",
            "quota",
            "netpol",
            "rbac",
            "secrets-age",
            "image-pull",
            "pvc-usage",
            "cost",
            "restarts",
            "warnings",
            "ownership",
        ],
        matches: &[
            r#"[{type: not, match: {type: pattern, pattern: "^(kube-|default$|ingress-nginx$)", properties: [name], mode: exact}}]"#,
            r#"[{type: pattern, pattern: "prod", properties: [label-values], mode: substring}]"#,
            r#"[{type: or, matches: [{type: pattern, pattern: "gold|silver", properties: [metadata/annotations/runwhen.com//tier], mode: exact}, {type: pattern, pattern: "^(payments|checkout|identity)", properties: [name], mode: exact}]}]"#,
            r#"[{type: exists, path: metadata/annotations/owner}, {type: pattern, pattern: "^cc-1[0-2]\\d$", properties: [labels], mode: exact}]"#,
            r#"[{type: and, matches: [{type: pattern, pattern: "staging|prod", properties: [metadata/labels/env], mode: exact}, {type: not, match: {type: pattern, pattern: "^sandbox", properties: [name], mode: exact}}]}]"#,
            r#"[{type: pattern, pattern: "postgres", properties: [name], resourceType: statefulset}, {type: pattern, pattern: "enabled", properties: [metadata/labels/istio-injection], mode: exact}]"#,
            r#"[{type: custom-variable, path: custom/namespace_checks, pattern: "^enabled$"}, {type: pattern, pattern: "-(prod|staging)$", properties: [name]}]"#,
        ],
        noun: "namespace",
        basic_topics: 12,
    },
    Family {
        prefix: "k8s-deploy-",
        types: "[deployment]",
        per_resource: true,
        topics: &[
            "health",
            "rollout",
            "scaling",
            "probes",
            "resources",
            "logs",
            "restarts",
            "image-age",
            "hpa",
            "sidecar",
        ],
        matches: &[
            r#"[{type: pattern, pattern: ".+", properties: [name], mode: substring}]"#,
            r#"[{type: pattern, pattern: "^frontend$", properties: [labels], mode: exact}]"#,
            r#"[{type: pattern, pattern: "envoy|nginx", properties: [spec/template/spec/containers/image]}]"#,
            r#"[{type: and, matches: [{type: pattern, pattern: "^([3-9]|\\d\\d+)$", properties: [spec/replicas], mode: exact}, {type: not, match: {type: pattern, pattern: "-(worker|scheduler)$", properties: [name]}}]}]"#,
            r#"[{type: pattern, pattern: "^true$", properties: [spec/template/metadata/annotations/prometheus.io//scrape], mode: exact}]"#,
            r#"[{type: or, matches: [{type: pattern, pattern: "-api$", properties: [name]}, {type: pattern, pattern: "gateway", properties: [name]}]}]"#,
            r#"[{type: exists, path: spec/template/spec/containers/resources/limits/memory}, {type: pattern, pattern: "backend", properties: [label-values], mode: exact}]"#,
            r#"[{type: pattern, pattern: "Recreate", properties: [spec/strategy/type], mode: exact}]"#,
            r#"[{type: pattern, pattern: "^(worker|batch)$", properties: [metadata/labels/app.kubernetes.io//component], mode: exact}]"#,
            r#"[{type: and, matches: [{type: pattern, pattern: "-(auth|admin)$", properties: [name]}, {type: exists, path: spec/template/spec/containers/livenessProbe}]}]"#,
        ],
        noun: "deployment",
        basic_topics: 0,
    },
    Family {
        prefix: "k8s-workload-",
        types: "[deployment, statefulset]",
        per_resource: false,
        topics: &[
            "troubleshoot",
            "health",
            "replica-drift",
            "config-drift",
            "log-anomalies",
            "crashloops",
        ],
        matches: &[
            r#"[{type: pattern, pattern: ".+", properties: [name], mode: substring}]"#,
            r#"[{type: pattern, pattern: "^Helm$", properties: [metadata/labels/app.kubernetes.io//managed-by], mode: exact}]"#,
            r#"[{type: not, match: {type: pattern, pattern: "^(kube-system|monitoring)$", properties: [metadata/namespace], mode: exact}}]"#,
            r#"[{type: pattern, pattern: "database|backend", properties: [label-values]}]"#,
        ],
        noun: "workloads",
        basic_topics: 3,
    },
    Family {
        prefix: "k8s-sts-",
        types: "[statefulset]",
        per_resource: true,
        topics: &[
            "health",
            "pvc",
            "postgres",
            "redis",
            "kafka",
            "backup",
            "replication",
        ],
        matches: &[
            r#"[{type: pattern, pattern: ".+", properties: [name], mode: substring}]"#,
            r#"[{type: exists, path: spec/volumeClaimTemplates}, {type: pattern, pattern: "fast-ssd", properties: [spec/volumeClaimTemplates/spec/storageClassName], mode: exact}]"#,
            r#"[{type: pattern, pattern: "postgresql", properties: [spec/template/spec/containers/image]}]"#,
            r#"[{type: pattern, pattern: "/redis:", properties: [spec/template/spec/containers/image]}]"#,
            r#"[{type: pattern, pattern: "kafka|zookeeper", properties: [spec/template/spec/containers/image]}]"#,
            r#"[{type: or, matches: [{type: pattern, pattern: "elasticsearch", properties: [spec/template/spec/containers/image]}, {type: pattern, pattern: "mongodb", properties: [name]}]}]"#,
            r#"[{type: pattern, pattern: "^3$", properties: [spec/replicas], mode: exact}]"#,
        ],
        noun: "statefulset",
        basic_topics: 0,
    },
    Family {
        prefix: "k8s-svc-",
        types: "[service]",
        per_resource: true,
        topics: &["endpoints", "lb-health", "tls", "latency", "dns"],
        matches: &[
            r#"[{type: pattern, pattern: "LoadBalancer", properties: [spec/type], mode: exact}]"#,
            r#"[{type: pattern, pattern: "^443$", properties: [spec/ports/port], mode: exact}]"#,
            r#"[{type: pattern, pattern: "^prometheus\\.io/scrape$", properties: [annotation-keys], mode: exact}]"#,
            r#"[{type: not, match: {type: pattern, pattern: "^None$", properties: [spec/clusterIP], mode: exact}}, {type: pattern, pattern: "-(api|web)$", properties: [name]}]"#,
        ],
        noun: "service",
        basic_topics: 0,
    },
    Family {
        prefix: "k8s-ingress-",
        types: "[ingress]",
        per_resource: true,
        topics: &[
            "health",
            "cert-expiry",
            "gateway",
            "backend-errors",
            "rate-limits",
        ],
        matches: &[
            r#"[{type: pattern, pattern: ".+", properties: [name], mode: substring}]"#,
            r#"[{type: exists, path: spec/tls}]"#,
            r#"[{type: pattern, pattern: "letsencrypt", properties: [annotations]}]"#,
            r#"[{type: pattern, pattern: "\\.example\\.com$", properties: [spec/rules/host]}]"#,
            r#"[{type: pattern, pattern: "nginx", properties: [spec/ingressClassName], mode: exact}]"#,
        ],
        noun: "ingress",
        basic_topics: 0,
    },
    Family {
        prefix: "k8s-pod-",
        types: "[pod]",
        per_resource: false,
        topics: &["crashloop", "oom", "pending", "batch", "security"],
        matches: &[
            r#"[{type: pattern, pattern: "Pending|Failed", properties: [status/phase], mode: exact}]"#,
            r#"[{type: exists, path: metadata/annotations/runwhen.com//watch}, {type: pattern, pattern: "^batch$", properties: [labels], mode: exact}]"#,
            r#"[{type: pattern, pattern: "^[1-9]", properties: [status/containerStatuses/restartCount], mode: exact}]"#,
            r#"[{type: pattern, pattern: "ReplicaSet", properties: [metadata/ownerReferences/kind], mode: exact}]"#,
            r#"[{type: pattern, pattern: "True", properties: [spec/containers/securityContext/privileged], mode: exact}]"#,
        ],
        noun: "pods",
        basic_topics: 0,
    },
];

/// What [`write`] produced.
pub struct Written {
    pub bundles: usize,
    pub rules: usize,
}

/// Writes the collection under `root` (`root/codebundles/<bundle>/...`).
pub fn write(root: &Path) -> std::io::Result<Written> {
    let mut bundles = 0;
    let mut rules = 0;
    for (f, family) in FAMILIES.iter().enumerate() {
        for (t, topic) in family.topics.iter().enumerate() {
            let bundle = format!("{}{topic}", family.prefix);
            let dir = root.join("codebundles").join(&bundle);
            std::fs::create_dir_all(dir.join(".runwhen/generation-rules"))?;
            std::fs::create_dir_all(dir.join(".runwhen/templates"))?;
            let short = short_name(topic, f);
            let mut text = String::from(
                "apiVersion: runwhen.com/v1\nkind: GenerationRules\nspec:\n  platform: kubernetes\n  generationRules:\n",
            );
            for r in 0..2 {
                let matches = family.matches[(t + r) % family.matches.len()];
                text.push_str(&rule(family, &short, &bundle, t, r, matches));
                rules += 1;
            }
            std::fs::write(
                dir.join(format!(".runwhen/generation-rules/{bundle}.yaml")),
                text,
            )?;
            for (item, body) in templates(family.noun, family.per_resource, &bundle) {
                std::fs::write(
                    dir.join(format!(".runwhen/templates/{bundle}-{item}.yaml")),
                    body,
                )?;
            }
            if family.per_resource {
                for (item, body) in templates(family.noun, false, &bundle) {
                    std::fs::write(
                        dir.join(format!(".runwhen/templates/{bundle}-rollup-{item}.yaml")),
                        body,
                    )?;
                }
            }
            std::fs::write(dir.join("runbook.robot"), robot(&bundle, "runbook"))?;
            std::fs::write(dir.join("sli.robot"), robot(&bundle, "sli"))?;
            std::fs::write(
                dir.join("README.md"),
                format!(
                    "# {bundle}\n\nChecks the {} it is generated for.\n",
                    family.noun
                ),
            )?;
            bundles += 1;
        }
    }
    Ok(Written { bundles, rules })
}

/// A base name of at most 15 characters, distinct across bundles, as collections keep them
/// short to stay whole in SLX names.
fn short_name(topic: &str, f: usize) -> String {
    let kind = ["ns", "dp", "wl", "ss", "sv", "in", "po"][f];
    let topic: String = topic
        .split('-')
        .map(|w| &w[..w.len().min(6)])
        .collect::<Vec<_>>()
        .join("");
    format!("{kind}-{}", &topic[..topic.len().min(10)])
}

fn rule(
    family: &Family,
    short: &str,
    bundle: &str,
    topic: usize,
    r: usize,
    matches: &str,
) -> String {
    // The second rule of a per-resource bundle rolls its kind up per namespace.
    let per_resource = family.per_resource && r == 0;
    let qualifiers = if per_resource {
        "[resource, namespace, cluster]"
    } else {
        "[namespace, cluster]"
    };
    let template = if family.per_resource && r == 1 {
        format!("{bundle}-rollup")
    } else {
        bundle.to_string()
    };
    // A collection's basic SLXs are namespace-wide overviews; per-resource checks are
    // generated only where a namespace asks for detail.
    let basic = r == 0 && topic < family.basic_topics;
    let lod = if basic { "basic" } else { "detailed" };
    let base = if r == 0 {
        short.to_string()
    } else {
        format!("{short}-x")
    };
    // Second rules pass a threshold through templateVariables, as tunable bundles do.
    let variables = if r == 1 {
        "\n        templateVariables:\n          threshold: \"{{ custom.restart_threshold | default(3) }}\""
    } else {
        ""
    };
    format!(
        "  - resourceTypes: {types}\n    matchRules: {matches}\n    slxs:\n    - baseName: {base}\n      qualifiers: {qualifiers}\n      baseTemplateName: {template}\n      levelOfDetail: {lod}\n      outputItems:\n      - type: slx\n      - type: sli\n        levelOfDetail: detailed\n      - type: runbook\n        templateName: {template}-taskset.yaml{variables}\n",
        types = family.types,
    )
}

/// The subject line of a description: the resource, or the namespace's resources.
fn subject(noun: &str, per_resource: bool) -> String {
    if per_resource {
        format!(
            "{noun} {{{{ match_resource.resource.metadata.name }}}} in namespace {{{{ match_resource.resource.metadata.namespace }}}}"
        )
    } else if noun == "namespace" {
        "namespace {{ match_resource.resource.metadata.name }}".to_string()
    } else {
        let plural = match noun {
            "ingress" => "ingresses".to_string(),
            n if n.ends_with('s') => n.to_string(),
            n => format!("{n}s"),
        };
        format!(
            "the {plural} of namespace {{{{ namespace.name }}}} ({{{{ child_resource_names | length }}}} checked)"
        )
    }
}

/// The `configProvided` entries every item of the bundle passes to its robot files.
fn config_lines(noun: &str, per_resource: bool) -> String {
    let mut lines = String::new();
    let mut entry = |name: &str, value: &str| {
        lines.push_str(&format!("    - name: {name}\n      value: {value}\n"));
    };
    if per_resource {
        entry(
            &format!("{}_NAME", noun.to_ascii_uppercase()),
            "{{ match_resource.resource.metadata.name }}",
        );
        entry(
            "NAMESPACE",
            "{{ match_resource.resource.metadata.namespace }}",
        );
        entry(
            "LABELS",
            "\"{% for k, v in match_resource.resource.metadata.labels | items %}{{ k }}={{ v }}{% if not loop.last %},{% endif %}{% endfor %}\"",
        );
    } else if noun == "namespace" {
        entry("NAMESPACE", "{{ match_resource.resource.metadata.name }}");
        entry(
            "TEAM",
            "{{ match_resource.labels.team | default(\"unknown\") }}",
        );
    } else {
        entry("NAMESPACE", "{{ namespace.name }}");
        entry(
            &format!("{}_NAMES", noun.to_ascii_uppercase()),
            "\"{{ child_resource_names | join(',') }}\"",
        );
    }
    entry("CONTEXT", "\"{{ context }}\"");
    entry(
        "KUBERNETES_DISTRIBUTION_BINARY",
        "{{ custom.kubernetes_distribution_binary | default(\"kubectl\") }}",
    );
    entry("THRESHOLD", "\"{{ threshold | default('1') }}\"");
    lines
}

const SECRETS: &str = "  secretsProvided:\n  {% if wb_version %}\n    {% include \"kubernetes-auth.yaml\" ignore missing %}\n  {% else %}\n    - name: kubeconfig\n      workspaceKey: {{ custom.kubeconfig_secret_name | default(\"kubeconfig\") }}\n  {% endif %}\n";

const HEADER: &str = "metadata:\n  name: {{ slx_name }}\n  labels:\n    {% include \"common-labels.yaml\" %}\n  annotations:\n    {% include \"common-annotations.yaml\" %}\n";

fn code_bundle(bundle: &str, robot: &str) -> String {
    format!(
        "  codeBundle:\n    {{% if repo_url %}}\n    repoUrl: {{{{ repo_url }}}}\n    {{% else %}}\n    repoUrl: https://git.example.com/sre/k8s-collection.git\n    {{% endif %}}\n    ref: {{{{ ref | default(\"main\") }}}}\n    pathToRobot: codebundles/{bundle}/{robot}.robot\n"
    )
}

/// (item, template text) for `slx`, `sli` and `taskset`: of one resource, or of a namespace's
/// resources of the kind.
fn templates(noun: &str, per_resource: bool, bundle: &str) -> Vec<(&'static str, String)> {
    let subject = subject(noun, per_resource);
    let config = config_lines(noun, per_resource);
    // What the SLX is named after: its resource, or the namespace it rolls up.
    let object = if per_resource || noun == "namespace" {
        "match_resource.resource.metadata.name"
    } else {
        "namespace.name"
    };
    let slx = format!(
        "apiVersion: runwhen.com/v1\nkind: ServiceLevelX\n{HEADER}spec:\n  imageURL: https://icons.example.com/kubernetes/{noun}.svg\n  alias: {{{{ {object} }}}} {title}\n  asMeasuredBy: The share of checks of {subject} that pass.\n  statement: Checks of {subject} should pass at least 99% of the time.\n  configProvided:\n  - name: OBJECT_NAME\n    value: {{{{ {object} }}}}\n  owners:\n  - {{{{ workspace.owner_email }}}}\n  additionalContext:\n    {{% include \"kubernetes-hierarchy.yaml\" ignore missing %}}\n    qualified_name: \"{{{{ match_resource.qualified_name }}}}\"\n    namespace: \"{{{{ namespace.name | default('') }}}}\"\n    cluster: \"{{{{ cluster.name }}}}\"\n  tags:\n    {{% include \"kubernetes-tags.yaml\" ignore missing %}}\n    - name: access\n      value: read-only\n    - name: bundle\n      value: {bundle}\n",
        title = title(bundle),
    );
    let sli = format!(
        "apiVersion: runwhen.com/v1\nkind: ServiceLevelIndicator\n{HEADER}    runwhen.com/sli: \"true\"\nspec:\n  displayUnitsLong: OK\n  displayUnitsShort: ok\n  locations:\n  - {{{{ default_location }}}}\n  description: Scores {subject}; 1 when every check passes.\n{code}  intervalStrategy: intermezzo\n  intervalSeconds: {interval}\n  configProvided:\n{config}{SECRETS}  alerts:\n    warning:\n      operator: <\n      threshold: \"1\"\n      for: 15m\n",
        code = code_bundle(bundle, "sli"),
        interval = 300,
    );
    let taskset = format!(
        "apiVersion: runwhen.com/v1\nkind: Runbook\n{HEADER}spec:\n  location: {{{{ default_location }}}}\n  description: Troubleshoots {subject}.\n{code}  configProvided:\n{config}{SECRETS}",
        code = code_bundle(bundle, "runbook"),
    );
    vec![("slx", slx), ("sli", sli), ("taskset", taskset)]
}

fn title(bundle: &str) -> String {
    bundle
        .trim_start_matches("k8s-")
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn robot(bundle: &str, kind: &str) -> String {
    format!(
        "*** Settings ***\nDocumentation    The {kind} of {bundle}.\nMetadata         Author    bench\n\n*** Tasks ***\nCheck {bundle}\n    [Tags]    kubernetes    {kind}\n    Log    checking\n"
    )
}

/// The workspaceInfo.yaml: basic by default, production namespaces are detailed through
/// their annotation, kube-system is left out.
pub fn workspace_info(collection: &Path, kubeconfig: Option<&Path>) -> String {
    let kubeconfig = kubeconfig
        .map(|p| format!("    kubeconfigFile: {}\n", p.display()))
        .unwrap_or_default();
    format!(
        "workspaceName: bench-prod\nworkspaceOwnerEmail: sre@example.com\ndefaultLocation: location-01\ndefaultLocationName: Bench runners\n\
         defaultLOD: basic\ncloudConfig:\n  kubernetes:\n{kubeconfig}    namespaceLODs:\n      kube-system: none\n\
         codeCollections:\n  - repoURL: {}\n    ref: main\n    codeBundles: [\"k8s-*\"]\n\
         custom:\n  kubeconfig_secret_name: k8s:file@secret/kubeconfig:kubeconfig\n  kubernetes_distribution_binary: kubectl\n  namespace_checks: enabled\n  restart_threshold: 5\n",
        collection.display()
    )
}
