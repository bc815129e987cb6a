//! Visible progress while the task environment is built and logging for long-running commands.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use steward_runtime::{Progress, ProvisionEvent};

/// A spinner on a terminal, plain lines otherwise.
pub fn environment_progress() -> Progress {
    let bar: Arc<Mutex<Option<ProgressBar>>> = Arc::new(Mutex::new(None));
    let interactive = std::io::stderr().is_terminal();
    Arc::new(move |event| {
        let mut bar = bar.lock().expect("poisoned");
        match event {
            ProvisionEvent::Started { dir } => {
                let message = format!(
                    "Preparing the task environment (Robot Framework and the RunWhen keyword libraries, first use only) in {}",
                    dir.display()
                );
                if interactive {
                    let spinner = ProgressBar::new_spinner();
                    spinner.set_style(
                        ProgressStyle::with_template("{spinner} {elapsed} {wide_msg}")
                            .expect("valid template"),
                    );
                    spinner.enable_steady_tick(Duration::from_millis(120));
                    spinner.println(message);
                    *bar = Some(spinner);
                } else {
                    say!("{message}");
                }
            }
            ProvisionEvent::Step(step) => match bar.as_ref() {
                Some(spinner) => spinner.set_message(step),
                None => tracing::debug!(%step, "Task environment."),
            },
            ProvisionEvent::Finished { seconds } => {
                if let Some(spinner) = bar.take() {
                    spinner.finish_and_clear();
                }
                say!("Task environment ready ({seconds}s).");
            }
        }
    })
}

/// Logs to stderr; `STEWARD_LOG` (or `RUST_LOG`) overrides `default`.
pub fn init_logging(default: &str) {
    let filter = std::env::var("STEWARD_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        // kube-rs logs every failed request without saying what it was for; our callers log
        // the failure with that context, so its line is left out unless asked for.
        .unwrap_or_else(|_| format!("{default},kube_client::client::builder=off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
