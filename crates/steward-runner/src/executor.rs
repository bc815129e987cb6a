//! Where runs execute. The runner depends on the [`Executor`] trait; the process executor runs
//! robot as a child process through `steward-runtime`.

use futures::future::BoxFuture;
use std::path::Path;
use std::sync::Arc;
use steward_model::run::{RunResult, RunSpec};
use steward_runtime::{Runtime, SecretValue};
use tokio_util::sync::CancellationToken;

/// Executes one run and returns its result (never an error: failures are results).
pub trait Executor: Send + Sync {
    /// Runs `spec` with these secret values; artifacts go to `out_dir`.
    fn execute<'a>(
        &'a self,
        spec: &'a RunSpec,
        secrets: &'a [SecretValue],
        out_dir: &'a Path,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, RunResult>;

    /// Whether this runner should be given SLIs now. A replica of a group that elects a
    /// leader declines them while it does not lead, so SLIs of pooled collections run where
    /// the pools are served.
    fn takes_slis(&self) -> bool {
        true
    }
}

/// Runs robot as a local child process.
pub struct ProcessExecutor {
    runtime: Arc<Runtime>,
}

impl ProcessExecutor {
    /// Wraps a started runtime.
    pub fn new(runtime: Arc<Runtime>) -> Self {
        ProcessExecutor { runtime }
    }
}

impl Executor for ProcessExecutor {
    fn execute<'a>(
        &'a self,
        spec: &'a RunSpec,
        secrets: &'a [SecretValue],
        out_dir: &'a Path,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, RunResult> {
        Box::pin(async move {
            self.runtime
                .execute(spec, secrets, out_dir, cancel)
                .await
                .result
        })
    }
}
