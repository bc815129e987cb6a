//! Pod volumes materialised as directories under the pod's own temporary directory:
//! `secret`, `configMap`, `downwardAPI` and `projected` ones are written once when the pod
//! starts (honouring `items`, `defaultMode` and per-item `mode`; not refreshed afterwards),
//! `emptyDir` is an empty directory and `hostPath` is the host's path itself. Each
//! `volumeMounts[]` entry then maps its `mountPath` to the volume's directory (or to
//! `subPath` inside it).

use super::super::objects::text;
use super::super::store::Store;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// The default file mode of secret, configMap, downwardAPI and projected volumes (0644).
const DEFAULT_MODE: u32 = 0o644;

type Data = BTreeMap<String, Vec<u8>>;

fn decoded(object: &Value, field: &str) -> Data {
    object
        .get(field)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), STANDARD.decode(v.as_str()?).ok()?)))
        .collect()
}

fn plain(object: &Value, field: &str) -> Data {
    object
        .get(field)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.as_bytes().to_vec())))
        .collect()
}

/// A Secret's keys (`data`, and `stringData` as the API would have merged it), if it exists.
pub(super) fn secret_data(store: &Store, namespace: &str, name: &str) -> Option<Data> {
    let secret = store.get("", "secrets", namespace, name)?;
    let mut data = decoded(secret, "data");
    data.extend(plain(secret, "stringData"));
    Some(data)
}

/// A ConfigMap's keys (`data` and `binaryData`), if it exists.
pub(super) fn config_map_data(store: &Store, namespace: &str, name: &str) -> Option<Data> {
    let map = store.get("", "configmaps", namespace, name)?;
    let mut data = plain(map, "data");
    data.extend(decoded(map, "binaryData"));
    Some(data)
}

/// The downward API: `metadata.name`, `metadata.labels['x']`, `status.podIP`...
pub(super) fn field_value(pod: &Value, path: &str) -> Result<String, String> {
    let keyed = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix("']"))
            .map(str::to_string)
    };
    if let Some(key) = keyed("metadata.labels['") {
        return Ok(text(&pod["metadata"]["labels"], &format!("/{key}")).to_string());
    }
    if let Some(key) = keyed("metadata.annotations['") {
        return Ok(text(&pod["metadata"]["annotations"], &format!("/{key}")).to_string());
    }
    let pointer = match path {
        "metadata.name" => "/metadata/name",
        "metadata.namespace" => "/metadata/namespace",
        "metadata.uid" => "/metadata/uid",
        "spec.nodeName" => "/spec/nodeName",
        "spec.serviceAccountName" => "/spec/serviceAccountName",
        "status.hostIP" | "status.podIP" | "status.hostIPs" | "status.podIPs" => {
            return Ok(super::kubelet::POD_IP.into());
        }
        other => {
            return Err(format!(
                "unsupported fieldRef fieldPath {other:?} (the test kubelet resolves metadata.name, \
                 metadata.namespace, metadata.uid, metadata.labels['k'], metadata.annotations['k'], \
                 spec.nodeName, spec.serviceAccountName, status.podIP and status.hostIP)"
            ));
        }
    };
    Ok(text(pod, pointer).to_string())
}

fn mode_of(value: Option<&Value>, default: u32) -> u32 {
    value
        .and_then(Value::as_u64)
        .map_or(default, |m| m as u32 & 0o7777)
}

/// A relative path inside the volume (no `..`, not absolute).
fn relative(path: &str) -> Option<&Path> {
    let p = Path::new(path);
    p.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then_some(p)
}

fn write_file(dir: &Path, path: &str, bytes: &[u8], mode: u32) -> Result<(), String> {
    let relative = relative(path).ok_or_else(|| format!("invalid item path {path:?}"))?;
    let target = dir.join(relative);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(&target, bytes).map_err(|e| format!("{}: {e}", target.display()))?;
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", target.display()))
}

/// Writes a secret's or configMap's keys (all, or the listed `items`) into `dir`.
fn write_keys(
    dir: &Path,
    source: &Value,
    data: Option<Data>,
    default_mode: u32,
    what: (&str, &str),
) -> Result<(), String> {
    let (kind, name) = what;
    let Some(data) = data else {
        if source["optional"] == Value::Bool(true) {
            return Ok(());
        }
        return Err(format!("{kind} \"{name}\" not found"));
    };
    let mode = mode_of(source.get("defaultMode"), default_mode);
    match source.get("items").and_then(Value::as_array) {
        Some(items) => {
            for item in items {
                let key = text(item, "/key");
                let Some(bytes) = data.get(key) else {
                    if source["optional"] == Value::Bool(true) {
                        continue;
                    }
                    return Err(match kind {
                        "secret" => format!("references non-existent secret key: {key}"),
                        _ => format!("configmap references non-existent config key: {key}"),
                    });
                };
                let path = Some(text(item, "/path")).filter(|p| !p.is_empty());
                write_file(
                    dir,
                    path.unwrap_or(key),
                    bytes,
                    mode_of(item.get("mode"), mode),
                )?;
            }
        }
        None => {
            for (key, bytes) in &data {
                write_file(dir, key, bytes, mode)?;
            }
        }
    }
    Ok(())
}

fn write_downward(
    dir: &Path,
    pod: &Value,
    source: &Value,
    default_mode: u32,
) -> Result<(), String> {
    let mode = mode_of(source.get("defaultMode"), default_mode);
    for item in source
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let value = field_value(pod, text(item, "/fieldRef/fieldPath"))?;
        write_file(
            dir,
            text(item, "/path"),
            value.as_bytes(),
            mode_of(item.get("mode"), mode),
        )?;
    }
    Ok(())
}

/// Materialises the pod's volumes under `root`: volume name → local directory. The error is
/// the kubelet's FailedMount message.
pub(super) fn materialise(
    store: &Store,
    pod: &Value,
    root: &Path,
    token: &str,
) -> Result<BTreeMap<String, PathBuf>, String> {
    let namespace = text(pod, "/metadata/namespace");
    let mut volumes = BTreeMap::new();
    for volume in pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = text(volume, "/name");
        let failed =
            |why: String| format!("MountVolume.SetUp failed for volume \"{name}\" : {why}");
        let dir = root.join("volumes").join(name);
        std::fs::create_dir_all(&dir).map_err(|e| failed(format!("{}: {e}", dir.display())))?;
        let secret = |source: &Value, field: &str| {
            let n = text(source, field);
            write_keys(
                &dir,
                source,
                secret_data(store, namespace, n),
                DEFAULT_MODE,
                ("secret", n),
            )
        };
        let config_map = |source: &Value| {
            let n = text(source, "/name");
            write_keys(
                &dir,
                source,
                config_map_data(store, namespace, n),
                DEFAULT_MODE,
                ("configmap", n),
            )
        };
        if volume.get("emptyDir").is_some() {
        } else if let Some(host) = volume.pointer("/hostPath/path").and_then(Value::as_str) {
            volumes.insert(name.to_string(), PathBuf::from(host));
            continue;
        } else if let Some(source) = volume.get("secret") {
            secret(source, "/secretName").map_err(failed)?;
        } else if let Some(source) = volume.get("configMap") {
            config_map(source).map_err(failed)?;
        } else if let Some(source) = volume.get("downwardAPI") {
            write_downward(&dir, pod, source, DEFAULT_MODE).map_err(failed)?;
        } else if let Some(projected) = volume.get("projected") {
            let default_mode = mode_of(projected.get("defaultMode"), DEFAULT_MODE);
            for source in projected
                .get("sources")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let inherit = |s: &Value| {
                    let mut s = s.clone();
                    if s.get("defaultMode").is_none() {
                        s["defaultMode"] = default_mode.into();
                    }
                    s
                };
                if let Some(s) = source.get("secret") {
                    secret(&inherit(s), "/name").map_err(failed)?;
                } else if let Some(s) = source.get("configMap") {
                    config_map(&inherit(s)).map_err(failed)?;
                } else if let Some(s) = source.get("downwardAPI") {
                    write_downward(&dir, pod, s, default_mode).map_err(failed)?;
                } else if let Some(s) = source.get("serviceAccountToken") {
                    let path = Some(text(s, "/path")).filter(|p| !p.is_empty());
                    write_file(
                        &dir,
                        path.unwrap_or("token"),
                        token.as_bytes(),
                        default_mode,
                    )
                    .map_err(failed)?;
                }
            }
        } else {
            let kind = volume
                .as_object()
                .and_then(|o| o.keys().find(|k| *k != "name"))
                .map_or("(none)", String::as_str);
            return Err(failed(format!(
                "the test kubelet does not support {kind} volumes (only secret, configMap, \
                 emptyDir, hostPath, downwardAPI and projected)"
            )));
        }
        volumes.insert(name.to_string(), dir);
    }
    Ok(volumes)
}

/// mountPath → local path for each of the container's `volumeMounts`.
pub(super) fn mounts(
    container: &Value,
    volumes: &BTreeMap<String, PathBuf>,
) -> Result<Vec<(String, PathBuf)>, String> {
    let mut mounts = Vec::new();
    for mount in container
        .get("volumeMounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let volume = text(mount, "/name");
        let path = text(mount, "/mountPath").trim_end_matches('/');
        let dir = volumes.get(volume).ok_or_else(|| {
            format!("volume {volume:?} of volumeMounts is not a volume of the pod")
        })?;
        let local = match text(mount, "/subPath") {
            "" => dir.clone(),
            sub => {
                let sub = relative(sub).ok_or_else(|| format!("invalid subPath {sub:?}"))?;
                let local = dir.join(sub);
                if !local.exists() {
                    // The kubelet creates a missing subPath as a directory.
                    std::fs::create_dir_all(&local)
                        .map_err(|e| format!("{}: {e}", local.display()))?;
                }
                local
            }
        };
        mounts.push((path.to_string(), local));
    }
    // Longest first, so the most specific mount wins when rewriting paths.
    mounts.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
    Ok(mounts)
}

/// `value` with a leading mount path (or one after `key=`) replaced by its local directory.
pub(super) fn rewrite(value: &str, mounts: &[(String, PathBuf)]) -> String {
    let map = |v: &str| -> Option<String> {
        mounts.iter().find_map(|(path, local)| {
            let rest = v.strip_prefix(path.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then(|| format!("{}{rest}", local.display()))
        })
    };
    if let Some(mapped) = map(value) {
        return mapped;
    }
    if let Some((key, v)) = value.split_once('=')
        && let Some(mapped) = map(v)
    {
        return format!("{key}={mapped}");
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_are_rewritten_by_the_longest_match() {
        let mounts = vec![
            (
                "/etc/app/tls".to_string(),
                PathBuf::from("/tmp/p/volumes/tls"),
            ),
            (
                "/etc/app".to_string(),
                PathBuf::from("/tmp/p/volumes/config"),
            ),
        ];
        assert_eq!(
            rewrite("/etc/app/tls/ca.crt", &mounts),
            "/tmp/p/volumes/tls/ca.crt"
        );
        assert_eq!(rewrite("/etc/app", &mounts), "/tmp/p/volumes/config");
        assert_eq!(
            rewrite("--config=/etc/app/c.yaml", &mounts),
            "--config=/tmp/p/volumes/config/c.yaml"
        );
        assert_eq!(rewrite("/etc/application", &mounts), "/etc/application");
        assert_eq!(rewrite("plain", &mounts), "plain");
    }
}
