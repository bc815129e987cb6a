//! One module per command family.

mod client;
mod discover;
mod platform;
mod run;
mod runner;
mod up;
mod up_tls;

use crate::cli::Command;
use anyhow::Result;
use std::process::ExitCode;

pub async fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Up(args) => up::up(args).await,
        Command::Platform(args) => platform::platform(args).await,
        Command::Runner(args) => runner::runner(args).await,
        Command::Run(args) => run::run(args).await,
        Command::Status(args) => client::status(args).await,
        Command::Issues(args) => client::issues(args).await,
        Command::Runs(args) => client::runs(args).await,
        Command::Session(command) => client::session(command).await,
        Command::Workspace(command) => client::workspace(command).await,
        Command::Sli(command) => client::sli(command).await,
        Command::Token(command) => client::token(command).await,
        Command::Cancel(args) => client::cancel(args).await,
        Command::Alerts(args) => client::alerts(args).await,
        Command::Discover(args) => discover::discover(args).await,
        Command::TaskPod(args) => runner::task_pod(args).await,
        Command::Worker(args) => runner::worker(args).await,
    }
}

/// Ctrl-C and SIGTERM, caught from the moment [`StopSignal::install`] returns (a signal that
/// arrives during start-up must stop the process cleanly, not kill it).
pub struct StopSignal {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignal {
    pub fn install() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignal {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves when either signal arrives.
    pub async fn wait(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }

    /// Cancels `token` when a signal arrives.
    pub fn cancel_on_signal(
        mut self,
        token: tokio_util::sync::CancellationToken,
        message: &'static str,
    ) {
        tokio::spawn(async move {
            self.wait().await;
            if !message.is_empty() {
                say!("{message}");
            }
            token.cancel();
        });
    }
}

/// Parses `NAME=VALUE`; `form` is how the flag's value is written (`NAME=VALUE`,
/// `NAME=FILE`, ...), for the error.
pub fn pair(text: &str, what: &str, form: &str) -> Result<(String, String)> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.to_string()))
        }
        _ => Err(anyhow::anyhow!("{what} {text:?}: write it as {form}")),
    }
}

/// A taken address gets a hint naming the flags that choose another one.
pub fn listen_hint(error: steward_platform::StartError, flags: &str) -> anyhow::Error {
    match &error {
        steward_platform::StartError::Io { cause, .. }
            if cause.kind() == std::io::ErrorKind::AddrInUse =>
        {
            anyhow::anyhow!(
                "{error}; another process listens there: choose other addresses with {flags}"
            )
        }
        _ => error.into(),
    }
}
