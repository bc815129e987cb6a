//! Where run artifacts live: the platform's own directory (uploads and downloads go through
//! HMAC-signed URLs to the platform), or an object store (S3, GCS, Azure Blob) that signs its
//! own URLs, so artifact bytes go straight between runners, browsers and the store.

mod local;

pub use local::{ArtifactStore, check_name, content_type};

use crate::signing::UrlSigner;
use chrono::{DateTime, Utc};
use object_store::ObjectStore;
use object_store::path::Path as StorePath;
use object_store::signer::Signer;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use steward_model::wire::SignedUrl;
use uuid::Uuid;

/// A store, chosen by URL.
pub enum ArtifactBackend {
    /// Files under the platform's data directory.
    Local {
        /// The files.
        store: ArtifactStore,
        /// Signs URLs to the platform's own artifact endpoint.
        signer: UrlSigner,
        /// The platform's base URL.
        base_url: String,
    },
    /// An object store with presigned URLs.
    Object {
        /// For reading object sizes.
        store: Arc<dyn ObjectStore>,
        /// For signing.
        signer: Arc<dyn Signer>,
        /// Key prefix inside the bucket or container.
        prefix: String,
        /// Headers every upload must carry (Azure needs `x-ms-blob-type`).
        upload_headers: BTreeMap<String, String>,
        /// `s3://bucket`, for messages.
        describe: String,
    },
}

/// A store URL that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("artifact store {url}: {reason}")]
pub struct BackendError {
    url: String,
    reason: String,
}

impl ArtifactBackend {
    /// The local store, when artifacts live under the data directory.
    pub fn local(&self) -> Option<&ArtifactStore> {
        match self {
            ArtifactBackend::Local { store, .. } => Some(store),
            ArtifactBackend::Object { .. } => None,
        }
    }

    /// `s3://bucket[/prefix]`, `gs://bucket[/prefix]` and `az://container[/prefix]` (or
    /// `azure://`) use the object store, configured from the environment the way each SDK does
    /// it (`AWS_*`, `GOOGLE_*`, `AZURE_*`: credentials, region, `*_ENDPOINT`, `*_ALLOW_HTTP`,
    /// `AZURE_STORAGE_USE_EMULATOR`).
    pub fn object(url: &str, options: &[(String, String)]) -> Result<Self, BackendError> {
        if let Some(path) = url.strip_prefix("file://") {
            return Err(BackendError {
                url: url.into(),
                reason: format!(
                    "the local store is the default; leave the URL out to keep artifacts under the data directory (not {path})"
                ),
            });
        }
        let fail = |reason: String| BackendError {
            url: url.to_string(),
            reason,
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| fail("expected s3://, gs:// or az://".into()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(fail("the bucket (or container) name is missing".into()));
        }
        let root = format!("{scheme}://{bucket}");
        let mut upload_headers = BTreeMap::new();
        let (store, signer): (Arc<dyn ObjectStore>, Arc<dyn Signer>) = match scheme {
            "s3" | "s3a" => {
                let mut builder = object_store::aws::AmazonS3Builder::from_env().with_url(&root);
                for (key, value) in options {
                    builder = builder.with_config(
                        key.parse()
                            .map_err(|e| fail(format!("option {key}: {e}")))?,
                        value,
                    );
                }
                let s3 = builder.build().map_err(|e| fail(e.to_string()))?;
                let s3 = Arc::new(s3);
                (s3.clone(), s3)
            }
            "gs" => {
                let mut builder =
                    object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(&root);
                for (key, value) in options {
                    builder = builder.with_config(
                        key.parse()
                            .map_err(|e| fail(format!("option {key}: {e}")))?,
                        value,
                    );
                }
                let gcs = builder.build().map_err(|e| fail(e.to_string()))?;
                let gcs = Arc::new(gcs);
                (gcs.clone(), gcs)
            }
            "az" | "azure" | "abfs" | "abfss" => {
                let mut builder =
                    object_store::azure::MicrosoftAzureBuilder::from_env().with_url(&root);
                for (key, value) in options {
                    builder = builder.with_config(
                        key.parse()
                            .map_err(|e| fail(format!("option {key}: {e}")))?,
                        value,
                    );
                }
                let azure = builder.build().map_err(|e| fail(e.to_string()))?;
                upload_headers.insert("x-ms-blob-type".into(), "BlockBlob".into());
                let azure = Arc::new(azure);
                (azure.clone(), azure)
            }
            other => {
                return Err(fail(format!(
                    "scheme {other}:// is not an object store; use s3://, gs:// or az://"
                )));
            }
        };
        Ok(ArtifactBackend::Object {
            store,
            signer,
            prefix: prefix.trim_matches('/').to_string(),
            upload_headers,
            describe: root,
        })
    }

    fn key(prefix: &str, run: Uuid, name: &str) -> StorePath {
        let key = format!("{prefix}/runs/{run}/{name}");
        StorePath::from(key.trim_start_matches('/'))
    }

    /// A URL that accepts one PUT of the artifact until `ttl` passes.
    pub async fn upload_url(
        &self,
        run: Uuid,
        name: &str,
        ttl: Duration,
    ) -> Result<SignedUrl, BackendError> {
        self.sign("PUT", run, name, ttl).await
    }

    /// A URL that serves the artifact until `ttl` passes.
    pub async fn download_url(
        &self,
        run: Uuid,
        name: &str,
        ttl: Duration,
    ) -> Result<SignedUrl, BackendError> {
        self.sign("GET", run, name, ttl).await
    }

    async fn sign(
        &self,
        method: &str,
        run: Uuid,
        name: &str,
        ttl: Duration,
    ) -> Result<SignedUrl, BackendError> {
        let expires_at: DateTime<Utc> =
            Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
        match self {
            ArtifactBackend::Local {
                signer, base_url, ..
            } => {
                let path = format!("/api/v1/artifacts/{run}/{name}");
                Ok(signer.sign(base_url, method, &path, expires_at))
            }
            ArtifactBackend::Object {
                signer,
                prefix,
                upload_headers,
                describe,
                ..
            } => {
                let http_method = if method == "PUT" {
                    axum::http::Method::PUT
                } else {
                    axum::http::Method::GET
                };
                let url = signer
                    .signed_url(http_method, &Self::key(prefix, run, name), ttl)
                    .await
                    .map_err(|e| BackendError {
                        url: describe.clone(),
                        reason: e.to_string(),
                    })?;
                let headers = if method == "PUT" {
                    upload_headers.clone()
                } else {
                    BTreeMap::new()
                };
                Ok(SignedUrl {
                    url: url.to_string(),
                    method: method.into(),
                    expires_at,
                    headers,
                    max_bytes: None,
                })
            }
        }
    }
}
