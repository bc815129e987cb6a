//! The HTTP surface: one fallback handler that parses the Kubernetes URL layout itself (so
//! `/api/v1/namespaces/x/status` and `/api/v1/namespaces/x/pods` are told apart as the real
//! server does), authorizes, then serves discovery, the verbs, tables and watches.

use super::access::{Attributes, Gate};
use super::cluster::{self, NodeState};
use super::discovery;
use super::list::{list, table_of, table_version};
use super::patch::{PatchKind, json_patch, merge};
use super::resources::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::status::{ApiError, json_response};
use super::store::{Key, Store};
use super::watch::{self, WatchParams};
use axum::Router;
use axum::body::to_bytes;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// State shared by every request.
pub(crate) struct Shared {
    pub store: Mutex<Store>,
    pub gate: Mutex<Gate>,
    pub bookmark_interval: Duration,
    /// `127.0.0.1:port`, for `/api`'s serverAddressByClientCIDRs.
    pub address: String,
    /// The simulated node, whose kubelet serves pod logs.
    pub node: Option<Arc<NodeState>>,
}

/// A collection as a request sees it: resource, version, namespace and selectors.
pub(crate) struct Scope {
    pub rt: ResourceType,
    pub version: String,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Scope {
    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }

    /// The object as served at the requested version. List items of built-in kinds carry no
    /// kind/apiVersion (`with_type` false), as from the real server.
    pub fn present(&self, object: &Value, with_type: bool) -> Value {
        let mut object = object.clone();
        if with_type || !self.rt.builtin {
            object["apiVersion"] = self.rt.api_version(&self.version).into();
        } else if let Some(map) = object.as_object_mut() {
            map.remove("apiVersion");
            map.remove("kind");
        }
        object
    }
}

/// A resource URL: `/api/v1/[namespaces/{ns}/]{plural}[/{name}[/{subresource}]]` or the same under `/apis/{group}`.
#[derive(Debug)]
struct Target {
    group: String,
    version: String,
    plural: String,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

#[derive(Debug)]
enum Route {
    Version,
    CoreVersions,
    Groups,
    Group(String),
    Resources(String, String),
    Health,
    OpenApiRoot,
    OpenApi(String, String),
    Resource(Target),
    Unknown,
}

fn parse_route(path: &str) -> Route {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "livez" | "readyz"] => Route::Health,
        ["openapi", "v3"] => Route::OpenApiRoot,
        ["openapi", "v3", "api", version] => Route::OpenApi(String::new(), version.to_string()),
        ["openapi", "v3", "apis", group, version] => {
            Route::OpenApi(group.to_string(), version.to_string())
        }
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["apis", group] => Route::Group(group.to_string()),
        ["api", version] => Route::Resources(String::new(), version.to_string()),
        ["apis", group, version] => Route::Resources(group.to_string(), version.to_string()),
        ["api", version, rest @ ..] => target("", version, rest),
        ["apis", group, version, rest @ ..] => target(group, version, rest),
        _ => Route::Unknown,
    }
}

fn target(group: &str, version: &str, rest: &[&str]) -> Route {
    let namespace_subresource =
        group.is_empty() && rest.len() == 3 && matches!(rest[2], "status" | "finalize");
    let (namespace, rest) = if rest.len() >= 3 && rest[0] == "namespaces" && !namespace_subresource
    {
        (Some(rest[1].to_string()), &rest[2..])
    } else {
        (None, rest)
    };
    let (plural, name, sub) = match rest {
        [plural] => (plural, None, None),
        [plural, name] => (plural, Some(name), None),
        [plural, name, sub] => (plural, Some(name), Some(sub)),
        _ => return Route::Unknown,
    };
    Route::Resource(Target {
        group: group.into(),
        version: version.into(),
        plural: plural.to_string(),
        namespace,
        name: name.map(|n| n.to_string()),
        sub: sub.map(|s| s.to_string()),
    })
}

fn verb(method: &Method, target: &Target, query: &HashMap<String, String>) -> &'static str {
    let collection = target.name.is_none();
    match *method {
        Method::GET
            if collection
                && matches!(query.get("watch").map(String::as_str), Some("true" | "1")) =>
        {
            "watch"
        }
        Method::GET if collection => "list",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if collection => "deletecollection",
        Method::DELETE => "delete",
        _ => "unknown",
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = match serve(shared, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    tracing::debug!(%method, %path, status = response.status().as_u16(), "Kubernetes test API request.");
    response
}

async fn serve(shared: Arc<Shared>, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let query: HashMap<String, String> = Query::try_from_uri(&parts.uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let route = parse_route(&path);
    let attributes = match &route {
        Route::Resource(t) => Attributes {
            verb: verb(&parts.method, t, &query).into(),
            resource: Some(match &t.sub {
                Some(sub) => format!("{}/{sub}", t.plural),
                None => t.plural.clone(),
            }),
            group: t.group.clone(),
            namespace: t.namespace.clone(),
            path: path.clone(),
        },
        _ => Attributes {
            verb: parts.method.as_str().to_lowercase(),
            resource: None,
            group: String::new(),
            namespace: None,
            path: path.clone(),
        },
    };
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    shared
        .gate
        .lock()
        .expect("gate lock")
        .admit(token.as_deref(), &attributes)?;

    let target = match route {
        Route::Resource(target) => target,
        _ if parts.method != Method::GET => return Err(ApiError::method_not_allowed()),
        other => return discovery_answer(&shared, other),
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/vnd.kubernetes.protobuf")
        || content_type.starts_with("application/cbor")
    {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the test API server reads JSON and YAML bodies only, not {content_type}; send JSON (kubectl: use create -f / apply -f)"
            ),
        ));
    }
    let body = to_bytes(body, 64 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
    resource_request(
        &shared,
        &parts.method,
        &parts.headers,
        &query,
        target,
        &body,
    )
}

fn discovery_answer(shared: &Shared, route: Route) -> Result<Response, ApiError> {
    let store = shared.store.lock().expect("store lock");
    let document = match route {
        Route::Version => Some(discovery::version()),
        Route::Health => return Ok("ok".into_response()),
        Route::CoreVersions => Some(discovery::core_versions(&shared.address)),
        Route::Groups => Some(discovery::group_list(&store.registry)),
        Route::Group(group) => discovery::group(&store.registry, &group),
        Route::Resources(group, version) => {
            discovery::resource_list(&store.registry, &group, &version)
        }
        Route::OpenApiRoot => Some(discovery::openapi_root(&store.registry)),
        Route::OpenApi(group, version) => {
            discovery::openapi_group_version(&store.registry, &group, &version)
        }
        Route::Resource(_) | Route::Unknown => None,
    };
    document
        .map(|d| json_response(StatusCode::OK, &d))
        .ok_or_else(ApiError::no_route)
}

fn parse_body(bytes: &[u8], yaml: bool) -> Result<Value, ApiError> {
    let parsed = if yaml {
        serde_yaml::from_slice::<Value>(bytes).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<Value>(bytes).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| {
        ApiError::bad_request(format!(
            "the request body is not valid {}: {e}",
            if yaml { "YAML" } else { "JSON" }
        ))
    })
}

fn resource_request(
    shared: &Arc<Shared>,
    method: &Method,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    target: Target,
    body: &[u8],
) -> Result<Response, ApiError> {
    let rt = {
        let store = shared.store.lock().expect("store lock");
        store
            .registry
            .get(&target.group, &target.version, &target.plural)
            .cloned()
            .ok_or_else(ApiError::no_route)?
    };
    let scope_mismatch = (!rt.namespaced && target.namespace.is_some())
        || (rt.namespaced && target.namespace.is_none() && target.name.is_some());
    let is_pods = rt.group.is_empty() && rt.plural == "pods";
    let sub_unknown = match target.sub.as_deref() {
        None => false,
        Some("status") => !rt.status,
        Some("log") => !is_pods,
        Some(_) => true,
    };
    if scope_mismatch || sub_unknown {
        return Err(ApiError::no_route());
    }
    let param = |key: &str| query.get(key).map(String::as_str).unwrap_or_default();
    let scope = Scope {
        labels: LabelSelector::parse(param("labelSelector"))?,
        fields: FieldSelector::parse(param("fieldSelector"), &rt.plural)?,
        rt,
        version: target.version.clone(),
        namespace: target.namespace.clone(),
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let table = table_version(accept);
    let dry_run = param("dryRun") == "All";
    let namespace = target.namespace.clone().unwrap_or_default();
    if let (Some("log"), Some(name)) = (target.sub.as_deref(), target.name.as_deref()) {
        if method != Method::GET {
            return Err(ApiError::method_not_allowed());
        }
        return cluster::logs::serve(shared, &namespace, name, query);
    }
    let status_only = target.sub.is_some();
    let reply =
        |code: StatusCode, object: &Value| json_response(code, &scope.present(object, true));
    match (method, target.name.as_deref()) {
        (&Method::GET, None) if matches!(param("watch"), "true" | "1") => {
            let params = WatchParams {
                resource_version: query.get("resourceVersion").cloned(),
                bookmarks: param("allowWatchBookmarks") == "true",
                timeout: param("timeoutSeconds")
                    .parse()
                    .ok()
                    .map(Duration::from_secs),
                send_initial_events: param("sendInitialEvents") == "true",
            };
            watch::serve(shared.clone(), scope, params)
        }
        (&Method::GET, None) => list(shared, &scope, query, table),
        (&Method::GET, Some(name)) => {
            let store = shared.store.lock().expect("store lock");
            let object = store
                .get(&scope.rt.group, &scope.rt.plural, &namespace, name)
                .ok_or_else(|| ApiError::not_found(&scope.rt.group, &scope.rt.plural, name))?;
            Ok(match table {
                Some(v) => json_response(
                    StatusCode::OK,
                    &table_of(&scope, &[object], json!({}), v, param("includeObject")),
                ),
                None => reply(StatusCode::OK, object),
            })
        }
        (&Method::POST, None) => {
            let object = parse_body(body, false)?;
            let mut store = shared.store.lock().expect("store lock");
            let created = store.create(
                &scope.rt,
                &scope.version,
                target.namespace.as_deref(),
                object,
                dry_run,
            )?;
            Ok(reply(StatusCode::CREATED, &created))
        }
        (&Method::PUT, Some(name)) => {
            let object = parse_body(body, false)?;
            let mut store = shared.store.lock().expect("store lock");
            let updated = store.update(
                &scope.rt,
                &scope.version,
                (&namespace, name),
                object,
                status_only,
                dry_run,
            )?;
            Ok(reply(StatusCode::OK, &updated))
        }
        (&Method::PATCH, Some(name)) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let kind = PatchKind::from_content_type(content_type)?;
            let patch = parse_body(body, kind == PatchKind::Apply)?;
            let mut store = shared.store.lock().expect("store lock");
            let Some(current) = store
                .get(&scope.rt.group, &scope.rt.plural, &namespace, name)
                .cloned()
            else {
                if kind == PatchKind::Apply && !status_only {
                    let mut object = patch;
                    object["metadata"]["name"] = name.into();
                    let created = store.create(
                        &scope.rt,
                        &scope.version,
                        target.namespace.as_deref(),
                        object,
                        dry_run,
                    )?;
                    return Ok(reply(StatusCode::CREATED, &created));
                }
                return Err(ApiError::not_found(&scope.rt.group, &scope.rt.plural, name));
            };
            let mut next = current;
            match kind {
                PatchKind::Json => json_patch(&mut next, &patch)?,
                PatchKind::Merge | PatchKind::Apply => merge(&mut next, &patch),
            }
            let updated = store.update(
                &scope.rt,
                &scope.version,
                (&namespace, name),
                next,
                status_only,
                dry_run,
            )?;
            Ok(reply(StatusCode::OK, &updated))
        }
        (&Method::DELETE, Some(name)) if !status_only => {
            let options = if body.is_empty() {
                Value::Null
            } else {
                parse_body(body, false)?
            };
            let mut store = shared.store.lock().expect("store lock");
            let deleted = store.delete(&scope.rt, &namespace, name, &options, dry_run)?;
            Ok(reply(StatusCode::OK, &deleted))
        }
        (&Method::DELETE, None) => {
            let mut store = shared.store.lock().expect("store lock");
            let keys: Vec<Key> = store
                .list(
                    &scope.rt.group,
                    &scope.rt.plural,
                    scope.namespace.as_deref(),
                )
                .filter(|(_, o)| scope.matches(o))
                .map(|(k, _)| k.clone())
                .collect();
            let mut items = Vec::new();
            for (ns, name) in keys {
                items.push(scope.present(
                    &store.delete(&scope.rt, &ns, &name, &Value::Null, dry_run)?,
                    false,
                ));
            }
            let list = json!({
                "kind": scope.rt.list_kind,
                "apiVersion": scope.rt.api_version(&scope.version),
                "metadata": {"resourceVersion": store.revision().to_string()},
                "items": items,
            });
            Ok(json_response(StatusCode::OK, &list))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_as_the_real_server_does() {
        let t = |p: &str| match parse_route(p) {
            Route::Resource(t) => (t.group, t.plural, t.namespace, t.name, t.sub),
            other => panic!("{p}: {other:?}"),
        };
        let s = |x: &str| Some(x.to_string());
        assert_eq!(
            t("/api/v1/namespaces/a/pods"),
            ("".into(), "pods".into(), s("a"), None, None)
        );
        assert_eq!(
            t("/api/v1/namespaces/a/status"),
            ("".into(), "namespaces".into(), None, s("a"), s("status"))
        );
        assert_eq!(
            t("/api/v1/namespaces/a"),
            ("".into(), "namespaces".into(), None, s("a"), None)
        );
        assert_eq!(
            t("/apis/apps/v1/namespaces/a/deployments/w/status"),
            (
                "apps".into(),
                "deployments".into(),
                s("a"),
                s("w"),
                s("status")
            )
        );
        assert_eq!(
            t("/apis/apps/v1/deployments"),
            ("apps".into(), "deployments".into(), None, None, None)
        );
        assert!(
            matches!(parse_route("/apis/apps/v1"), Route::Resources(g, v) if g == "apps" && v == "v1")
        );
        assert!(matches!(parse_route("/openapi/v2"), Route::Unknown));
    }
}
