//! Dispatch benchmarks: how fast the platform hands runs to runners, how long a run waits
//! between its session's creation and a runner holding it, and what 10,000 idle runners,
//! each holding a long poll on its own HTTP/2 connection, cost in platform memory.
//!
//!     cargo bench -p steward-platform --bench dispatch                 # everything
//!     cargo bench -p steward-platform --bench dispatch -- throughput   # or latency, idle
//!     cargo bench -p steward-platform --bench dispatch -- idle sqlite  # or postgresql
//!     cargo bench -p steward-platform --bench dispatch -- throughput postgresql profile
//!
//! `profile` adds where the throughput part's CPU went (platform, runners, database) and, on
//! PostgreSQL, statements, table writes and WAL per run (see `dispatch/profile.rs`).
//!
//! The platform runs in a child process (this binary again, in serve mode) so its memory is
//! its own; the simulated runners are clients in this process, speaking the runner protocol
//! over loopback like `steward runner` (HTTP/2 with prior knowledge) and completing every run
//! at once, so what is measured is the platform. Each part runs on SQLite and on PostgreSQL
//! (a cluster this benchmark starts, with PostgreSQL's default durability settings).

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use steward_platform::{Platform, PlatformConfig};

#[path = "dispatch/profile.rs"]
mod profile;

const SERVE: &str = "STEWARD_BENCH_SERVE";
const TOKEN: &str = "stw_reg_bench";
const LOCATION: &str = "bench";

fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    if let Ok(database) = std::env::var(SERVE) {
        serve(database);
        return;
    }
    raise_open_files();
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let backends = ["sqlite", "postgresql"];
    let named = |list: &[&str]| parts.iter().any(|p| list.contains(&p.as_str()));
    let wanted =
        |part: &str| !named(&["throughput", "latency", "idle"]) || parts.iter().any(|p| p == part);
    let profiled = parts.iter().any(|p| p == "profile");
    let runners = parts
        .iter()
        .find_map(|p| p.strip_prefix("runners="))
        .map(|n| n.parse().expect("runners=N takes a number"))
        .unwrap_or(RUNNERS);
    let postgres = steward_testkit::postgres::PostgresServer::start_with(if profiled {
        profile::SETTINGS
    } else {
        &[]
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (backend, url) in [("SQLite", None), ("PostgreSQL", Some(postgres.admin_url()))] {
        if named(&backends) && !parts.iter().any(|p| p.eq_ignore_ascii_case(backend)) {
            continue;
        }
        let database = || match &url {
            Some(_) => postgres.database(),
            None => String::new(),
        };
        if wanted("throughput") {
            let database = database();
            let server = Server::start(&database);
            let postmaster = url
                .as_deref()
                .filter(|_| profiled)
                .and_then(profile::postmaster);
            if profiled && url.is_some() {
                profile::reset(&database);
            }
            let cpu = profile::Cpu::now(server.child.id(), postmaster);
            let run = runtime.block_on(throughput(&server.url, runners));
            let (runs, seconds) = (run.runs, run.seconds);
            println!(
                "{backend:<10} throughput: {:>7.0} runs/s ({runs} runs in {seconds:.2} s, \
                 {runners} runners of capacity {CAPACITY})",
                runs as f64 / seconds
            );
            if profiled {
                println!(
                    "  last session created after {:.2} s, {} runs completed by then",
                    run.queued, run.done_by_then
                );
                let polls = run.polls.max(1) as f64;
                println!(
                    "  polls with work: {}, {:.1} runs each, {:.2} ms each; \
                     lease to completion answered: {:.2} ms per run",
                    run.polls,
                    runs as f64 / polls,
                    run.polling_us as f64 / polls / 1000.0,
                    run.completing_us as f64 / runs as f64 / 1000.0
                );
                profile::Cpu::now(server.child.id(), postmaster).report(&cpu, runs, seconds);
                // Table counters reach the statistics when the platform's connections end.
                drop(server);
                if url.is_some() {
                    profile::report(&database, runs);
                }
            }
        }
        if wanted("latency") {
            let server = Server::start(&database());
            let (p50, p99) = runtime.block_on(latency(&server.url));
            println!("{backend:<10} dispatch latency: p50 {p50:.2} ms, p99 {p99:.2} ms");
        }
        if wanted("idle") {
            let server = Server::start(&database());
            let (rss, peak) = runtime.block_on(idle(&server, 10_000));
            println!(
                "{backend:<10} 10,000 idle runners: platform RSS {:.0} MB (peak {:.0} MB)",
                rss as f64 / 1e6,
                peak as f64 / 1e6
            );
        }
    }
}

/// Serve mode: a platform on a free port; prints its address, stops when stdin closes.
fn serve(database: String) {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut config = PlatformConfig::new(dir.path().to_path_buf());
        config.listen = ([127, 0, 0, 1], 0).into();
        config.database_url = (!database.is_empty()).then_some(database);
        config.default_location = LOCATION.into();
        config
            .registration_tokens
            .push((TOKEN.into(), LOCATION.into()));
        let platform = Platform::start(config).await.unwrap();
        println!("listening {}", platform.addr());
        tokio::task::spawn_blocking(|| {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        })
        .await
        .unwrap();
        platform.stop().await;
    });
}

/// The platform child process; stopped (by pid) when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(database: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(SERVE, database)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line.trim().strip_prefix("listening ").expect("serve mode");
        let server = Server {
            url: format!("http://{addr}"),
            child,
        };
        let files = json!({
            "workspace.yaml": "apiVersion: runwhen.com/v1\nkind: Workspace\nmetadata:\n  name: bench\n",
            "slxs/noop/slx.yaml": "apiVersion: runwhen.com/v1\nkind: ServiceLevelX\nmetadata:\n  name: bench--noop\n",
            "slxs/noop/runbook.yaml": "apiVersion: runwhen.com/v1\nkind: Runbook\nmetadata:\n  name: bench--noop\nspec:\n  codeBundle:\n    repoUrl: builtin://steward\n    pathToRobot: codebundles/http-endpoint-health/runbook.robot\n",
        });
        let status = reqwest::blocking::Client::new()
            .put(format!("{}/api/v1/workspaces/bench", server.url))
            .json(&json!({ "files": files }))
            .send()
            .unwrap()
            .status();
        assert!(status.is_success(), "import: {status}");
        server
    }

    fn rss(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib = |key: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
                * 1024
        };
        (kib("VmRSS:"), kib("VmHWM:"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        if self.child.wait_timeout(Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

trait WaitTimeout {
    fn wait_timeout(&mut self, timeout: Duration) -> Option<std::process::ExitStatus>;
}

impl WaitTimeout for Child {
    fn wait_timeout(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

/// A simulated runner: its own HTTP/2 connection, as `steward runner` keeps one.
#[derive(Clone)]
struct SimRunner {
    http: reqwest::Client,
    url: String,
    credential: String,
}

impl SimRunner {
    async fn register(url: &str, capacity: u32) -> Self {
        let http = reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap();
        let response: Value = http
            .post(format!("{url}/api/v1/runner/register"))
            .json(&json!({ "token": TOKEN, "name": "sim", "version": "0", "capacity": capacity }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        SimRunner {
            http,
            url: url.to_string(),
            credential: response["credential"].as_str().unwrap().to_string(),
        }
    }

    async fn poll(&self, free: u32, capacity: u32, version: &Option<String>) -> Value {
        self.http
            .post(format!("{}/api/v1/runner/poll", self.url))
            .bearer_auth(&self.credential)
            .json(
                &json!({ "freeCapacity": free, "capacity": capacity, "running": [],
                           "desiredStateVersion": version, "noWait": false }),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn complete(&self, lease: &Value) {
        let run = lease["run"]["runId"].as_str().unwrap();
        let now = chrono::Utc::now();
        let status = self
            .http
            .post(format!("{}/api/v1/runner/runs/{run}/complete", self.url))
            .bearer_auth(&self.credential)
            .json(&json!({ "leaseId": lease["leaseId"], "result": {
                "status": "succeeded", "startedAt": now, "finishedAt": now,
                "tasks": [{ "name": "Noop", "title": "Noop", "status": "PASS",
                            "message": "", "elapsedMs": 0 }] } }))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "complete: {status}");
    }
}

async fn create_session(http: &reqwest::Client, url: &str, runs: usize) {
    let requests: Vec<Value> = (0..runs)
        .map(|_| json!({ "slx": "noop", "taskTitles": ["*"] }))
        .collect();
    let response = http
        .post(format!("{url}/api/v1/workspaces/bench/sessions"))
        .json(&json!({ "runRequests": requests }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

/// A throughput run: `runs` from the first session's creation to the last run's completion
/// in `seconds`; the last session was created after `queued` seconds, with `done_by_then`
/// runs completed.
struct Throughput {
    runs: usize,
    seconds: f64,
    queued: f64,
    done_by_then: usize,
    /// Polls that leased work, microseconds spent in them, and microseconds from a lease's
    /// arrival to its completion being answered, summed over runs.
    polls: u64,
    polling_us: u64,
    completing_us: u64,
}

/// Simulated runners in the throughput run unless `runners=N` says otherwise, and the runs
/// each takes at once.
const RUNNERS: usize = 8;
const CAPACITY: u32 = 64;

/// Runs per second from the first session's creation to the last run's completion.
///
/// Each simulated runner behaves like `steward runner` with tasks that finish at once: it
/// polls for as many runs as it has free slots, delivers each leased run's completion on its
/// own stream without waiting for the others, and polls again while those are delivered;
/// with every slot taken it waits for one to free instead of polling.
async fn throughput(url: &str, runners_wanted: usize) -> Throughput {
    const RUNS: usize = 20_000;
    const PER_SESSION: usize = 100;
    let completed = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let cycles: Arc<[AtomicU64; 3]> = Arc::default();
    let mut runners = Vec::new();
    for _ in 0..runners_wanted {
        let runner = SimRunner::register(url, CAPACITY).await;
        let (completed, stop, cycles) = (completed.clone(), stop.clone(), cycles.clone());
        runners.push(tokio::spawn(async move {
            let busy = Arc::new(AtomicU32::new(0));
            let freed = Arc::new(tokio::sync::Notify::new());
            let mut version = None;
            let micros = |d: Duration| d.as_micros() as u64;
            while !stop.load(Ordering::Relaxed) {
                let slot_freed = freed.notified();
                let free = CAPACITY - busy.load(Ordering::Acquire);
                if free == 0 {
                    slot_freed.await;
                    continue;
                }
                let polled = Instant::now();
                let poll = runner.poll(free, CAPACITY, &version).await;
                version = poll["desiredStateVersion"].as_str().map(str::to_string);
                let leases = poll["leases"].as_array().cloned().unwrap_or_default();
                if leases.is_empty() {
                    continue;
                }
                cycles[0].fetch_add(1, Ordering::Relaxed);
                cycles[1].fetch_add(micros(polled.elapsed()), Ordering::Relaxed);
                busy.fetch_add(leases.len() as u32, Ordering::AcqRel);
                for lease in leases {
                    let (runner, busy, freed) = (runner.clone(), busy.clone(), freed.clone());
                    let (completed, cycles) = (completed.clone(), cycles.clone());
                    tokio::spawn(async move {
                        let leased = Instant::now();
                        runner.complete(&lease).await;
                        cycles[2].fetch_add(micros(leased.elapsed()), Ordering::Relaxed);
                        completed.fetch_add(1, Ordering::Relaxed);
                        busy.fetch_sub(1, Ordering::AcqRel);
                        freed.notify_one();
                    });
                }
            }
        }));
    }
    let http = reqwest::Client::new();
    let started = Instant::now();
    for _ in 0..RUNS / PER_SESSION {
        create_session(&http, url, PER_SESSION).await;
    }
    let queued = started.elapsed().as_secs_f64();
    let done_by_then = completed.load(Ordering::Relaxed);
    while completed.load(Ordering::Relaxed) < RUNS {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    // Idle polls end at the poll timeout; the runners are not waited for.
    for runner in runners {
        runner.abort();
    }
    Throughput {
        runs: RUNS,
        seconds: elapsed,
        queued,
        done_by_then,
        polls: cycles[0].load(Ordering::Relaxed),
        polling_us: cycles[1].load(Ordering::Relaxed),
        completing_us: cycles[2].load(Ordering::Relaxed),
    }
}

/// Milliseconds from a one-run session's creation to a waiting runner holding its lease.
async fn latency(url: &str) -> (f64, f64) {
    const SAMPLES: usize = 500;
    let (leased_tx, mut leased_rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let mut runners = Vec::new();
    for _ in 0..4 {
        let runner = SimRunner::register(url, 4).await;
        let leased_tx = leased_tx.clone();
        runners.push(tokio::spawn(async move {
            let mut version = None;
            loop {
                let poll = runner.poll(4, 4, &version).await;
                let at = Instant::now();
                version = poll["desiredStateVersion"].as_str().map(str::to_string);
                for lease in poll["leases"].as_array().cloned().unwrap_or_default() {
                    let _ = leased_tx.send(at);
                    runner.complete(&lease).await;
                }
            }
        }));
    }
    // Let every runner settle into a long poll.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let http = reqwest::Client::new();
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let created = Instant::now();
        create_session(&http, url, 1).await;
        let leased = leased_rx.recv().await.unwrap();
        samples.push(leased.saturating_duration_since(created).as_secs_f64() * 1000.0);
        // The runner completes and polls again before the next run.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for runner in runners {
        runner.abort();
    }
    samples.sort_by(f64::total_cmp);
    let pct = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    (pct(50), pct(99))
}

/// Platform memory once `count` runners all hold a long poll.
async fn idle(server: &Server, count: usize) -> (u64, u64) {
    let url = server.url.clone();
    let waiting = Arc::new(AtomicUsize::new(0));
    let mut runners = Vec::with_capacity(count);
    let registrations = Arc::new(tokio::sync::Semaphore::new(64));
    for _ in 0..count {
        let (url, waiting, registrations) = (url.clone(), waiting.clone(), registrations.clone());
        runners.push(tokio::spawn(async move {
            let permit = registrations.acquire_owned().await.unwrap();
            let runner = SimRunner::register(&url, 4).await;
            // The first poll learns the desired-state version; the next ones wait.
            let first = runner.poll(4, 4, &None).await;
            drop(permit);
            let version = first["desiredStateVersion"].as_str().map(str::to_string);
            waiting.fetch_add(1, Ordering::Relaxed);
            loop {
                runner.poll(4, 4, &version).await;
            }
        }));
    }
    while waiting.load(Ordering::Relaxed) < count {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A full poll cycle (25 s) with every runner renewing its poll.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let memory = server.rss();
    for runner in runners {
        runner.abort();
    }
    memory
}

fn raise_open_files() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}
