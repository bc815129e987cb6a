//! `workspaceInfo.yaml` (and the optional `uploadInfo.yaml`): what to index, which
//! CodeCollections to read, and the workspace-wide values templates see.
//!
//! The keys and their meaning are runwhen-local's, so an existing `workspaceInfo.yaml` works
//! unchanged. Keys runwhen-local reads but that have no effect in Steward (cloud blocks before
//! cloud discovery exists, SQLite store settings, `useLocalGit`...) and unknown keys are
//! reported as [`ConfigWarning`]s naming the key path. A file that cannot be used as written
//! (a `null` section, a list where a mapping belongs, a missing required key, an unknown level
//! of detail) is a [`ConfigError`] naming the file, line and key path and saying what to write
//! instead: the configuration is one small file the user edits, so guessing would only turn a
//! typo into a differently scoped workspace.
//!
//! ```
//! use std::path::Path;
//! use steward_discovery::config::WorkspaceInfo;
//!
//! let text = "workspaceName: shop\nworkspaceOwnerEmail: ops@example.com\ndefaultLocation: loc-1\n\
//!             cloudConfig:\n  kubernetes:\n    kubeconfigFile: kubeconfig\n    namespaceLODs: {kube-system: none}\n";
//! let (info, _warnings) = WorkspaceInfo::parse(text, Path::new("/cfg/workspaceInfo.yaml")).unwrap();
//! assert_eq!(info.kubernetes.as_ref().unwrap().kubeconfig_file.as_deref(), Some(Path::new("/cfg/kubeconfig")));
//! let none = Default::default();
//! assert_eq!(info.namespace_lod("ctx", "kube-system", &none, &none), None);
//! assert!(info.namespace_lod("ctx", "shop", &none, &none).is_some());
//! ```

mod collections;
mod error;
mod kubernetes;
mod namespaces;
mod overrides;
mod reader;
pub(crate) mod yaml;

pub use collections::{
    Action, CodeBundlePattern, CodeCollectionConfig, CollectionAuth, DEFAULT_COLLECTIONS,
    DEFAULTS_URL, MatchMode, PatternType,
};
pub use error::{ConfigError, ConfigWarning};
pub use kubernetes::{ContextConfig, KubernetesConfig, MetadataFilter, NamespacePattern};
pub use namespaces::{
    IGNORE_ANNOTATION, IGNORE_LABEL, LOD_ANNOTATION, LodSource, NamespaceDecision, SkipReason,
};
pub use overrides::CodebundleOverride;

use crate::naming::NameMode;
use crate::resource::Lod;
use reader::{Reader, untag};
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use yaml::KeyPath;

/// The parsed `workspaceInfo.yaml`, merged with `uploadInfo.yaml` when one was given.
#[derive(Debug, Clone)]
pub struct WorkspaceInfo {
    /// The file it was read from.
    pub file: PathBuf,
    /// `workspaceName`: the prefix of every SLX name.
    pub workspace_name: String,
    /// `workspaceOwnerEmail`.
    pub owner_email: String,
    /// `locationId`, else `defaultLocation`: the runner location.
    pub location_id: String,
    /// `locationName`, else `defaultLocationName` (see [`Self::location_name`]).
    pub location_name: Option<String>,
    /// `papiURL`: the platform API for upload.
    pub papi_url: Option<String>,
    /// `token`: the bearer token for upload.
    pub token: Option<String>,
    /// `defaultLOD` (default `detailed`).
    pub default_lod: Lod,
    /// The global `namespaceLODs`: the top-level map merged with
    /// `cloudConfig.kubernetes.namespaceLODs` (which wins for a namespace named in both).
    pub namespace_lods: BTreeMap<String, Lod>,
    /// `cloudConfig.kubernetes`; `None` when absent.
    pub kubernetes: Option<KubernetesConfig>,
    /// `codeCollections`; `None` when absent (the caller's default list applies).
    pub code_collections: Option<Vec<CodeCollectionConfig>>,
    /// `custom`: a JSON object, `{}` when absent.
    pub custom: serde_json::Value,
    /// `secrets`: a JSON object, `{}` when absent.
    pub secrets: serde_json::Value,
    /// `overrides.codebundles`.
    pub overrides: Vec<CodebundleOverride>,
    /// `taskTagExclusions`, lower-cased (they are compared case-insensitively).
    pub task_tag_exclusions: Vec<String>,
    /// `slxNameMode` (Steward's own key): which upstream naming generation to follow.
    pub slx_name_mode: Option<NameMode>,
    /// The whole document as JSON, for anything templates read that has no typed field.
    pub raw: serde_json::Value,
}

/// The parsed `uploadInfo.yaml` (as downloaded from the platform).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadInfo {
    /// The file it was read from.
    pub file: PathBuf,
    /// `papiURL`.
    pub papi_url: Option<String>,
    /// `token`.
    pub token: Option<String>,
    /// `workspaceName`.
    pub workspace_name: Option<String>,
    /// `workspaceOwnerEmail`.
    pub owner_email: Option<String>,
    /// `locationId`, else `defaultLocation`.
    pub location_id: Option<String>,
    /// `locationName`, else `defaultLocationName`.
    pub location_name: Option<String>,
}

const UPLOAD_KEYS: &[&str] = &[
    "papiURL",
    "token",
    "workspaceName",
    "workspaceOwnerEmail",
    "defaultLocation",
    "locationId",
    "defaultLocationName",
    "locationName",
];

impl UploadInfo {
    /// Parses `uploadInfo.yaml`; `origin` is used in messages.
    pub fn parse(
        text: &str,
        origin: &Path,
    ) -> Result<(UploadInfo, Vec<ConfigWarning>), ConfigError> {
        let mut r = Reader::new(text, origin);
        let doc = r.document()?;
        let root = KeyPath::root();
        let map = r.mapping(&doc, &root, "uploadInfo.yaml holds `key: value` pairs")?;
        r.check_keys(map, &root, UPLOAD_KEYS, &[]);
        let first = |r: &Reader, keys: &[&str]| -> Result<Option<String>, ConfigError> {
            for k in keys {
                if let Some(v) = r.string(map, k, &root)?.filter(|s| !s.is_empty()) {
                    return Ok(Some(v));
                }
            }
            Ok(None)
        };
        let info = UploadInfo {
            file: origin.to_path_buf(),
            papi_url: first(&r, &["papiURL"])?,
            token: first(&r, &["token"])?,
            workspace_name: first(&r, &["workspaceName"])?,
            owner_email: first(&r, &["workspaceOwnerEmail"])?,
            location_id: first(&r, &["locationId", "defaultLocation"])?,
            location_name: first(&r, &["locationName", "defaultLocationName"])?,
        };
        Ok((info, r.warnings))
    }

    /// Reads and parses `uploadInfo.yaml`.
    pub fn load(path: &Path) -> Result<(UploadInfo, Vec<ConfigWarning>), ConfigError> {
        UploadInfo::parse(&read(path)?, path)
    }
}

const KNOWN_KEYS: &[&str] = &[
    "workspaceName",
    "workspaceOwnerEmail",
    "defaultLocation",
    "locationId",
    "defaultLocationName",
    "locationName",
    "papiURL",
    "token",
    "defaultLOD",
    "namespaceLODs",
    "cloudConfig",
    "codeCollections",
    "custom",
    "secrets",
    "overrides",
    "taskTagExclusions",
    "slxNameMode",
];

const NO_CLOUD: &str = "cloud discovery is not built yet in Steward";

/// Keys runwhen-local reads (or documents) that do nothing here, and why.
const IGNORED_KEYS: &[(&str, &str)] = &[
    (
        "namespaces",
        "runwhen-local never used the top-level list either; write cloudConfig.kubernetes.namespaces",
    ),
    (
        "resourceDumpPath",
        "Steward writes resource snapshots where its command line says; this key has no effect",
    ),
    (
        "resourceLoadFile",
        "Steward reads resource snapshots named on its command line; this key has no effect",
    ),
    (
        "resourceStoreBackend",
        "Steward has no SQLite resource store; this key has no effect",
    ),
    (
        "resourceStorePath",
        "Steward has no SQLite resource store; this key has no effect",
    ),
    ("azureIndexerBackend", NO_CLOUD),
    ("gcpIndexerBackend", NO_CLOUD),
    ("awsIndexerBackend", NO_CLOUD),
    ("azureThrottleMaxAttempts", NO_CLOUD),
    ("azureThrottleInitialBackoff", NO_CLOUD),
    ("azureThrottleMaxBackoff", NO_CLOUD),
    ("azureThrottleMaxTotalWait", NO_CLOUD),
    (
        "writeWorkspaceFilesToDisk",
        "Steward always writes the workspace tree; this key has no effect",
    ),
    (
        "useLocalGit",
        "Steward reads CodeCollections through its own cache; this key has no effect",
    ),
];

const CLOUD_KEYS: &[&str] = &["kubernetes"];
const CLOUD_IGNORED: &[(&str, &str)] = &[
    (
        "azure",
        "cloud discovery is not built yet in Steward; AKS clusters are indexed only through contexts of the kubeconfig",
    ),
    (
        "aws",
        "cloud discovery is not built yet in Steward; EKS clusters are indexed only through contexts of the kubeconfig",
    ),
    (
        "gcp",
        "cloud discovery is not built yet in Steward; GKE clusters are indexed only through contexts of the kubeconfig",
    ),
];

impl WorkspaceInfo {
    /// Parses `workspaceInfo.yaml`; `origin` is the file's path (relative paths in it, such as
    /// `kubeconfigFile`, are resolved against its directory).
    pub fn parse(
        text: &str,
        origin: &Path,
    ) -> Result<(WorkspaceInfo, Vec<ConfigWarning>), ConfigError> {
        WorkspaceInfo::parse_with_upload(text, origin, None)
    }

    /// Reads and parses `workspaceInfo.yaml`.
    pub fn load(path: &Path) -> Result<(WorkspaceInfo, Vec<ConfigWarning>), ConfigError> {
        WorkspaceInfo::parse(&read(path)?, path)
    }

    /// Reads `workspaceInfo.yaml` and, when given, `uploadInfo.yaml`, and merges them.
    pub fn load_with_upload(
        path: &Path,
        upload: Option<&Path>,
    ) -> Result<(WorkspaceInfo, Vec<ConfigWarning>), ConfigError> {
        let mut warnings = Vec::new();
        let upload = match upload {
            Some(p) => {
                let (info, w) = UploadInfo::load(p)?;
                warnings.extend(w);
                Some(info)
            }
            None => None,
        };
        let (info, w) = WorkspaceInfo::parse_with_upload(&read(path)?, path, upload.as_ref())?;
        warnings.extend(w);
        Ok((info, warnings))
    }

    /// Parses `workspaceInfo.yaml` merged with `uploadInfo.yaml` as runwhen-local does:
    /// uploadInfo wins for `papiURL`, `token`, `workspaceName` and the location, workspaceInfo
    /// wins for `workspaceOwnerEmail`. Required keys may come from either file.
    pub fn parse_with_upload(
        text: &str,
        origin: &Path,
        upload: Option<&UploadInfo>,
    ) -> Result<(WorkspaceInfo, Vec<ConfigWarning>), ConfigError> {
        let mut r = Reader::new(text, origin);
        let doc = r.document()?;
        let root = KeyPath::root();
        let map = r.mapping(
            &doc,
            &root,
            "workspaceInfo.yaml holds keys such as `workspaceName:` and `cloudConfig:` at the top level",
        )?;
        r.check_keys(map, &root, KNOWN_KEYS, IGNORED_KEYS);
        let base_dir = origin
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let up = upload.cloned().unwrap_or_default();
        let own = |r: &Reader, key: &str| -> Result<Option<String>, ConfigError> {
            Ok(r.string(map, key, &root)?.filter(|s| !s.trim().is_empty()))
        };

        let workspace_name = up
            .workspace_name
            .or(own(&r, "workspaceName")?)
            .ok_or_else(|| {
                r.missing(
                    "workspaceName",
                    "add `workspaceName: <name>` (or have it in uploadInfo.yaml)",
                )
            })?;
        if workspace_name.contains(|c: char| c == '/' || c.is_whitespace()) {
            return Err(r.invalid(
                &root.key("workspaceName"),
                format!("{workspace_name:?} cannot name a workspace: it prefixes SLX names and directories, so it may not contain `/` or spaces"),
            ));
        }
        let owner_email = own(&r, "workspaceOwnerEmail")?
            .or(up.owner_email)
            .ok_or_else(|| {
                r.missing("workspaceOwnerEmail", "add `workspaceOwnerEmail: <email>`")
            })?;
        let location_id = up
            .location_id
            .or(own(&r, "locationId")?)
            .or(own(&r, "defaultLocation")?)
            .ok_or_else(|| {
                r.missing(
                    "defaultLocation",
                    "add `defaultLocation: <runner location id>` (or `locationId:`, or have it in uploadInfo.yaml)",
                )
            })?;
        let location_name = up
            .location_name
            .or(own(&r, "locationName")?)
            .or(own(&r, "defaultLocationName")?);
        let papi_url = up.papi_url.or(own(&r, "papiURL")?);
        let token = up.token.or(own(&r, "token")?);

        let default_lod = r.lod(map, "defaultLOD", &root)?.unwrap_or(Lod::Detailed);
        let mut namespace_lods = r.lod_map(map, "namespaceLODs", &root)?;
        let kubernetes = match cloud_config(&mut r, map, &root)? {
            Some(cloud) => match r.section(cloud, "kubernetes", &root.key("cloudConfig"))? {
                Some(k8s) => {
                    let (config, k8s_lods) = kubernetes::parse(
                        &mut r,
                        k8s,
                        &root.key("cloudConfig").key("kubernetes"),
                        base_dir,
                    )?;
                    namespace_lods.extend(k8s_lods);
                    Some(config)
                }
                None => None,
            },
            None => None,
        };

        let code_collections = match map.get("codeCollections") {
            None => None,
            Some(v) => Some(collections::parse(&mut r, v, &root.key("codeCollections"))?),
        };
        let custom = free_form(&r, map, "custom", &root)?;
        let secrets = free_form(&r, map, "secrets", &root)?;
        let overrides = match r.section(map, "overrides", &root)? {
            Some(o) => overrides::parse(&mut r, o, &root.key("overrides"))?,
            None => Vec::new(),
        };
        let task_tag_exclusions = r
            .string_list(map, "taskTagExclusions", &root)?
            .into_iter()
            .map(|t| t.to_lowercase())
            .collect();
        let slx_name_mode = match own(&r, "slxNameMode")? {
            None => None,
            Some(s) => Some(NameMode::parse(&s).ok_or_else(|| {
                r.invalid(
                    &root.key("slxNameMode"),
                    format!("{s:?} is not a naming mode; write current (names up to 255 characters) or legacy (63)"),
                )
            })?),
        };

        let info = WorkspaceInfo {
            file: origin.to_path_buf(),
            workspace_name,
            owner_email,
            location_id,
            location_name,
            papi_url,
            token,
            default_lod,
            namespace_lods,
            kubernetes,
            code_collections,
            custom,
            secrets,
            overrides,
            task_tag_exclusions,
            slx_name_mode,
            raw: yaml::to_json(&doc),
        };
        Ok((info, r.warnings))
    }

    /// The location's display name: `locationName`, else the location id.
    pub fn location_name(&self) -> &str {
        self.location_name.as_deref().unwrap_or(&self.location_id)
    }

    /// Whether a codebundle is skipped because one of its tasks carries an excluded tag;
    /// `tags` is what [`crate::rules::task_tags`] found in the bundle's `.robot` files. Tags
    /// compare as Robot Framework compares them (case, spaces and underscores ignored).
    pub fn excludes_task_tags<'a>(&self, tags: impl IntoIterator<Item = &'a String>) -> bool {
        if self.task_tag_exclusions.is_empty() {
            return false;
        }
        let excluded: Vec<String> = self
            .task_tag_exclusions
            .iter()
            .map(|t| crate::rules::tag_key(t))
            .collect();
        tags.into_iter()
            .any(|t| excluded.contains(&crate::rules::tag_key(t)))
    }

    /// The workspace-wide template variables that do not depend on a match: the root that
    /// `custom-variable` predicates resolve their paths against (`custom/<key>`).
    pub fn variables(&self) -> serde_json::Value {
        serde_json::json!({
            "workspace": {
                "name": self.workspace_name,
                "short_name": self.workspace_name,
                "owner_email": self.owner_email,
            },
            "location_id": self.location_id,
            "location_name": self.location_name(),
            "default_location": self.location_id,
            "generated_by": format!("workspace-builder:{}", self.location_name()),
            "custom": self.custom,
            "secrets": self.secrets,
        })
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// `cloudConfig`: absent is reported (nothing can be discovered from live clusters), `null` is
/// an error (runwhen-local crashed on it, issue #533).
fn cloud_config<'v>(
    r: &mut Reader,
    map: &'v Mapping,
    root: &KeyPath,
) -> Result<Option<&'v Mapping>, ConfigError> {
    let path = root.key("cloudConfig");
    match map.get("cloudConfig").map(untag) {
        None => {
            r.warn(
                &path,
                "no cloudConfig: nothing is discovered from live clusters (add `cloudConfig: {kubernetes: {}}` to use the default kubeconfig)",
            );
            Ok(None)
        }
        Some(Value::Null) => Err(r.wrong_type(
            &path,
            &Value::Null,
            "a mapping",
            "write `cloudConfig: {}` or list the platforms under it (`kubernetes:` ...)",
        )),
        Some(_) => {
            let cloud = r
                .section(map, "cloudConfig", root)?
                .expect("cloudConfig is present");
            r.check_keys(cloud, &path, CLOUD_KEYS, CLOUD_IGNORED);
            Ok(Some(cloud))
        }
    }
}

/// `custom` / `secrets`: any mapping, handed to templates as JSON.
fn free_form(
    r: &Reader,
    map: &Mapping,
    key: &str,
    root: &KeyPath,
) -> Result<serde_json::Value, ConfigError> {
    Ok(match r.section(map, key, root)? {
        Some(m) => yaml::to_json(&Value::Mapping(m.clone())),
        None => serde_json::Value::Object(serde_json::Map::new()),
    })
}
