//! A small client for the platform's API, used by the client commands.

use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;
use steward_model::api::ErrorBody;

/// The platform at one URL.
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    pub fn new(base: &str, token: Option<String>) -> Result<Self> {
        let parsed = url::Url::parse(base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        let Some(parsed) = parsed else {
            return Err(anyhow!(
                "--url {base:?} is not a platform URL: write it as http://HOST:PORT or https://HOST:PORT"
            ));
        };
        if parsed.path().trim_end_matches('/').ends_with("/api/v1") {
            let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
            return Err(anyhow!(
                "--url {base:?}: give the platform's base URL, without /api/v1 (e.g. {}://{}{port})",
                parsed.scheme(),
                parsed.host_str().unwrap_or_default()
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Api {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.map_err(|e| {
            // reqwest's own message stops at "error sending request"; the cause says why.
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                why = format!("{why}: {cause}");
                source = cause.source();
            }
            anyhow!(
                "cannot reach the platform at {}: {why}. Is it running (steward up)? Set --url or STEWARD_URL to another one",
                self.base
            )
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .context("reading the platform's answer")?;
        if !status.is_success() {
            let message = serde_json::from_str::<ErrorBody>(&text)
                .map(|b| b.error)
                .unwrap_or(text);
            return Err(anyhow!("the platform answered {status}: {message}"));
        }
        serde_json::from_str(&text).with_context(|| format!("unexpected answer from {}", self.base))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    pub async fn put<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.send(self.http.put(format!("{}{path}", self.base)).json(body))
            .await
    }

    /// The workspace to use: the given one, or the only one the platform has.
    pub async fn workspace(&self, given: Option<String>) -> Result<String> {
        if let Some(ws) = given {
            return Ok(ws);
        }
        let all: Vec<steward_model::api::WorkspaceView> = self.get("/api/v1/workspaces").await?;
        match all.as_slice() {
            [only] => Ok(only.name.clone()),
            [] => Err(anyhow!(
                "the platform has no workspace yet: import one with `steward workspace import DIR`"
            )),
            many => Err(anyhow!(
                "the platform has several workspaces ({}); choose one with --workspace",
                many.iter()
                    .map(|w| w.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// Percent-encodes a path segment or query value.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
