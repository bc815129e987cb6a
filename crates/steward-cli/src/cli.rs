//! Command-line definitions.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Steward: SRE troubleshooting automation with RunWhen CodeCollections.
#[derive(Parser)]
#[command(
    name = "steward",
    version,
    about = "Steward: health checks and troubleshooting tasks from RunWhen CodeCollections, run by outbound-only runners",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    /// For people.
    #[default]
    Text,
    /// For programs.
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Control plane and a runner on this machine, with the example workspace.
    Up(UpArgs),
    /// The control plane alone.
    Platform(PlatformArgs),
    /// A runner connected to a control plane.
    Runner(RunnerArgs),
    /// Run one codebundle's robot file here, without a platform (the codebundle author's loop).
    Run(RunArgs),
    /// Platform status: workspaces, SLXs with their latest SLI value, runners, queue.
    Status(ClientArgs),
    /// Issues raised by tasks.
    Issues(IssuesArgs),
    /// Recent runs, or one run in detail.
    Runs(RunsArgs),
    /// Run sessions: run an SLX's runbook on demand.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Workspaces: import a workspace tree.
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// SLI values of an SLX.
    #[command(subcommand)]
    Sli(SliCommand),
    /// Registration tokens for runners.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Cancel runs: a queued run at once, a running one at its runner's next poll.
    Cancel(CancelArgs),
    /// Alerts raised from SLI values (active ones; --all for history).
    Alerts(AlertsArgs),
    /// Generate a workspace from Kubernetes resources and CodeCollection generation rules
    /// (runwhen-local's workspaceInfo.yaml), and optionally upload it.
    Discover(DiscoverArgs),
    /// Inside a task pod of the Kubernetes executor: run the task its Secret describes and
    /// report to the runner (started by the runner, not by hand).
    #[command(hide = true)]
    TaskPod(TaskPodArgs),
    /// Inside a warm pool worker of the Kubernetes executor: take runs from the runner and run
    /// them (started by the runner's pool Deployment, not by hand).
    #[command(hide = true)]
    Worker(WorkerArgs),
}

#[derive(Args)]
pub struct WorkerArgs {
    /// The runner's in-cluster endpoint.
    #[arg(long, env = "STEWARD_RUNNER_URL")]
    pub runner: String,
    /// The pool's name.
    #[arg(long)]
    pub pool: String,
    /// The pool's bearer token (from the pool's Secret).
    #[arg(long, env = "STEWARD_POOL_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The pool's CodeCollection, fetched at --ref before the first run.
    #[arg(long)]
    pub repo_url: Option<String>,
    /// See --repo-url.
    #[arg(long = "ref")]
    pub git_ref: Option<String>,
    /// Scratch directory for runs.
    #[arg(long, default_value = "/tmp/steward/work")]
    pub work_dir: PathBuf,
    #[command(flatten)]
    pub dirs: DirArgs,
}

#[derive(Args)]
pub struct TaskPodArgs {
    /// The launch file from the run's Secret.
    #[arg(long)]
    pub launch: PathBuf,
    /// Scratch directory for the run.
    #[arg(long, default_value = "/tmp/steward/work")]
    pub work_dir: PathBuf,
    #[command(flatten)]
    pub dirs: DirArgs,
}

impl Command {
    /// Long-running commands (they keep going when their terminal goes away).
    pub fn is_service(&self) -> bool {
        matches!(
            self,
            Command::Up(_) | Command::Platform(_) | Command::Runner(_) | Command::Worker(_)
        )
    }
}

/// Where the state lives.
#[derive(Args, Clone)]
pub struct DirArgs {
    /// State directory (database, artifacts, runner state).
    #[arg(long, env = "STEWARD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Cache directory (Python environments, CodeCollection checkouts).
    #[arg(long, env = "STEWARD_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Args)]
pub struct UpArgs {
    /// Address of the platform's HTTP listener.
    #[arg(long, default_value = "127.0.0.1:8080", env = "STEWARD_LISTEN")]
    pub listen: SocketAddr,
    /// Address of the HTTPS listener (a self-signed certificate is made for it).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub tls_listen: SocketAddr,
    /// Do not serve HTTPS (the example's TLS check then reports the endpoint unreachable).
    #[arg(long)]
    pub no_tls: bool,
    /// Import this workspace tree instead of the bundled example.
    #[arg(long)]
    pub workspace: Option<PathBuf>,
    /// Runs the embedded runner executes at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub capacity: u32,
    #[command(flatten)]
    pub dirs: DirArgs,
}

#[derive(Args)]
pub struct PlatformArgs {
    /// Address of the HTTP listener.
    #[arg(long, default_value = "127.0.0.1:8080", env = "STEWARD_LISTEN")]
    pub listen: SocketAddr,
    /// URL runners and browsers reach the platform at (default: http://<listen>).
    #[arg(long, env = "STEWARD_PUBLIC_URL", value_parser = http_url)]
    pub public_url: Option<String>,
    /// Require this bearer token on the client API.
    #[arg(long, env = "STEWARD_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Accept this registration token (for --location).
    #[arg(long, env = "STEWARD_REGISTRATION_TOKEN", hide_env_values = true)]
    pub registration_token: Option<String>,
    /// Location of --registration-token and of SLIs/runbooks that name none.
    #[arg(long, default_value = "local", value_parser = location_name)]
    pub location: String,
    /// Also serve HTTPS on this address (with --tls-cert and --tls-key).
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    pub tls_listen: Option<SocketAddr>,
    /// PEM certificate chain for HTTPS.
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Lifetime of signed artifact URLs (e.g. 15m, 1h).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub url_ttl: std::time::Duration,
    /// How long a lease lives without a poll renewing it (at least 2s).
    #[arg(long, default_value = "60s", value_parser = lease_ttl)]
    pub lease_ttl: std::time::Duration,
    /// How many times a run is handed out (its runner vanishing each time) before it ends as
    /// an error.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    /// A runner that has not polled for this long is shown offline (stale before, online
    /// while it polls within --lease-ttl).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub runner_offline_after: std::time::Duration,
    /// The database: postgres://USER[:PASSWORD]@HOST[:PORT]/DB for several replicas sharing
    /// one PostgreSQL, or sqlite://PATH (default: steward.db in the data directory).
    #[arg(long, env = "STEWARD_DATABASE_URL", hide_env_values = true, value_parser = database_url)]
    pub database_url: Option<String>,
    /// How long raw SLI points are kept (five-minute rollups stay for --sli-rollup-retention).
    #[arg(long, default_value = "14d", value_parser = humantime::parse_duration)]
    pub sli_raw_retention: std::time::Duration,
    /// How long five-minute SLI rollups are kept.
    #[arg(long, default_value = "400d", value_parser = humantime::parse_duration)]
    pub sli_rollup_retention: std::time::Duration,
    /// Keep artifacts in an object store: s3://bucket[/prefix], gs://bucket[/prefix] or
    /// az://container[/prefix] (credentials from the usual AWS_*, GOOGLE_*, AZURE_* variables).
    #[arg(long, env = "STEWARD_ARTIFACTS_URL")]
    pub artifacts: Option<String>,
    /// An object-store setting, KEY=VALUE in object_store's names (aws_endpoint, aws_region,
    /// google_service_account_key, azure_storage_account_name, ...); repeatable.
    #[arg(long = "artifacts-option", value_name = "KEY=VALUE")]
    pub artifacts_options: Vec<String>,
    /// Largest artifact in MiB; runners cut bigger ones in the middle to fit.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub artifact_max_mb: u64,
    /// Send SLI points to this Prometheus remote-write endpoint (e.g. http://prometheus:9090/api/v1/write).
    #[arg(long, env = "STEWARD_REMOTE_WRITE_URL", value_parser = http_url)]
    pub remote_write_url: Option<String>,
    /// Bearer token for --remote-write-url.
    #[arg(long, env = "STEWARD_REMOTE_WRITE_TOKEN", hide_env_values = true)]
    pub remote_write_token: Option<String>,
    #[command(flatten)]
    pub dirs: DirArgs,
}

#[derive(Args)]
pub struct RunnerArgs {
    /// Base URL of the platform.
    #[arg(long, env = "STEWARD_PLATFORM_URL")]
    pub platform: String,
    /// Registration token (first start only; the credential is kept in the state directory).
    #[arg(long, env = "STEWARD_REGISTRATION_TOKEN", hide_env_values = true)]
    pub registration_token: Option<String>,
    /// Name shown in the platform (default: host name).
    #[arg(long)]
    pub name: Option<String>,
    /// Runs executed at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub capacity: u32,
    /// Use a local directory for a CodeCollection: REPO_URL=DIR (repeatable).
    #[arg(long = "collection", value_name = "REPO_URL=DIR")]
    pub collections: Vec<String>,
    /// Directory with one file per secret key (for secretsProvided keys without a provider).
    #[arg(long, env = "STEWARD_SECRETS_DIR")]
    pub secrets_dir: Option<PathBuf>,
    /// Runner configuration file (YAML): secretProviders (Vault), blockedSecrets and the
    /// settings of the pods it starts; see docs/secrets.md and docs/deploy.md.
    #[arg(long, env = "STEWARD_RUNNER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where tasks run: `process` (child processes of the runner) or `kubernetes` (a pod per
    /// run, set up by the `kubernetes` section of --config); overrides the file's `executor`.
    #[arg(long, env = "STEWARD_EXECUTOR", value_parser = ["process", "kubernetes"])]
    pub executor: Option<String>,
    /// The runner's Kubernetes namespace, for k8s:file@/k8s:env@ secret keys that name none
    /// (default: the namespace of the in-cluster or kubeconfig context).
    #[arg(long, env = "STEWARD_NAMESPACE")]
    pub namespace: Option<String>,
    /// Extra trusted CA certificate (PEM) for the platform's HTTPS.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// Talk HTTP/1.1 to the platform (for proxies without HTTP/2).
    #[arg(long)]
    pub http1: bool,
    /// Python interpreter for task environments.
    #[arg(long, env = "STEWARD_PYTHON")]
    pub python: Option<PathBuf>,
    /// Address of the loopback OTLP/HTTP receiver tasks and local exporters push to (port 0:
    /// any free port); points outside runs are relayed to the platform.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub otlp_listen: SocketAddr,
    /// Serve Prometheus metrics at http://<addr>/metrics.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Size limit of the relayed-metrics spool in MiB (the oldest batches go first).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub relay_spool_mb: u64,
    #[command(flatten)]
    pub dirs: DirArgs,
}

#[derive(Args)]
pub struct RunArgs {
    /// The robot file: <collection>/codebundles/<bundle>/runbook.robot or sli.robot.
    pub robot: PathBuf,
    /// A configProvided variable, NAME=VALUE (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// A secret from a file, NAME=FILE (repeatable).
    #[arg(long = "secret", value_name = "NAME=FILE")]
    pub secrets: Vec<String>,
    /// Run only this task, by its title as written in the file (repeatable).
    #[arg(long = "task", value_name = "TITLE")]
    pub tasks: Vec<String>,
    /// Wall-clock limit in seconds.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Where log.html, stdout.txt, report.jsonl and issues.jsonl go.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run as an SLI (sets RW_LOOKBACK_WINDOW and the metric name); default: by file name.
    #[arg(long)]
    pub sli: bool,
    /// SLI interval in seconds (for RW_LOOKBACK_WINDOW).
    #[arg(long, default_value_t = 300)]
    pub interval: u64,
    /// Print the robot console while it runs.
    #[arg(long, short)]
    pub verbose: bool,
    /// Python interpreter for the task environment.
    #[arg(long, env = "STEWARD_PYTHON")]
    pub python: Option<PathBuf>,
    /// Cache directory (Python environments).
    #[arg(long, env = "STEWARD_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

/// How to reach a platform.
#[derive(Args, Clone)]
pub struct ClientArgs {
    /// Platform URL.
    #[arg(long, env = "STEWARD_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API token, when the platform requires one.
    #[arg(long, env = "STEWARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Args)]
pub struct IssuesArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Only this workspace.
    #[arg(long)]
    pub workspace: Option<String>,
    /// Only this SLX.
    #[arg(long)]
    pub slx: Option<String>,
    /// Include resolved issues.
    #[arg(long)]
    pub all: bool,
}

#[derive(Args)]
pub struct RunsArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Show this run in detail (tasks, issues, artifact links).
    pub id: Option<String>,
    /// Only this workspace.
    #[arg(long)]
    pub workspace: Option<String>,
    /// Only this SLX.
    #[arg(long)]
    pub slx: Option<String>,
    /// Only runbook or sli runs.
    #[arg(long)]
    pub kind: Option<String>,
    /// How many (1 to 1000).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
}

#[derive(Subcommand)]
pub enum SessionCommand {
    /// Run an SLX's runbook (all tasks, or those named with --task).
    Create(SessionCreateArgs),
}

#[derive(Args)]
pub struct SessionCreateArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The SLX (short or full name; repeatable for several runs in one session).
    #[arg(long, required = true)]
    pub slx: Vec<String>,
    /// Task title as written in the robot file (repeatable; default: every task).
    #[arg(long = "task")]
    pub tasks: Vec<String>,
    /// Workspace (default: the only one there is).
    #[arg(long)]
    pub workspace: Option<String>,
    /// Return at once instead of waiting for the results.
    #[arg(long)]
    pub no_wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub wait_timeout: u64,
}

#[derive(Subcommand)]
pub enum WorkspaceCommand {
    /// Import (or replace) a workspace tree: workspace.yaml and slxs/<name>/*.yaml.
    Import(WorkspaceImportArgs),
}

#[derive(Args)]
pub struct WorkspaceImportArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The tree's root directory.
    pub dir: PathBuf,
    /// Keep SLXs the tree no longer has.
    #[arg(long)]
    pub no_prune: bool,
}

#[derive(Args)]
pub struct DiscoverArgs {
    /// runwhen-local's workspaceInfo.yaml.
    #[arg(long, short = 'c', default_value = "workspaceInfo.yaml")]
    pub config: PathBuf,
    /// runwhen-local's uploadInfo.yaml (platform URL, token); read when present next to the
    /// config, or from here.
    #[arg(long)]
    pub upload_info: Option<PathBuf>,
    /// Index this kubeconfig instead of cloudConfig.kubernetes.kubeconfigFile.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Only these kubeconfig contexts (repeatable; default: every context).
    #[arg(long = "context")]
    pub contexts: Vec<String>,
    /// Generate from a snapshot instead of clusters: a file written by --snapshot-out, or a
    /// directory (or file) of `kubectl get -A -o yaml` output.
    #[arg(long, value_name = "PATH")]
    pub from_snapshot: Option<PathBuf>,
    /// Write every indexed resource to this snapshot file.
    #[arg(long, value_name = "FILE")]
    pub snapshot_out: Option<PathBuf>,
    /// Where the workspace tree is written (default: output/workspaces/<workspaceName>).
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// SLX naming: `current` (runwhen-local 0.11.10+, 255 characters) or `legacy` (63).
    #[arg(long, value_parser = ["current", "legacy"])]
    pub name_mode: Option<String>,
    /// Only index and write the snapshot; generate nothing.
    #[arg(long)]
    pub index_only: bool,
    /// runwhen-local's map customization rules (a file, or a directory of them): SLX groups
    /// and relationships in workspace.yaml.
    #[arg(long, value_name = "PATH")]
    pub map_customization_rules: Option<PathBuf>,
    /// Send the tree to the platform afterwards (runwhen-local's upload call).
    #[arg(long)]
    pub upload: bool,
    /// Platform URL for --upload (default: papiURL from uploadInfo.yaml, else STEWARD_URL).
    #[arg(long, env = "STEWARD_URL")]
    pub url: Option<String>,
    /// API token for --upload (default: token from uploadInfo.yaml).
    #[arg(long, env = "STEWARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// SLXs that exist on the platform: replaced (keep-uploaded) or left as they are
    /// (keep-existing).
    #[arg(long, value_enum, default_value_t)]
    pub merge_mode: MergeModeArg,
    /// Remove SLXs from the platform's workspace that this run did not generate.
    #[arg(long)]
    pub prune_stale_slxs: bool,
    #[command(flatten)]
    pub dirs: DirArgs,
    /// Print the summary as JSON.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum MergeModeArg {
    #[default]
    KeepUploaded,
    KeepExisting,
}

#[derive(Subcommand)]
pub enum SliCommand {
    /// The SLI values of one SLX.
    Show(SliShowArgs),
}

#[derive(Args)]
pub struct SliShowArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The SLX.
    pub slx: String,
    /// How far back: a duration (15m, 1h, 7d) or an RFC 3339 time.
    #[arg(long, default_value = "1h")]
    pub since: String,
    /// Aggregate into buckets this wide (5m, 1h); without it every point is listed.
    #[arg(long)]
    pub step: Option<String>,
    /// How a bucket becomes one value.
    #[arg(long, default_value = "avg", value_parser = ["avg", "min", "max", "last", "sum", "count"])]
    pub agg: String,
    /// Only this metric: "value" for the SLI value, or a sub-metric name.
    #[arg(long)]
    pub metric: Option<String>,
    /// Workspace (default: the only one there is).
    #[arg(long)]
    pub workspace: Option<String>,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a registration token for runners of a location.
    Create(TokenCreateArgs),
}

#[derive(Args)]
pub struct TokenCreateArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The location runners registering with it join.
    #[arg(long, value_parser = location_name)]
    pub location: String,
}

#[derive(Args)]
pub struct CancelArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Run ids.
    #[arg(required = true)]
    pub runs: Vec<String>,
}

fn http_url(text: &str) -> Result<String, String> {
    if text.starts_with("http://") || text.starts_with("https://") {
        Ok(text.trim_end_matches('/').to_string())
    } else {
        Err("give an http:// or https:// URL".into())
    }
}

fn location_name(text: &str) -> Result<String, String> {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Ok(text.to_string())
    } else {
        Err("a location name holds letters, digits, '-', '_' and '.'".into())
    }
}

fn database_url(text: &str) -> Result<String, String> {
    steward_platform::store::Backend::of_url(text)
        .map(|_| text.to_string())
        .map_err(|e| e.to_string())
}

fn lease_ttl(text: &str) -> Result<std::time::Duration, String> {
    let ttl = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if ttl < std::time::Duration::from_secs(2) {
        return Err("leases shorter than 2s would lapse between polls".into());
    }
    Ok(ttl)
}

#[derive(Args)]
pub struct AlertsArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Include alerts that have ended.
    #[arg(long)]
    pub all: bool,
    /// Only this workspace.
    #[arg(long)]
    pub workspace: Option<String>,
}
