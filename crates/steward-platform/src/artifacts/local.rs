//! The local artifact store: run outputs as files under `<data dir>/artifacts/<run>/<name>`,
//! written and read through signed URLs.

use crate::error::{ApiError, ApiResult};
use axum::body::Body;
use futures::StreamExt;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

/// Files on local disk.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    root: PathBuf,
    max_bytes: u64,
}

/// Artifact names are file names: letters, digits, `.`, `_`, `-`; not starting with a dot.
pub fn check_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "{name:?} is not an artifact name (letters, digits, '.', '_', '-')"
        )))
    }
}

/// The `Content-Type` to serve an artifact with.
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("json" | "jsonl") => "application/json",
        Some("xml") => "application/xml",
        _ => "text/plain; charset=utf-8",
    }
}

impl ArtifactStore {
    /// A store under `root`, refusing files over `max_bytes`.
    pub fn new(root: PathBuf, max_bytes: u64) -> Self {
        ArtifactStore { root, max_bytes }
    }

    fn path(&self, run: Uuid, name: &str) -> PathBuf {
        self.root.join(run.to_string()).join(name)
    }

    /// Streams `body` into the artifact, replacing an earlier upload; returns its size.
    pub async fn write(&self, run: Uuid, name: &str, body: Body) -> ApiResult<u64> {
        let path = self.path(run, name);
        let dir = path.parent().expect("artifact path has a parent");
        tokio::fs::create_dir_all(dir).await?;
        let partial = path.with_extension(format!("partial-{}", Uuid::new_v4()));
        let mut file = tokio::fs::File::create(&partial).await?;
        let mut size = 0u64;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(error) => {
                    let _ = tokio::fs::remove_file(&partial).await;
                    return Err(ApiError::BadRequest(format!(
                        "the upload broke off: {error}"
                    )));
                }
            };
            size += chunk.len() as u64;
            if size > self.max_bytes {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(ApiError::TooLarge(format!(
                    "{name} is larger than the {} byte limit",
                    self.max_bytes
                )));
            }
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        drop(file);
        tokio::fs::rename(&partial, &path).await?;
        Ok(size)
    }

    /// Opens an artifact for reading.
    pub async fn open(&self, run: Uuid, name: &str) -> ApiResult<tokio::fs::File> {
        tokio::fs::File::open(self.path(run, name))
            .await
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::NotFound => {
                    ApiError::NotFound(format!("run {run} has no artifact {name}"))
                }
                _ => ApiError::Storage(error),
            })
    }
}
