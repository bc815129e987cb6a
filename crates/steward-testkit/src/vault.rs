//! A HashiCorp Vault stand-in on loopback: the KV version 2 engine, AppRole and Kubernetes
//! login, token checks and expiry, with Vault's response envelope field for field (clients such
//! as vaultrs deserialise it strictly). No Vault server can be installed on the test machines.
//!
//! ```no_run
//! let vault = steward_testkit::vault::VaultServer::start();
//! vault.put("kv", "app", serde_json::json!({"password": "s3cret"}));
//! vault.add_approle("approle", "role-1", "secret-1");
//! assert_eq!(vault.logins(), 0);
//! ```

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The running stand-in; stops when dropped.
pub struct VaultServer {
    addr: SocketAddr,
    state: Arc<Mutex<VaultState>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

#[derive(Default)]
struct VaultState {
    /// (mount, path) → versions, oldest first.
    kv: HashMap<(String, String), Vec<Value>>,
    /// mount → role id → secret id.
    approles: HashMap<String, HashMap<String, String>>,
    /// mount → role → accepted service account JWT.
    kubernetes: HashMap<String, HashMap<String, String>>,
    /// token → expiry (`None`: never).
    tokens: HashMap<String, Option<Instant>>,
    token_ttl: Option<Duration>,
    logins: usize,
    reads: usize,
}

impl VaultServer {
    /// The root token, valid for every path.
    pub const ROOT_TOKEN: &'static str = "root";

    /// Starts on a free loopback port, on a thread of its own.
    pub fn start() -> VaultServer {
        let state = Arc::new(Mutex::new(VaultState::default()));
        state
            .lock()
            .unwrap()
            .tokens
            .insert(Self::ROOT_TOKEN.into(), None);
        let app = Router::new()
            .route("/v1/sys/health", get(health))
            .route("/v1/auth/{mount}/login", post(login))
            .route("/v1/{*path}", get(read).post(write).put(write))
            .with_state(state.clone());
        let (addr, stop) = crate::serve_on_thread(app);
        VaultServer {
            addr,
            state,
            stop: Some(stop),
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a new version of the KV v2 secret `path` on `mount`.
    pub fn put(&self, mount: &str, path: &str, data: Value) {
        self.state
            .lock()
            .unwrap()
            .kv
            .entry((mount.into(), path.into()))
            .or_default()
            .push(data);
    }

    /// Accepts AppRole logins on `mount` with this pair.
    pub fn add_approle(&self, mount: &str, role_id: &str, secret_id: &str) {
        self.state
            .lock()
            .unwrap()
            .approles
            .entry(mount.into())
            .or_default()
            .insert(role_id.into(), secret_id.into());
    }

    /// Accepts Kubernetes logins on `mount` for `role` with this service account token.
    pub fn add_kubernetes_role(&self, mount: &str, role: &str, jwt: &str) {
        self.state
            .lock()
            .unwrap()
            .kubernetes
            .entry(mount.into())
            .or_default()
            .insert(role.into(), jwt.into());
    }

    /// Lifetime of tokens issued from now on (`lease_duration` in the login answer); by
    /// default they do not expire (`lease_duration: 0`).
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.state.lock().unwrap().token_ttl = Some(ttl);
    }

    /// Revokes every issued token but the root token.
    pub fn revoke_tokens(&self) {
        self.state
            .lock()
            .unwrap()
            .tokens
            .retain(|t, _| t == Self::ROOT_TOKEN);
    }

    /// Successful logins so far.
    pub fn logins(&self) -> usize {
        self.state.lock().unwrap().logins
    }

    /// Successful secret reads so far.
    pub fn reads(&self) -> usize {
        self.state.lock().unwrap().reads
    }
}

impl Drop for VaultServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

type Shared = State<Arc<Mutex<VaultState>>>;

/// Vault's envelope around every answer.
fn envelope(data: Value, auth: Value, mount_type: &str) -> Value {
    json!({
        "request_id": uuid::Uuid::new_v4().to_string(),
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": null,
        "auth": auth,
        "mount_type": mount_type,
    })
}

fn errors(status: StatusCode, messages: &[&str]) -> Response {
    (status, axum::Json(json!({ "errors": messages }))).into_response()
}

async fn health() -> Response {
    axum::Json(json!({
        "initialized": true,
        "sealed": false,
        "standby": false,
        "performance_standby": false,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": chrono::Utc::now().timestamp(),
        "version": "1.17.0",
        "cluster_name": "steward-testkit",
        "cluster_id": "00000000-0000-0000-0000-000000000000",
    }))
    .into_response()
}

async fn login(State(state): Shared, Path(mount): Path<String>, body: String) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default();
    let mut state = state.lock().unwrap();
    let (method, metadata) = if let Some(roles) = state.approles.get(&mount) {
        let ok = roles.get(field("role_id")).map(String::as_str) == Some(field("secret_id"));
        if !ok {
            return errors(StatusCode::BAD_REQUEST, &["invalid role or secret ID"]);
        }
        ("approle", json!({"role_name": field("role_id")}))
    } else if let Some(roles) = state.kubernetes.get(&mount) {
        let Some(jwt) = roles.get(field("role")) else {
            return errors(
                StatusCode::BAD_REQUEST,
                &[&format!("invalid role name \"{}\"", field("role"))],
            );
        };
        if jwt != field("jwt") {
            return errors(StatusCode::FORBIDDEN, &["permission denied"]);
        }
        ("kubernetes", json!({"role": field("role")}))
    } else {
        return errors(
            StatusCode::NOT_FOUND,
            &[&format!(
                "no handler for route \"auth/{mount}/login\". route entry not found."
            )],
        );
    };
    let token = format!("hvs.{}", uuid::Uuid::new_v4().simple());
    let ttl = state.token_ttl;
    state
        .tokens
        .insert(token.clone(), ttl.map(|t| Instant::now() + t));
    state.logins += 1;
    let auth = json!({
        "client_token": token,
        "accessor": uuid::Uuid::new_v4().to_string(),
        "policies": ["default", "steward"],
        "token_policies": ["default", "steward"],
        "identity_policies": null,
        "metadata": metadata,
        "lease_duration": ttl.map_or(0, |t| t.as_secs()),
        "renewable": true,
        "entity_id": uuid::Uuid::new_v4().to_string(),
        "token_type": "service",
        "orphan": true,
        "mfa_requirement": null,
        "num_uses": 0,
    });
    axum::Json(envelope(Value::Null, auth, method)).into_response()
}

/// Checks `X-Vault-Token`; `None` when it is valid.
fn refused(state: &VaultState, headers: &HeaderMap) -> Option<Response> {
    let token = headers
        .get("x-vault-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match state.tokens.get(token) {
        Some(None) => None,
        Some(Some(expiry)) if Instant::now() < *expiry => None,
        _ => Some(errors(StatusCode::FORBIDDEN, &["permission denied"])),
    }
}

/// `<mount>/data/<path>` → (mount, path).
fn kv2_path(path: &str) -> Option<(String, String)> {
    let at = path.find("/data/")?;
    Some((
        path[..at].to_string(),
        path[at + "/data/".len()..].to_string(),
    ))
}

fn version_metadata(version: usize) -> Value {
    json!({
        "created_time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "custom_metadata": null,
        "deletion_time": "",
        "destroyed": false,
        "version": version,
    })
}

async fn read(State(state): Shared, Path(path): Path<String>, headers: HeaderMap) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refusal) = refused(&state, &headers) {
        return refusal;
    }
    let Some(key) = kv2_path(&path) else {
        return errors(StatusCode::NOT_FOUND, &[]);
    };
    let Some(versions) = state.kv.get(&key) else {
        return errors(StatusCode::NOT_FOUND, &[]);
    };
    let data = json!({
        "data": versions.last().cloned().unwrap_or(Value::Null),
        "metadata": version_metadata(versions.len()),
    });
    state.reads += 1;
    axum::Json(envelope(data, Value::Null, "kv")).into_response()
}

async fn write(
    State(state): Shared,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refusal) = refused(&state, &headers) {
        return refusal;
    }
    let Some(key) = kv2_path(&path) else {
        return errors(StatusCode::NOT_FOUND, &[]);
    };
    let Some(data) = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|b| b.get("data").cloned())
    else {
        return errors(StatusCode::BAD_REQUEST, &["no data provided"]);
    };
    let versions = state.kv.entry(key).or_default();
    versions.push(data);
    let metadata = version_metadata(versions.len());
    axum::Json(envelope(metadata, Value::Null, "kv")).into_response()
}
