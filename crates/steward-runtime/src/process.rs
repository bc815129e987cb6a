//! Running the robot process in its own process group, with a wall-clock limit and
//! cancellation that both take down the whole group (the shell commands `RW.CLI` starts
//! included).

use crate::{Error, Result};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// How long a group gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);

/// How the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited by itself with this code (`None` when a signal ended it).
    Exited(Option<i32>),
    /// The time limit was reached and the group was killed.
    TimedOut,
    /// Cancelled and the group was killed.
    Cancelled,
}

/// What to start.
pub struct Spawn<'a> {
    /// Program.
    pub program: &'a Path,
    /// Arguments.
    pub args: Vec<String>,
    /// The complete environment (nothing is inherited).
    pub env: &'a BTreeMap<String, String>,
    /// Working directory.
    pub cwd: &'a Path,
    /// Where stdout and stderr go, together.
    pub output: &'a Path,
}

/// Runs the process to its end, the time limit, or cancellation.
pub async fn run(spawn: Spawn<'_>, limit: Duration, cancel: &CancellationToken) -> Result<Exit> {
    let file = std::fs::File::create(spawn.output).map_err(|e| Error::io(spawn.output, e))?;
    let err_file = file.try_clone().map_err(|e| Error::io(spawn.output, e))?;
    let mut cmd = Command::new(spawn.program);
    cmd.args(&spawn.args)
        .env_clear()
        .envs(spawn.env)
        .current_dir(spawn.cwd)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err_file)
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| Error::io(spawn.program, e))?;
    let group = GroupGuard(child.id().map(|id| Pid::from_raw(id as i32)));

    let exit = tokio::select! {
        status = child.wait() => Exit::Exited(status.map_err(|e| Error::io(spawn.program, e))?.code()),
        _ = tokio::time::sleep(limit) => {
            group.terminate(&mut child).await;
            Exit::TimedOut
        }
        _ = cancel.cancelled() => {
            group.terminate(&mut child).await;
            Exit::Cancelled
        }
    };
    drop(group); // reaps what the task left running in its group
    Ok(exit)
}

/// Kills the process group when dropped, so an abandoned run leaves nothing behind.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    async fn terminate(&self, child: &mut tokio::process::Child) {
        let Some(pid) = self.0 else { return };
        let _ = killpg(pid, Signal::SIGTERM);
        if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
            let _ = killpg(pid, Signal::SIGKILL);
            let _ = child.wait().await;
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = killpg(pid, Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("PATH".to_string(), "/usr/bin:/bin".to_string()),
            ("ONLY".to_string(), "this".to_string()),
        ])
    }

    #[tokio::test]
    async fn output_and_exit_code_are_captured_and_env_is_not_inherited() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("stdout.txt");
        let env = env();
        let exit = run(
            Spawn {
                program: Path::new("/bin/sh"),
                args: vec![
                    "-c".into(),
                    "echo out; echo err >&2; env | sort | grep -v '^PWD\\|^SHLVL\\|^_='; exit 3"
                        .into(),
                ],
                env: &env,
                cwd: dir.path(),
                output: &out,
            },
            Duration::from_secs(10),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(exit, Exit::Exited(Some(3)));
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.contains("out\n") && text.contains("err\n"), "{text}");
        assert!(text.contains("ONLY=this"), "{text}");
        assert!(!text.contains("HOME="), "{text}");
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("grandchild.pid");
        let env = env();
        let started = Instant::now();
        let exit = run(
            Spawn {
                program: Path::new("/bin/sh"),
                // The grandchild ignores SIGTERM, so only the SIGKILL of the group ends it.
                args: vec![
                    "-c".into(),
                    format!(
                        "sh -c 'trap \"\" TERM; echo $$ > {}; sleep 60' & wait",
                        marker.display()
                    ),
                ],
                env: &env,
                cwd: dir.path(),
                output: &dir.path().join("o.txt"),
            },
            Duration::from_millis(500),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(exit, Exit::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(30));
        let pid: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Give the kernel a moment to deliver the SIGKILL, then the grandchild must be gone.
        let mut alive = true;
        for _ in 0..50 {
            alive = nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok()
                && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .unwrap_or_default()
                    .contains(") Z ");
            if !alive {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!alive, "grandchild {pid} survived the timeout");
    }

    #[tokio::test]
    async fn cancellation_stops_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let env = env();
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            trigger.cancel();
        });
        let exit = run(
            Spawn {
                program: Path::new("/bin/sleep"),
                args: vec!["30".into()],
                env: &env,
                cwd: dir.path(),
                output: &dir.path().join("o.txt"),
            },
            Duration::from_secs(60),
            &cancel,
        )
        .await
        .unwrap();
        assert_eq!(exit, Exit::Cancelled);
    }
}
