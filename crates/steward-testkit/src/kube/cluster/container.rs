//! A container as a local process: its argv and environment resolved as the kubelet resolves
//! them (`envFrom`, `env` with `valueFrom`, `$(VAR)` expansion), paths under mount points
//! rewritten to the local volume directories, and the process started in a process group of
//! its own so that stopping the container stops everything it started.

use super::super::objects::text;
use super::super::store::Store;
use super::ImageRun;
use super::volumes::{config_map_data, field_value, rewrite, secret_data};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};

/// The environment variable holding the mount map (JSON object, mountPath → local path).
pub(crate) const MOUNTS_ENV: &str = "STEWARD_TESTKIT_MOUNTS";

/// What to run for one container.
#[derive(Debug)]
pub(super) struct Launch {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
}

/// `$(NAME)` replaced by a defined variable, `$$` by `$`; anything else kept as written.
fn expand(input: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 1..];
        if let Some(after) = tail.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(inner) = tail.strip_prefix('(')
            && let Some(end) = inner.find(')')
            && let Some(value) = vars.get(&inner[..end])
        {
            out.push_str(value);
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

fn utf8(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The value of one `env[].valueFrom`.
fn value_from(store: &Store, pod: &Value, from: &Value) -> Result<Option<String>, String> {
    let namespace = text(pod, "/metadata/namespace");
    let optional = |r: &Value| r["optional"] == Value::Bool(true);
    if let Some(r) = from.get("secretKeyRef") {
        let (name, key) = (text(r, "/name"), text(r, "/key"));
        return match secret_data(store, namespace, name) {
            None if optional(r) => Ok(None),
            None => Err(format!("secret \"{name}\" not found")),
            Some(data) => match data.get(key) {
                Some(v) => Ok(Some(utf8(v))),
                None if optional(r) => Ok(None),
                None => Err(format!(
                    "couldn't find key {key} in Secret {namespace}/{name}"
                )),
            },
        };
    }
    if let Some(r) = from.get("configMapKeyRef") {
        let (name, key) = (text(r, "/name"), text(r, "/key"));
        return match config_map_data(store, namespace, name) {
            None if optional(r) => Ok(None),
            None => Err(format!("configmap \"{name}\" not found")),
            Some(data) => match data.get(key) {
                Some(v) => Ok(Some(utf8(v))),
                None if optional(r) => Ok(None),
                None => Err(format!(
                    "couldn't find key {key} in ConfigMap {namespace}/{name}"
                )),
            },
        };
    }
    if let Some(r) = from.get("fieldRef") {
        return field_value(pod, text(r, "/fieldPath")).map(Some);
    }
    Err(format!(
        "unsupported valueFrom {from} (the test kubelet resolves secretKeyRef, configMapKeyRef and fieldRef)"
    ))
}

/// Resolves what `container` of `pod` runs; the error is a `CreateContainerConfigError` message.
pub(super) fn prepare(
    store: &Store,
    pod: &Value,
    container: &Value,
    image: &ImageRun,
    mounts: &[(String, PathBuf)],
    pod_dir: &Path,
    api_port: u16,
) -> Result<Launch, String> {
    let namespace = text(pod, "/metadata/namespace");
    let home = pod_dir.join("home");
    let rootfs = pod_dir.join("rootfs");
    for dir in [&home, &rootfs] {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        ),
        ("HOME".into(), home.display().to_string()),
        ("HOSTNAME".into(), text(pod, "/metadata/name").into()),
        ("KUBERNETES_SERVICE_HOST".into(), "127.0.0.1".into()),
        ("KUBERNETES_SERVICE_PORT".into(), api_port.to_string()),
    ];
    env.extend(image.extra_env.clone());
    let mut defined: Vec<(String, String)> = Vec::new();
    for from in container
        .get("envFrom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let prefix = text(from, "/prefix");
        let (data, kind, reference) = if let Some(r) = from.get("secretRef") {
            (secret_data(store, namespace, text(r, "/name")), "secret", r)
        } else if let Some(r) = from.get("configMapRef") {
            (
                config_map_data(store, namespace, text(r, "/name")),
                "configmap",
                r,
            )
        } else {
            continue;
        };
        match data {
            Some(data) => {
                defined.extend(data.iter().map(|(k, v)| (format!("{prefix}{k}"), utf8(v))))
            }
            None if reference["optional"] == Value::Bool(true) => {}
            None => return Err(format!("{kind} \"{}\" not found", text(reference, "/name"))),
        }
    }
    let mut vars: HashMap<String, String> = defined.iter().cloned().collect();
    for var in container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = text(var, "/name").to_string();
        let value = match var.get("valueFrom") {
            Some(from) => value_from(store, pod, from)?,
            None => Some(expand(text(var, "/value"), &vars)),
        };
        if let Some(value) = value {
            vars.insert(name.clone(), value.clone());
            defined.push((name, value));
        }
    }
    env.extend(defined.into_iter().map(|(k, v)| (k, rewrite(&v, mounts))));
    let mount_map: BTreeMap<&str, String> = mounts
        .iter()
        .map(|(path, local)| (path.as_str(), local.display().to_string()))
        .collect();
    env.push((
        MOUNTS_ENV.into(),
        serde_json::to_string(&mount_map).expect("a map of strings serialises"),
    ));

    let strings = |field: &str| -> Option<Vec<String>> {
        container.get(field).and_then(Value::as_array).map(|a| {
            a.iter()
                .map(|s| expand(s.as_str().unwrap_or_default(), &vars))
                .collect()
        })
    };
    let mut argv = match strings("command") {
        Some(command) => command,
        None => image.entrypoint.clone(),
    };
    argv.extend(strings("args").unwrap_or_default());
    if argv.is_empty() {
        return Err(format!(
            "no command specified: container {:?} has no command and image {:?} was registered without an entrypoint",
            text(container, "/name"),
            text(container, "/image")
        ));
    }
    let mut argv: Vec<String> = argv.iter().map(|a| rewrite(a, mounts)).collect();
    let program = &argv[0];
    let file_name = Path::new(program)
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default();
    if let Some(local) = image
        .program_map
        .get(program)
        .or_else(|| image.program_map.get(file_name))
    {
        argv[0] = local.display().to_string();
    }
    let cwd = match text(container, "/workingDir") {
        "" => rootfs,
        dir => {
            let mapped = rewrite(dir, mounts);
            if mapped == dir {
                // Not under a mount: a directory in the pod's own stand-in for the image.
                rootfs.join(dir.trim_start_matches('/'))
            } else {
                PathBuf::from(mapped)
            }
        }
    };
    std::fs::create_dir_all(&cwd).map_err(|e| format!("{}: {e}", cwd.display()))?;
    Ok(Launch { argv, env, cwd })
}

/// A started container process (the leader of its own process group).
pub(super) struct Proc {
    pub pid: u32,
    /// The exit code once the process ended (128 + signal when killed by one).
    pub exit: Arc<Mutex<Option<i32>>>,
    waiter: Option<std::thread::JoinHandle<()>>,
}

impl Proc {
    pub fn exited(&self) -> Option<i32> {
        *self.exit.lock().expect("exit lock")
    }

    /// Signals the whole process group while its leader has not been reaped.
    pub fn signal(&self, signal: Signal) {
        let exit = self.exit.lock().expect("exit lock");
        if exit.is_none() {
            let _ = killpg(Pid::from_raw(self.pid as i32), signal);
        }
    }

    /// Kills the group and waits until the leader is reaped.
    pub fn kill_and_wait(&mut self) {
        self.signal(Signal::SIGKILL);
        if let Some(waiter) = self.waiter.take() {
            let _ = waiter.join();
        }
    }
}

/// Starts `launch` with stdout and stderr appended to `log`; `wake` is told when it exits.
pub(super) fn spawn(launch: &Launch, log: &Path, wake: mpsc::Sender<()>) -> std::io::Result<Proc> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let err = out.try_clone()?;
    let mut child = Command::new(&launch.argv[0])
        .args(&launch.argv[1..])
        .env_clear()
        .envs(launch.env.iter().cloned())
        .current_dir(&launch.cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()?;
    let pid = child.id();
    let exit = Arc::new(Mutex::new(None));
    let waiter = {
        let exit = exit.clone();
        std::thread::Builder::new()
            .name(format!("container-{pid}"))
            .spawn(move || {
                let code = match child.wait() {
                    Ok(status) => status
                        .code()
                        .or_else(|| status.signal().map(|s| 128 + s))
                        .unwrap_or(128),
                    Err(_) => 128,
                };
                let mut slot = exit.lock().expect("exit lock");
                // A container's end takes everything it started along, as its cgroup would.
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                *slot = Some(code);
                drop(slot);
                let _ = wake.send(());
            })?
    };
    Ok(Proc {
        pid,
        exit,
        waiter: Some(waiter),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_expand_as_the_kubelet_expands_them() {
        let vars: HashMap<String, String> = [("A".to_string(), "1".to_string())].into();
        assert_eq!(expand("x$(A)y", &vars), "x1y");
        assert_eq!(expand("$(B)", &vars), "$(B)");
        assert_eq!(expand("$$(A) $5", &vars), "$(A) $5");
    }
}
