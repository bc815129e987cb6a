//! The synthetic cluster: 200 namespaces of 50 objects each (the namespace, 8 deployments, 4
//! statefulsets, 10 services, 3 ingresses, 24 pods), 10,000 objects in all.
//!
//! Objects look like `kubectl get -o yaml` prints them (managedFields hidden, as kubectl does
//! by default): Helm and app.kubernetes.io labels, a last-applied-configuration annotation on
//! half the deployments, probes, resources, env, projected service-account volumes on pods
//! and full status blocks. Everything is derived from the indices, so every run of the
//! benchmark sees the same bytes.

use serde_json::{Value, json};

pub const NAMESPACES: usize = 200;
const DEPLOYMENTS: usize = 8;
const STATEFULSETS: usize = 4;
const SERVICES: usize = 10;
const INGRESSES: usize = 3;
const PODS_PER_DEPLOYMENT: usize = 3;
const POD_CONDITIONS: &[&str] = &[
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

const TEAMS: &[&str] = &[
    "payments",
    "checkout",
    "catalog",
    "search",
    "identity",
    "billing",
    "shipping",
    "orders",
    "inventory",
    "pricing",
    "reviews",
    "loyalty",
    "ads",
    "analytics",
    "media",
    "messaging",
    "support",
    "partners",
    "fraud",
    "ledger",
    "reporting",
    "notifications",
    "geo",
    "booking",
    "recommend",
    "profile",
    "wallet",
    "tax",
    "returns",
    "warehouse",
    "fleet",
    "routing",
    "content",
    "cms",
    "i18n",
    "compliance",
    "audit",
    "export",
    "import",
    "sync",
    "gateway",
    "edge",
    "mobile-bff",
    "web-bff",
    "partner-api",
    "data-lake",
    "ml-serving",
    "feature-store",
    "experiments",
    "sandbox",
];
const TIERS: &[&str] = &["gold", "silver", "bronze"];
const ENVS: &[&str] = &["prod", "staging", "dev", "qa"];
/// The first namespaces are the platform's own instead of team namespaces.
/// `default` is one of them: every cluster has it, and the API server serves it.
const SYSTEM: &[&str] = &["kube-system", "default", "monitoring", "ingress-nginx"];

const COMPONENTS: &[(&str, &str)] = &[
    ("api", "backend"),
    ("web", "frontend"),
    ("worker", "worker"),
    ("gateway", "edge"),
    ("auth", "backend"),
    ("scheduler", "worker"),
    ("notifier", "worker"),
    ("admin", "frontend"),
    ("exporter", "backend"),
    ("ingest", "backend"),
    ("reports", "frontend"),
    ("batch", "batch"),
];
const STORES: &[(&str, &str)] = &[
    ("postgres", "docker.io/bitnami/postgresql:16.4.0"),
    ("redis", "docker.io/bitnami/redis:7.4.1"),
    ("kafka", "docker.io/bitnami/kafka:3.8.0"),
    (
        "elasticsearch",
        "docker.elastic.co/elasticsearch/elasticsearch:8.15.2",
    ),
    ("mongodb", "docker.io/bitnami/mongodb:7.0.14"),
    ("rabbitmq", "docker.io/bitnami/rabbitmq:3.13.7"),
    ("zookeeper", "docker.io/bitnami/zookeeper:3.9.2"),
];

/// Deterministic pseudo-random bits for (a, b, c): splitmix64 of the combined indices.
fn mix(a: usize, b: usize, c: usize) -> u64 {
    let mut z = (a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (b as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9)
        ^ (c as u64).wrapping_mul(0x94D0_49BB_1331_11EB);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn uid(a: usize, b: usize, c: usize) -> String {
    let h = mix(a, b, c);
    let l = mix(c, b, a);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        0x8000 | (l >> 48 & 0x3fff),
        l & 0xffff_ffff_ffff
    )
}

fn hash_suffix(a: usize, b: usize, c: usize, len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h = mix(a, b, c);
    (0..len)
        .map(|_| {
            let ch = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
            h /= ALPHABET.len() as u64;
            ch
        })
        .collect()
}

/// The namespace's name, team and environment.
pub fn namespace_name(i: usize) -> (String, &'static str, &'static str) {
    let team = TEAMS[i / ENVS.len() % TEAMS.len()];
    let env = ENVS[i % ENVS.len()];
    match SYSTEM.get(i) {
        Some(system) => (system.to_string(), "platform", "prod"),
        None => (format!("{team}-{env}"), team, env),
    }
}

/// Every object, kind by kind as `kubectl get <kind> -A` lists them: (file stem, objects).
pub fn objects() -> Vec<(&'static str, Vec<Value>)> {
    let mut namespaces = Vec::new();
    let mut deployments = Vec::new();
    let mut statefulsets = Vec::new();
    let mut services = Vec::new();
    let mut ingresses = Vec::new();
    let mut pods = Vec::new();
    for n in 0..NAMESPACES {
        let (ns, team, env) = namespace_name(n);
        namespaces.push(namespace(n, &ns, team, env));
        let mut workloads = Vec::new();
        for d in 0..DEPLOYMENTS {
            let (component, role) = COMPONENTS[(n + d * 5) % COMPONENTS.len()];
            let name = format!("{}-{component}", short_team(team));
            let hash = hash_suffix(n, d, 1, 10);
            deployments.push(deployment(
                n, d, &ns, team, env, &name, component, role, &hash,
            ));
            for p in 0..PODS_PER_DEPLOYMENT {
                pods.push(pod(n, d, p, &ns, team, env, &name, component, role, &hash));
            }
            workloads.push((name, component, false));
        }
        for s in 0..STATEFULSETS {
            let (store, image) = STORES[(n * 3 + s) % STORES.len()];
            let name = format!("{}-{store}", short_team(team));
            statefulsets.push(statefulset(n, s, &ns, team, &name, store, image));
            workloads.push((name, store, true));
        }
        for (v, (name, component, headless)) in workloads.iter().take(SERVICES).enumerate() {
            services.push(service(n, v, &ns, team, name, component, *headless));
        }
        // The first deployments are the ones exposed outside the cluster.
        for (i, (name, _, _)) in workloads.iter().take(INGRESSES).enumerate() {
            ingresses.push(ingress(n, i, &ns, team, env, name));
        }
    }
    vec![
        ("namespaces", namespaces),
        ("deployments", deployments),
        ("statefulsets", statefulsets),
        ("services", services),
        ("ingresses", ingresses),
        ("pods", pods),
    ]
}

fn short_team(team: &str) -> &str {
    team.split('-').next().unwrap_or(team)
}

fn created(n: usize, x: usize) -> String {
    format!(
        "2026-{:02}-{:02}T{:02}:{:02}:00Z",
        1 + n % 11,
        1 + x % 27,
        (n + x) % 24,
        (n * 7 + x) % 60
    )
}

fn namespace(n: usize, name: &str, team: &str, env: &str) -> Value {
    let mut annotations = json!({
        "owner": format!("{team}-oncall@example.com"),
        "runwhen.com/tier": TIERS[n % TIERS.len()],
        "scheduler.alpha.kubernetes.io/node-selector": format!("pool={}", if env == "prod" { "prod" } else { "shared" }),
    });
    // Production namespaces ask for every check through the annotation upstream reads.
    if env == "prod" && !SYSTEM.contains(&name) {
        annotations["config.runwhen.com/lod"] = json!("detailed");
    }
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "uid": uid(n, 0, 0),
            "resourceVersion": (1000 + n).to_string(),
            "creationTimestamp": created(n, 0),
            "labels": {
                "kubernetes.io/metadata.name": name,
                "team": team,
                "env": env,
                "cost-center": format!("cc-{}", 100 + n % 37),
                "istio-injection": if mesh(n) { "enabled" } else { "disabled" },
            },
            "annotations": annotations,
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

fn labels(team: &str, name: &str, component: &str, role: &str, version: &str) -> Value {
    json!({
        "app.kubernetes.io/name": component,
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": role,
        "app.kubernetes.io/part-of": team,
        "app.kubernetes.io/version": version,
        "app.kubernetes.io/managed-by": "Helm",
        "helm.sh/chart": format!("{component}-{version}"),
        "team": team,
    })
}

fn version(n: usize, d: usize) -> String {
    format!("{}.{}.{}", 1 + n % 4, d % 10, (n * 3 + d) % 17)
}

/// Half of the teams run a service mesh (by team, so that environments agree).
fn mesh(n: usize) -> bool {
    (n / ENVS.len()).is_multiple_of(2)
}

/// The pod template's containers: the app, and an Envoy sidecar in mesh-enabled namespaces.
fn containers(
    n: usize,
    d: usize,
    team: &str,
    name: &str,
    component: &str,
    env: &str,
    version: &str,
) -> Value {
    let mut list = vec![json!({
        "name": component,
        "image": format!("registry.example.com/{team}/{component}:{version}"),
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}, {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}],
        "env": [
            {"name": "APP_ENV", "value": env},
            {"name": "LOG_LEVEL", "value": if env == "prod" { "info" } else { "debug" }},
            {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": format!("{name}-db"), "key": "url"}}},
            {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://otel-collector.monitoring:4318"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
            {"name": "GOMAXPROCS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1"}}},
        ],
        "resources": {
            "requests": {"cpu": format!("{}m", 100 + (n + d) % 5 * 100), "memory": format!("{}Mi", 128 << (d % 3))},
            "limits": {"cpu": "1", "memory": format!("{}Mi", 256 << (d % 3))},
        },
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"}, "initialDelaySeconds": 10, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http", "scheme": "HTTP"}, "periodSeconds": 5, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": true}, {"name": "tmp", "mountPath": "/tmp"}],
        "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    })];
    if mesh(n) {
        list.push(json!({
            "name": "istio-proxy",
            "image": "docker.io/envoyproxy/envoy:v1.31.2",
            "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
            "resources": {"requests": {"cpu": "10m", "memory": "40Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
            "securityContext": {"privileged": d % 8 == 7, "runAsUser": 1337},
        }));
    }
    Value::Array(list)
}

#[allow(clippy::too_many_arguments)]
fn deployment(
    n: usize,
    d: usize,
    ns: &str,
    team: &str,
    env: &str,
    name: &str,
    component: &str,
    role: &str,
    hash: &str,
) -> Value {
    let version = version(n, d);
    let replicas = [1, 2, 3, 3, 5, 2, 6, 12][(n + d) % 8];
    let labels = labels(team, name, component, role, &version);
    let template_labels = json!({"app.kubernetes.io/name": component, "app.kubernetes.io/instance": name, "pod-template-hash": hash});
    let spec = json!({
        "replicas": replicas,
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
        "selector": {"matchLabels": {"app.kubernetes.io/name": component, "app.kubernetes.io/instance": name}},
        "strategy": if d.is_multiple_of(3) {
            json!({"type": "Recreate"})
        } else {
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        },
        "template": {
            "metadata": {
                "labels": template_labels,
                "annotations": {"prometheus.io/scrape": if d.is_multiple_of(2) { "true" } else { "false" }, "prometheus.io/port": "9090", "checksum/config": format!("{:016x}", mix(n, d, 7))},
            },
            "spec": {
                "serviceAccountName": name,
                "containers": containers(n, d, team, name, component, env, &version),
                "volumes": [{"name": "config", "configMap": {"name": format!("{name}-config"), "defaultMode": 420}}, {"name": "tmp", "emptyDir": {}}],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst",
                "securityContext": {"fsGroup": 2000, "runAsUser": 1000},
                "schedulerName": "default-scheduler",
            },
        },
    });
    let mut annotations = json!({
        "deployment.kubernetes.io/revision": (1 + (n + d) % 23).to_string(),
        "meta.helm.sh/release-name": name,
        "meta.helm.sh/release-namespace": ns,
    });
    if (n + d).is_multiple_of(2) {
        let applied = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"labels": labels, "name": name, "namespace": ns}, "spec": spec});
        annotations["kubectl.kubernetes.io/last-applied-configuration"] =
            json!(format!("{applied}\n"));
    }
    let ready = if (n * 7 + d).is_multiple_of(41) {
        replicas - 1
    } else {
        replicas
    };
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name, "namespace": ns, "uid": uid(n, d, 1), "generation": 1 + (n + d) % 23,
            "resourceVersion": (20_000 + n * 100 + d).to_string(), "creationTimestamp": created(n, d),
            "labels": labels, "annotations": annotations,
        },
        "spec": spec,
        "status": {
            "observedGeneration": 1 + (n + d) % 23, "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": ready, "availableReplicas": ready,
            "conditions": [
                {"type": "Available", "status": if ready == replicas { "True" } else { "False" }, "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.", "lastUpdateTime": created(n, d + 1), "lastTransitionTime": created(n, d + 1)},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": format!("ReplicaSet \"{name}-{hash}\" has successfully progressed."), "lastUpdateTime": created(n, d + 2), "lastTransitionTime": created(n, d)},
            ],
        },
    })
}

#[allow(clippy::too_many_arguments)]
fn pod(
    n: usize,
    d: usize,
    p: usize,
    ns: &str,
    team: &str,
    env: &str,
    owner: &str,
    component: &str,
    role: &str,
    hash: &str,
) -> Value {
    let version = version(n, d);
    let name = format!("{owner}-{hash}-{}", hash_suffix(n, d, 10 + p, 5));
    let mut labels = labels(team, owner, component, role, &version);
    labels["pod-template-hash"] = json!(hash);
    // A few pods are pending or restarting: what the pod checks look for.
    let pending = mix(n, d, p).is_multiple_of(97);
    let restarts = if mix(n, d, p + 50).is_multiple_of(13) {
        7
    } else {
        0
    };
    let mut containers = containers(n, d, team, owner, component, env, &version);
    for c in containers.as_array_mut().into_iter().flatten() {
        c["volumeMounts"] = json!([{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]);
    }
    let statuses: Vec<Value> = containers
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            json!({
                "name": c["name"], "image": c["image"],
                "imageID": format!("{}@sha256:{:016x}{:016x}{:016x}{:016x}", c["image"].as_str().unwrap_or_default(), mix(n, d, 1), mix(n, d, 2), mix(n, d, 3), mix(n, d, 4)),
                "containerID": format!("containerd://{:016x}{:016x}{:016x}{:016x}", mix(n, p, 1), mix(n, p, 2), mix(d, p, 3), mix(d, p, 4)),
                "ready": !pending, "started": !pending, "restartCount": restarts,
                "state": if pending { json!({"waiting": {"reason": "ContainerCreating"}}) } else { json!({"running": {"startedAt": created(n, p + 3)}}) },
            })
        })
        .collect();
    let conditions: Vec<Value> = POD_CONDITIONS
        .iter()
        .map(|t| {
            let status = if pending && *t != "PodScheduled" { "False" } else { "True" };
            json!({"type": t, "status": status, "lastProbeTime": null, "lastTransitionTime": created(n, d + p)})
        })
        .collect();
    let mut annotations = json!({"prometheus.io/scrape": "true", "prometheus.io/port": "9090", "kubectl.kubernetes.io/default-container": component});
    if role == "batch" || d == 0 {
        annotations["runwhen.com/watch"] = json!("true");
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name, "generateName": format!("{owner}-{hash}-"), "namespace": ns, "uid": uid(n, d, 100 + p),
            "resourceVersion": (50_000 + n * 1000 + d * 10 + p).to_string(), "creationTimestamp": created(n, d + p),
            "labels": labels, "annotations": annotations,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{owner}-{hash}"), "uid": uid(n, d, 2), "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {
            "containers": containers,
            "serviceAccountName": owner,
            "nodeName": format!("node-{}-{}", if env == "prod" { "prod" } else { "shared" }, mix(n, d, p) % 40),
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "priority": 0, "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority", "schedulerName": "default-scheduler",
            "terminationGracePeriodSeconds": 30,
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            ],
            "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ]}}],
        },
        "status": {
            "phase": if pending { "Pending" } else { "Running" },
            "qosClass": "Burstable",
            "hostIP": format!("10.0.{}.{}", n % 200, d * 10 + p),
            "podIP": format!("10.{}.{}.{}", 100 + n % 100, d, p + 2),
            "podIPs": [{"ip": format!("10.{}.{}.{}", 100 + n % 100, d, p + 2)}],
            "startTime": created(n, d + p),
            "conditions": conditions,
            "containerStatuses": statuses,
        },
    })
}

fn statefulset(
    n: usize,
    s: usize,
    ns: &str,
    team: &str,
    name: &str,
    store: &str,
    image: &str,
) -> Value {
    let replicas = if s.is_multiple_of(2) { 3 } else { 1 };
    let version = image.rsplit(':').next().unwrap_or("latest").to_string();
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": name, "namespace": ns, "uid": uid(n, s, 3), "generation": 2,
            "resourceVersion": (30_000 + n * 10 + s).to_string(), "creationTimestamp": created(n, s + 4),
            "labels": labels(team, name, store, "database", &version),
            "annotations": {"meta.helm.sh/release-name": name, "meta.helm.sh/release-namespace": ns},
        },
        "spec": {
            "replicas": replicas, "serviceName": format!("{name}-headless"), "podManagementPolicy": "OrderedReady",
            "selector": {"matchLabels": {"app.kubernetes.io/name": store, "app.kubernetes.io/instance": name}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": store, "app.kubernetes.io/instance": name}},
                "spec": {
                    "containers": [{
                        "name": store, "image": image,
                        "ports": [{"name": "tcp", "containerPort": 5432 + s, "protocol": "TCP"}],
                        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
                        "volumeMounts": [{"name": "data", "mountPath": "/bitnami/data"}],
                        "livenessProbe": {"exec": {"command": ["/bin/sh", "-c", "/opt/healthcheck.sh"]}, "periodSeconds": 10, "failureThreshold": 6},
                    }],
                    "securityContext": {"fsGroup": 1001},
                },
            },
            "volumeClaimTemplates": [{
                "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": if n.is_multiple_of(3) { "fast-ssd" } else { "standard" }, "resources": {"requests": {"storage": format!("{}Gi", 8 << (s % 4))}}, "volumeMode": "Filesystem"},
            }],
        },
        "status": {"observedGeneration": 2, "replicas": replicas, "readyReplicas": replicas, "currentReplicas": replicas, "updatedReplicas": replicas, "availableReplicas": replicas, "collisionCount": 0},
    })
}

fn service(
    n: usize,
    v: usize,
    ns: &str,
    team: &str,
    name: &str,
    component: &str,
    headless: bool,
) -> Value {
    let load_balancer = !headless && v % 8 == 3;
    let mut annotations =
        json!({"meta.helm.sh/release-name": name, "meta.helm.sh/release-namespace": ns});
    if !headless && v.is_multiple_of(2) {
        annotations["prometheus.io/scrape"] = json!("true");
    }
    if load_balancer {
        annotations["service.beta.kubernetes.io/aws-load-balancer-type"] = json!("nlb");
    }
    let cluster_ip = if headless {
        "None".to_string()
    } else {
        format!("10.96.{}.{}", n, 10 + v)
    };
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": if headless { format!("{name}-headless") } else { name.to_string() }, "namespace": ns, "uid": uid(n, v, 4),
            "resourceVersion": (40_000 + n * 10 + v).to_string(), "creationTimestamp": created(n, v),
            "labels": {"app.kubernetes.io/name": component, "app.kubernetes.io/instance": name, "app.kubernetes.io/part-of": team, "team": team},
            "annotations": annotations,
        },
        "spec": {
            "type": if load_balancer { "LoadBalancer" } else { "ClusterIP" },
            "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
            "ports": if v % 5 == 1 {
                json!([{"name": "https", "port": 443, "targetPort": "http", "protocol": "TCP"}, {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}])
            } else {
                json!([{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}])
            },
            "selector": {"app.kubernetes.io/name": component, "app.kubernetes.io/instance": name},
        },
        "status": {"loadBalancer": if load_balancer { json!({"ingress": [{"hostname": format!("a{:x}.elb.eu-west-1.amazonaws.com", mix(n, v, 5))}]}) } else { json!({}) }},
    })
}

fn ingress(n: usize, i: usize, ns: &str, team: &str, env: &str, backend: &str) -> Value {
    let host = format!(
        "{backend}.{env}.{}",
        if i == 2 {
            "internal.corp"
        } else {
            "example.com"
        }
    );
    let tls = i != 2;
    let mut annotations = json!({"nginx.ingress.kubernetes.io/proxy-body-size": "8m", "nginx.ingress.kubernetes.io/ssl-redirect": if tls { "true" } else { "false" }});
    if tls {
        annotations["cert-manager.io/cluster-issuer"] = json!(if env == "prod" {
            "letsencrypt-prod"
        } else {
            "letsencrypt-staging"
        });
    }
    let mut spec = json!({
        "ingressClassName": if n.is_multiple_of(5) { "traefik" } else { "nginx" },
        "rules": [{"host": host, "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": backend, "port": {"name": "http"}}}},
            {"path": "/metrics", "pathType": "Exact", "backend": {"service": {"name": backend, "port": {"number": 9090}}}},
        ]}}],
    });
    if tls {
        spec["tls"] = json!([{"hosts": [host], "secretName": format!("{backend}-tls")}]);
    }
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": backend, "namespace": ns, "uid": uid(n, i, 6), "generation": 1,
            "resourceVersion": (45_000 + n * 10 + i).to_string(), "creationTimestamp": created(n, i),
            "labels": {"app.kubernetes.io/instance": backend, "app.kubernetes.io/part-of": team, "team": team},
            "annotations": annotations,
        },
        "spec": spec,
        "status": {"loadBalancer": {"ingress": [{"ip": format!("203.0.113.{}", n % 250)}]}},
    })
}
