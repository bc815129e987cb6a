//! Uploading a generated tree with runwhen-local's call, so the same client works against a
//! Steward platform and against any platform that speaks runwhen-local's upload API.
//!
//! `POST {url}/api/v3/workspaces/{workspace}/upload`, bearer token, JSON body
//! `{output: base64(tar.gz of the tree), mergeMode, pruneStaleSlxs, pruneStaleResources, message,
//! finalizeAction}`. Only 200 is success; an error body's `detail` is shown.

use base64::Engine;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("cannot pack {path}: {source}")]
    Pack {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} has no workspace.yaml: generate the tree first (steward discover --out {path})"
    )]
    NotATree { path: PathBuf },
    #[error("cannot reach {url}: {cause}")]
    Connect { url: String, cause: String },
    #[error("the platform refused the upload to {url} ({status}): {detail}")]
    Refused {
        url: String,
        status: u16,
        detail: String,
    },
}

/// How SLXs that exist on the platform and in the upload are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeMode {
    /// The uploaded version replaces the stored one.
    #[default]
    KeepUploaded,
    /// A stored SLX keeps its version; only new SLXs are added.
    KeepExisting,
}

impl MergeMode {
    pub fn wire_name(self) -> &'static str {
        match self {
            MergeMode::KeepUploaded => "keepuploaded",
            MergeMode::KeepExisting => "keepexisting",
        }
    }
}

/// The tree's `workspace.yaml` and `slxs/`/`workflows/` as a tar.gz (paths relative to the
/// tree, in name order). Steward's hidden state is left out.
pub fn pack(tree: &Path) -> Result<Vec<u8>, UploadError> {
    if !tree.join("workspace.yaml").is_file() {
        return Err(UploadError::NotATree { path: tree.into() });
    }
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| UploadError::Pack { path, source }
    };
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    builder.mode(tar::HeaderMode::Deterministic);
    builder
        .append_path_with_name(tree.join("workspace.yaml"), "workspace.yaml")
        .map_err(err(tree))?;
    for dir in ["slxs", "workflows"] {
        let root = tree.join(dir);
        if !root.is_dir() {
            continue;
        }
        for entry in walkdir::WalkDir::new(&root).sort_by_file_name() {
            let entry = entry.map_err(|e| UploadError::Pack {
                path: root.clone(),
                source: e.into(),
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = entry.path().strip_prefix(tree).expect("inside the tree");
            let name = rel.to_string_lossy().replace('\\', "/");
            builder
                .append_path_with_name(entry.path(), name)
                .map_err(err(entry.path()))?;
        }
    }
    let gz = builder.into_inner().map_err(err(tree))?;
    gz.finish().map_err(err(tree))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UploadBody<'a> {
    output: String,
    merge_mode: &'a str,
    prune_stale_slxs: bool,
    prune_stale_resources: bool,
    message: &'a str,
    finalize_action: &'a str,
}

/// Sends the packed tree; returns the platform's JSON answer.
pub async fn upload(
    base_url: &str,
    token: Option<&str>,
    workspace: &str,
    tarball: &[u8],
    merge: MergeMode,
    prune: bool,
) -> Result<serde_json::Value, UploadError> {
    let url = format!(
        "{}/api/v3/workspaces/{workspace}/upload",
        base_url.trim_end_matches('/')
    );
    let body = UploadBody {
        output: base64::engine::general_purpose::STANDARD.encode(tarball),
        merge_mode: merge.wire_name(),
        prune_stale_slxs: prune,
        prune_stale_resources: false,
        message: "Updated workspace from steward discover.",
        finalize_action: "mergeToMain",
    };
    let client = reqwest::Client::new();
    let mut request = client.post(&url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| UploadError::Connect {
        url: url.clone(),
        cause: chain(&e),
    })?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let json: serde_json::Value =
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text.clone()));
    if status.as_u16() != 200 {
        let detail = json
            .get("detail")
            .map(|d| {
                d.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| d.to_string())
            })
            .unwrap_or_else(|| text.chars().take(500).collect());
        return Err(UploadError::Refused {
            url,
            status: status.as_u16(),
            detail,
        });
    }
    Ok(json)
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn packs_the_tree_without_state() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        std::fs::write(t.join("workspace.yaml"), "w").unwrap();
        std::fs::create_dir_all(t.join("slxs/a")).unwrap();
        std::fs::write(t.join("slxs/a/slx.yaml"), "s").unwrap();
        std::fs::create_dir_all(t.join(".steward")).unwrap();
        std::fs::write(t.join(".steward/names.json"), "{}").unwrap();
        let bytes = pack(t).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        let mut names = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let mut body = String::new();
            e.read_to_string(&mut body).unwrap();
            names.push((e.path().unwrap().to_string_lossy().into_owned(), body));
        }
        assert_eq!(
            names,
            [
                ("workspace.yaml".into(), "w".into()),
                ("slxs/a/slx.yaml".into(), "s".into())
            ]
        );
        // The same tree packs to the same bytes.
        assert_eq!(pack(t).unwrap(), bytes);
        assert!(matches!(
            pack(&t.join("slxs")),
            Err(UploadError::NotATree { .. })
        ));
    }
}
