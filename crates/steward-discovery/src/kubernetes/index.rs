//! Listing a kubeconfig's clusters with kube-rs.
//!
//! Every context is indexed concurrently (bounded), and a context that fails (unreachable,
//! 401/403, expired credentials, no namespace visible) is reported once and skipped without
//! stopping the others (upstream issue #721). Within a context, each kind is listed once
//! across the cluster when RBAC allows it (one paginated call instead of one per namespace,
//! as upstream does), and per selected namespace otherwise ([`super::list`]); namespaces come
//! from [`super::namespaces`] and custom resources from [`super::custom`]. Every list is
//! paginated with `limit`/`continue`. Results are merged in kubeconfig order, so the registry
//! is the same whichever list or context answers first.

use super::custom;
use super::kinds::{self, Kind};
use super::list::{Lister, Listing, describe};
use super::namespaces;
use crate::resource::{Lod, Registry, Resource};
use futures::StreamExt;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Objects per list page.
pub const PAGE_SIZE: u32 = 500;
/// Contexts indexed at once.
pub const CONTEXT_CONCURRENCY: usize = 4;
/// API calls in flight per context.
pub const LIST_CONCURRENCY: usize = 8;

/// Decides which namespaces are indexed, at which level of detail.
pub trait NamespacePolicy: Send + Sync {
    /// `None` skips the namespace (level `none`, ignored, or filtered out).
    fn namespace_lod(
        &self,
        context: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
    ) -> Option<Lod>;

    /// Exact namespace names the configuration gives for this context. When namespaces
    /// cannot be listed they are read one by one; a name the cluster lacks is reported.
    fn configured_namespaces(&self, context: &str) -> Vec<String>;
}

/// Receives progress while indexing (the CLI draws bars from it).
pub trait Progress: Send + Sync {
    /// A context starts: `steps` kinds are to be listed.
    fn context_started(&self, _context: &str, _steps: usize) {}
    /// One kind (`what`, a plural) was listed, with `count` objects.
    fn listed(&self, _context: &str, _what: &str, _count: usize) {}
    /// A context is done; `error` says why it was skipped, if it was.
    fn context_finished(&self, _context: &str, _error: Option<&str>) {}
}

/// No progress output.
pub struct Silent;
impl Progress for Silent {}

/// A custom resource a rule refers to: `plural.group[/version]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CustomRef {
    pub plural: String,
    pub group: String,
    /// `None` (or `*`) = the group's preferred version.
    pub version: Option<String>,
}

/// A context that could not be indexed, or a list that failed inside one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IndexProblem {
    pub context: String,
    /// What was being done: `read kubeconfig`, `connect to <server>`, `list namespaces`,
    /// `namespace <name>`, `find <plural>.<group>`, `list <plural>`.
    pub during: String,
    pub message: String,
    /// The whole context was skipped.
    pub fatal: bool,
}

/// What indexing produced.
#[derive(Debug, Default)]
pub struct IndexResult {
    pub registry: Registry,
    pub problems: Vec<IndexProblem>,
    /// Contexts fully or partly indexed.
    pub contexts: Vec<String>,
    /// Namespaces the policy left out (without their objects), for the report.
    pub skipped_namespaces: Vec<Resource>,
    /// API calls made for lists and gets (each page counts, refused calls too; discovery
    /// calls do not).
    pub requests: usize,
}

/// One cluster connection to index.
pub struct Target {
    pub context: String,
    pub cluster: String,
    pub server: String,
    /// The kubeconfig's `workspace-builder` cluster extension, copied onto the cluster
    /// resource for the auth templates.
    pub extension: Option<Value>,
    /// The context's default namespace (a fallback when namespaces cannot be listed).
    pub namespace: Option<String>,
    pub config: Result<kube::Config, String>,
}

/// A target per context of the kubeconfig, in kubeconfig order (only the named ones when
/// `only` is not empty). A name in `only` that the kubeconfig lacks becomes a target that
/// fails, so that a typo on the command line is reported instead of indexing nothing.
pub async fn targets_from_kubeconfig(kubeconfig: &Kubeconfig, only: &[String]) -> Vec<Target> {
    let mut targets = Vec::new();
    for named in &kubeconfig.contexts {
        if !only.is_empty() && !only.contains(&named.name) {
            continue;
        }
        let ctx = named.context.clone().unwrap_or_default();
        let named_cluster = kubeconfig.clusters.iter().find(|c| c.name == ctx.cluster);
        let cluster = named_cluster.and_then(|c| c.cluster.as_ref());
        let options = KubeConfigOptions {
            context: Some(named.name.clone()),
            ..Default::default()
        };
        let config = match missing_exec_plugin(kubeconfig, ctx.user.as_deref()) {
            Some(message) => Err(message),
            None => kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &options)
                .await
                .map_err(|e| e.to_string()),
        };
        targets.push(Target {
            context: named.name.clone(),
            cluster: ctx.cluster.clone(),
            server: cluster.and_then(|c| c.server.clone()).unwrap_or_default(),
            extension: cluster
                .and_then(|c| c.extensions.as_ref())
                .and_then(|exts| exts.iter().find(|e| e.name == "workspace-builder"))
                .map(|e| e.extension.clone()),
            namespace: ctx.namespace.clone(),
            config,
        });
    }
    let known: Vec<&str> = kubeconfig
        .contexts
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    for name in only.iter().filter(|n| !known.contains(&n.as_str())) {
        targets.push(Target {
            context: name.clone(),
            cluster: String::new(),
            server: String::new(),
            extension: None,
            namespace: None,
            config: Err(format!(
                "the kubeconfig has no context {name:?}; its contexts are: {}",
                known.join(", ")
            )),
        });
    }
    targets
}

/// Why the user's exec credential plugin cannot run, when it is not installed (kube-rs would
/// only say "no such file or directory" at the first request; upstream issue #314).
fn missing_exec_plugin(kubeconfig: &Kubeconfig, user: Option<&str>) -> Option<String> {
    let user = user?;
    let auth = kubeconfig.auth_infos.iter().find(|a| a.name == user)?;
    let command = auth.auth_info.as_ref()?.exec.as_ref()?.command.clone()?;
    let found = if command.contains('/') {
        Path::new(&command).is_file()
    } else {
        std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| dir.join(&command).is_file())
        })
    };
    (!found).then(|| {
        format!(
            "user {user:?} gets its credentials from the exec plugin {command:?}, which is not installed here \
             (not found on PATH); install it, or give this context a token or certificate"
        )
    })
}

/// The cluster this process runs in (`inClusterAuth`), from its service account.
pub fn in_cluster_target(cluster_name: &str) -> Target {
    let config = kube::Config::incluster().map_err(|e| {
        format!("inClusterAuth is set but this is not a pod with a service account ({e}); use a kubeconfig instead")
    });
    Target {
        context: cluster_name.to_string(),
        cluster: cluster_name.to_string(),
        server: config
            .as_ref()
            .map(|c| c.cluster_url.to_string())
            .unwrap_or_default(),
        extension: None,
        namespace: config.as_ref().ok().map(|c| c.default_namespace.clone()),
        config,
    }
}

/// How hard indexing pushes the API servers.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Objects per list page.
    pub page_size: u32,
    /// Contexts indexed at once.
    pub contexts: usize,
    /// API calls in flight per context.
    pub lists: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            page_size: PAGE_SIZE,
            contexts: CONTEXT_CONCURRENCY,
            lists: LIST_CONCURRENCY,
        }
    }
}

/// Indexes every target with the default [`Limits`].
pub async fn index(
    targets: Vec<Target>,
    custom: &[CustomRef],
    policy: Arc<dyn NamespacePolicy>,
    progress: Arc<dyn Progress>,
) -> IndexResult {
    index_with(targets, custom, policy, progress, Limits::default()).await
}

/// Indexes every target, `limits.contexts` at a time.
pub async fn index_with(
    targets: Vec<Target>,
    custom: &[CustomRef],
    policy: Arc<dyn NamespacePolicy>,
    progress: Arc<dyn Progress>,
    limits: Limits,
) -> IndexResult {
    let results: Vec<(String, Result<ContextIndex, IndexProblem>)> = futures::stream::iter(targets)
        .map(|target| {
            let policy = policy.clone();
            let progress = progress.clone();
            async move {
                let context = target.context.clone();
                let result = index_context(target, custom, &*policy, &*progress, limits).await;
                progress
                    .context_finished(&context, result.as_ref().err().map(|p| p.message.as_str()));
                (context, result)
            }
        })
        .buffered(limits.contexts.max(1))
        .collect()
        .await;
    let mut out = IndexResult::default();
    // Contexts in kubeconfig order, so that the first context seen for a cluster wins
    // whatever finished first.
    for (context, result) in results {
        match result {
            Ok(ctx) => {
                out.contexts.push(context);
                out.requests += ctx.requests;
                out.problems.extend(ctx.problems);
                out.skipped_namespaces.extend(ctx.skipped_namespaces);
                for r in ctx.resources {
                    out.registry.insert_if_absent(r);
                }
            }
            Err(problem) => out.problems.push(problem),
        }
    }
    out
}

struct ContextIndex {
    resources: Vec<Resource>,
    skipped_namespaces: Vec<Resource>,
    problems: Vec<IndexProblem>,
    requests: usize,
}

pub(super) fn problem(
    context: &str,
    during: impl Into<String>,
    message: impl Into<String>,
    fatal: bool,
) -> IndexProblem {
    IndexProblem {
        context: context.into(),
        during: during.into(),
        message: message.into(),
        fatal,
    }
}

async fn index_context(
    target: Target,
    custom: &[CustomRef],
    policy: &dyn NamespacePolicy,
    progress: &dyn Progress,
    limits: Limits,
) -> Result<ContextIndex, IndexProblem> {
    let context = target.context.as_str();
    let cluster_name = target.cluster.clone();
    let config = target
        .config
        .clone()
        .map_err(|e| problem(context, "read kubeconfig", e, true))?;
    let connect = format!("connect to {}", target.server);
    let client = kube::Client::try_from(config)
        .map_err(|e| problem(context, &connect, describe(&e), true))?;
    client
        .apiserver_version()
        .await
        .map_err(|e| problem(context, &connect, describe(&e), true))?;

    let lister = Lister::new(&client, context, progress, limits);
    let found = namespaces::gather(
        &lister,
        context,
        target.namespace.as_deref(),
        &policy.configured_namespaces(context),
    )
    .await?;
    let mut problems = found.problems;

    let mut resources = vec![kinds::cluster_resource(
        &cluster_name,
        context,
        &target.server,
        target.extension.as_ref(),
    )];
    let mut selected: BTreeMap<String, Lod> = BTreeMap::new();
    let mut skipped_namespaces = Vec::new();
    for (name, object) in found.objects {
        let Some(probe) = kinds::namespace_resource(&cluster_name, context, object, Lod::Detailed)
        else {
            continue;
        };
        match policy.namespace_lod(context, &name, &probe.labels(), &probe.annotations()) {
            Some(lod) => {
                selected.insert(name, lod);
                resources.push(Resource { lod, ..probe });
            }
            // Kept aside so the run reports it as skipped, with the reason, as it does when
            // generating from a snapshot.
            None => skipped_namespaces.push(probe),
        }
    }

    let mut kinds_to_list = kinds::builtin_kinds();
    let (found_custom, unresolved) = custom::resolve(&client, custom).await;
    kinds_to_list.extend(found_custom);
    problems.extend(
        unresolved
            .into_iter()
            .map(|u| problem(context, u.during, u.message, false)),
    );
    progress.context_started(context, kinds_to_list.len());

    // `buffered`, not `buffer_unordered`: the same order every run, so problems (and anything
    // else collected here) do not depend on which list answered first.
    let namespace_names: Vec<String> = selected.keys().cloned().collect();
    let listings: Vec<(Kind, Listing)> = futures::stream::iter(kinds_to_list)
        .map(|kind| {
            let lister = &lister;
            let namespace_names = &namespace_names;
            let (selected, cluster_name) = (&selected, &cluster_name);
            async move {
                // Objects become resources (compact) page by page: a kind's objects are
                // never all held as JSON values.
                let convert = |o: Value| {
                    let lod = if kind.namespaced {
                        // `None` when its namespace is not indexed.
                        *o.pointer("/metadata/namespace")
                            .and_then(Value::as_str)
                            .and_then(|ns| selected.get(ns))?
                    } else {
                        Lod::Detailed
                    };
                    kinds::object_resource(cluster_name, context, &kind, o, lod)
                };
                let listing = lister.list_kind(&kind, namespace_names, &convert).await;
                (kind, listing)
            }
        })
        .buffered(limits.lists.max(1))
        .collect()
        .await;
    for (kind, listing) in listings {
        resources.extend(listing.objects);
        if let Some(message) = listing.failure {
            problems.push(problem(
                context,
                format!("list {}", kind.plural),
                message,
                false,
            ));
        }
    }
    Ok(ContextIndex {
        skipped_namespaces,
        resources,
        problems,
        requests: lister.calls(),
    })
}
