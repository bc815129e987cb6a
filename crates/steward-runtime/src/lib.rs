//! Executes one codebundle task the way the RunWhen runtime does, so public CodeCollections
//! run unchanged.
//!
//! A run is one `robot` process over one `.robot` file, in a managed Python environment that
//! holds the real `rw-core-keywords` and `rw-cli-keywords` libraries. The runtime supplies the
//! environment contract (`configProvided` as variables, `RW_SECRETS_KEYS` pointing at private
//! 0400 files, `RW_*` platform variables, an OTLP endpoint on loopback), enforces the time
//! limit on the whole process group, and turns `output.xml`, `issues.jsonl`, `report.jsonl`
//! and the pushed metrics into a [`RunResult`](steward_model::run::RunResult).
//!
//! ```no_run
//! # async fn demo(spec: steward_model::run::RunSpec) -> Result<(), steward_runtime::Error> {
//! use steward_runtime::{Runtime, RuntimeConfig};
//! let config = RuntimeConfig::new("/var/cache/steward".into(), "/var/lib/steward/work".into());
//! let runtime = Runtime::start(config, std::sync::Arc::new(|_| {})).await?;
//! let done = runtime
//!     .execute(&spec, &[], "/tmp/out".as_ref(), &tokio_util::sync::CancellationToken::new())
//!     .await;
//! println!("{:?} with {} issues", done.result.status, done.result.issues.len());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod collection;
pub mod contract;
mod execute;
pub mod jsonl;
pub mod output_xml;
pub mod process;
pub mod python;
pub mod receiver;
pub mod robot;
pub mod secrets;

pub use execute::{ARTIFACTS, Execution, Runtime, RuntimeConfig, SharedRuntime};
pub use python::{Progress, ProvisionEvent};
pub use secrets::SecretValue;

use std::path::{Path, PathBuf};

/// Why a run could not be prepared or executed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable Python interpreter.
    #[error(
        "Python is needed to run tasks: {detail}. Install Python 3.9+ (Debian: apt-get install python3 python3-venv) or point STEWARD_PYTHON at an interpreter"
    )]
    PythonMissing {
        /// What was tried and what failed.
        detail: String,
    },
    /// Python without its venv module.
    #[error(
        "{python} cannot create virtual environments ({detail}). Install the venv module (Debian: apt-get install python3-venv) or point STEWARD_PYTHON at another interpreter"
    )]
    VenvMissing {
        /// The interpreter.
        python: PathBuf,
        /// Its complaint.
        detail: String,
    },
    /// Building the environment failed at some step.
    #[error("preparing the Python environment in {dir} failed at {step}:\n{detail}")]
    PythonSetup {
        /// The environment directory.
        dir: PathBuf,
        /// `python -m venv`, `pip install`.
        step: String,
        /// The end of the step's output.
        detail: String,
    },
    /// The CodeCollection cannot be used.
    #[error("CodeCollection {repo_url}: {reason}")]
    Collection {
        /// `repoUrl` as written.
        repo_url: String,
        /// What is wrong.
        reason: String,
    },
    /// A git command failed.
    #[error("CodeCollection {repo_url}: git failed: {detail}")]
    Git {
        /// `repoUrl` as written.
        repo_url: String,
        /// git's message.
        detail: String,
    },
    /// `pathToRobot` names no file.
    #[error(
        "no robot file {path} in the CodeCollection at {collection}; check codeBundle.pathToRobot"
    )]
    RobotFileMissing {
        /// `pathToRobot`.
        path: String,
        /// `repoUrl` of the collection.
        collection: String,
    },
    /// A requested task title is not in the robot file.
    #[error("no task titled {title:?} in {file}; its tasks are: {}", available.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(", "))]
    UnknownTask {
        /// The requested title.
        title: String,
        /// The robot file (`pathToRobot of repoUrl`).
        file: String,
        /// Raw titles the file has.
        available: Vec<String>,
    },
    /// A `configProvided` entry cannot become an environment variable.
    #[error("configProvided {name}: {reason}")]
    InvalidConfig {
        /// Variable name.
        name: String,
        /// Why not.
        reason: String,
    },
    /// A file operation failed.
    #[error("{path}: {cause}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            cause: source,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
