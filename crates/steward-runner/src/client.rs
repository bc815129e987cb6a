//! The runner's side of the wire protocol: one HTTP client (HTTP/2, so polls, uploads and
//! completions share one outbound connection), registration kept on disk.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use steward_model::api::ErrorBody;
use steward_model::wire::{
    CompleteRequest, CompleteResponse, DesiredState, MetricsBatch, MetricsBatchResponse,
    PollRequest, PollResponse, RegisterRequest, RegisterResponse, ReleaseRequest, ReleaseResponse,
    SignedUrl, UploadUrlRequest,
};
use uuid::Uuid;

/// What registration left on disk (`registration.json`, mode 0600).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    /// The platform it is valid for.
    pub platform_url: String,
    /// Runner id.
    pub runner_id: Uuid,
    /// Bearer credential.
    pub credential: String,
    /// Location.
    pub location: String,
    /// How long the platform holds polls.
    pub poll_timeout_seconds: u64,
    /// How long leases live.
    pub lease_ttl_seconds: u64,
}

/// How a call failed, as far as retrying is concerned.
#[derive(Debug)]
pub enum CallError {
    /// The platform could not be reached or answered 5xx: retry later.
    Unavailable(String),
    /// 401: the credential is no longer known.
    Unauthorized(String),
    /// Any other 4xx: the platform refuses this call; retrying will not help.
    Refused(u16, String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unavailable(m) => write!(f, "platform unavailable: {m}"),
            CallError::Unauthorized(m) => write!(f, "not authorized: {m}"),
            CallError::Refused(code, m) => write!(f, "refused ({code}): {m}"),
        }
    }
}

/// HTTP client for one platform.
#[derive(Clone)]
pub struct PlatformClient {
    http: reqwest::Client,
    base: String,
}

impl PlatformClient {
    /// A client for `base` (`http://host:port` or `https://...`). `ca_cert` adds a trusted root
    /// (PEM); `http1_only` turns off HTTP/2 for proxies that do not speak it.
    pub fn new(base: &str, ca_cert: Option<&Path>, http1_only: bool) -> Result<Self> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Config(format!(
                "platform URL {base:?} must start with http:// or https://"
            )));
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("steward-runner/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(90))
            .http2_keep_alive_interval(Duration::from_secs(20))
            .http2_keep_alive_while_idle(true);
        if http1_only {
            builder = builder.http1_only();
        } else if base.starts_with("http://") {
            builder = builder.http2_prior_knowledge();
        }
        if let Some(path) = ca_cert {
            let pem = std::fs::read(path).map_err(|e| Error::Io {
                path: path.to_path_buf(),
                cause: e,
            })?;
            let not_pem = |why: String| {
                Error::Config(format!("{}: not a PEM certificate ({why})", path.display()))
            };
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(not_pem("no BEGIN CERTIFICATE block".into()));
            }
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| not_pem(e.to_string()))?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(PlatformClient { http, base })
    }

    /// The platform's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> std::result::Result<T, CallError> {
        let response = request
            .send()
            .await
            .map_err(|e| CallError::Unavailable(describe(&e)))?;
        let status = response.status();
        if status.is_success() {
            return response
                .json()
                .await
                .map_err(|e| CallError::Unavailable(format!("unreadable answer: {e}")));
        }
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or(text);
        Err(match status.as_u16() {
            401 => CallError::Unauthorized(message),
            code if status.is_server_error() || code == 429 => {
                CallError::Unavailable(format!("{code}: {message}"))
            }
            code => CallError::Refused(code, message),
        })
    }

    /// Registers with a registration token.
    pub async fn register(
        &self,
        request: &RegisterRequest,
    ) -> std::result::Result<RegisterResponse, CallError> {
        self.call(
            self.http
                .post(format!("{}/api/v1/runner/register", self.base))
                .json(request)
                .timeout(Duration::from_secs(30)),
        )
        .await
    }

    /// Long poll; `wait` bounds how long the platform may hold it.
    pub async fn poll(
        &self,
        credential: &str,
        request: &PollRequest,
        wait: Duration,
    ) -> std::result::Result<PollResponse, CallError> {
        let http = self.http.post(format!("{}/api/v1/runner/poll", self.base));
        self.call(
            http.bearer_auth(credential)
                .json(request)
                .timeout(wait + Duration::from_secs(15)),
        )
        .await
    }

    /// The desired SLI set.
    pub async fn desired_state(
        &self,
        credential: &str,
    ) -> std::result::Result<DesiredState, CallError> {
        let http = self
            .http
            .get(format!("{}/api/v1/runner/desired-state", self.base));
        self.call(
            http.bearer_auth(credential)
                .timeout(Duration::from_secs(30)),
        )
        .await
    }

    /// A signed upload URL for one artifact.
    pub async fn upload_url(
        &self,
        credential: &str,
        run: Uuid,
        name: &str,
        lease_id: Option<Uuid>,
    ) -> std::result::Result<SignedUrl, CallError> {
        let http = self.http.post(format!(
            "{}/api/v1/runner/runs/{run}/artifacts/{name}",
            self.base
        ));
        self.call(
            http.bearer_auth(credential)
                .json(&UploadUrlRequest { lease_id })
                .timeout(Duration::from_secs(30)),
        )
        .await
    }

    /// PUTs a file to a signed URL.
    pub async fn upload(&self, url: &SignedUrl, file: &Path) -> std::result::Result<(), CallError> {
        let unreadable =
            |e: std::io::Error| CallError::Refused(0, format!("{}: {e}", file.display()));
        let handle = tokio::fs::File::open(file).await.map_err(unreadable)?;
        let length = handle.metadata().await.map_err(unreadable)?.len();
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(handle));
        let content_type = if file.extension().is_some_and(|e| e == "html") {
            "text/html"
        } else {
            "text/plain"
        };
        let response = self
            .http
            .put(&url.url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header(reqwest::header::CONTENT_LENGTH, length)
            .headers(
                url.headers
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((
                            k.parse::<reqwest::header::HeaderName>().ok()?,
                            v.parse().ok()?,
                        ))
                    })
                    .collect(),
            )
            .body(body)
            .timeout(Duration::from_secs(300))
            .send()
            .await
            .map_err(|e| CallError::Unavailable(describe(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        Err(if status.is_server_error() {
            CallError::Unavailable(format!("{status}: {text}"))
        } else {
            CallError::Refused(status.as_u16(), text)
        })
    }

    /// Forwards a batch of relayed metric points.
    pub async fn relay_metrics(
        &self,
        credential: &str,
        batch: &MetricsBatch,
    ) -> std::result::Result<MetricsBatchResponse, CallError> {
        let http = self
            .http
            .post(format!("{}/api/v1/runner/metrics", self.base));
        self.call(
            http.bearer_auth(credential)
                .json(batch)
                .timeout(Duration::from_secs(60)),
        )
        .await
    }

    /// Hands leases back when stopping.
    pub async fn release(
        &self,
        credential: &str,
        leases: &[Uuid],
    ) -> std::result::Result<ReleaseResponse, CallError> {
        let http = self
            .http
            .post(format!("{}/api/v1/runner/release", self.base));
        let body = ReleaseRequest {
            leases: leases.to_vec(),
        };
        self.call(
            http.bearer_auth(credential)
                .json(&body)
                .timeout(Duration::from_secs(10)),
        )
        .await
    }

    /// Reports a finished run.
    pub async fn complete(
        &self,
        credential: &str,
        run: Uuid,
        request: &CompleteRequest,
    ) -> std::result::Result<CompleteResponse, CallError> {
        let http = self
            .http
            .post(format!("{}/api/v1/runner/runs/{run}/complete", self.base));
        self.call(
            http.bearer_auth(credential)
                .json(request)
                .timeout(Duration::from_secs(60)),
        )
        .await
    }
}

fn describe(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if text.contains("certificate") || text.contains("UnknownIssuer") {
        text.push_str(
            " (if the platform's certificate comes from a private CA, give it with --ca-cert)",
        );
    }
    text
}

/// Reads a saved registration for `platform_url`, if there is one.
pub fn load_registration(path: &Path, platform_url: &str) -> Option<Registration> {
    let text = std::fs::read_to_string(path).ok()?;
    let saved: Registration = serde_json::from_str(&text).ok()?;
    (saved.platform_url == platform_url).then_some(saved)
}

/// Saves a registration, readable by the owner only.
pub fn save_registration(path: &Path, registration: &Registration) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e| Error::Io {
        path: PathBuf::from(path),
        cause: e,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(
        serde_json::to_string_pretty(registration)
            .expect("serializes")
            .as_bytes(),
    )
    .map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
