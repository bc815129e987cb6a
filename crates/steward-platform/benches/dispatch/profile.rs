//! `-- profile`: where a throughput run's time and writes go, per run.
//!
//! CPU is read from /proc for the platform process, the benchmark process (the simulated
//! runners) and the PostgreSQL cluster (the postmaster, its live children and the children it
//! reaped). On PostgreSQL the cluster is started with `pg_stat_statements`, and the profile
//! adds statements, table and index writes (HOT updates among them) and WAL, all divided by
//! the number of runs. These are diagnostics: the figures in docs/benchmarks.md come from runs
//! without `profile`, whose cluster has only PostgreSQL's default settings.

use std::path::Path;
use steward_testkit::postgres::psql;

/// Server settings a profiled cluster adds to PostgreSQL's defaults.
pub const SETTINGS: &[(&str, &str)] = &[
    ("shared_preload_libraries", "pg_stat_statements"),
    ("pg_stat_statements.track_planning", "on"),
    ("track_io_timing", "on"),
    ("session_preload_libraries", "auto_explain"),
    ("auto_explain.log_min_duration", "2"),
    ("auto_explain.log_analyze", "on"),
    ("auto_explain.log_buffers", "on"),
];

/// CPU clock ticks per second (`USER_HZ`, 100 on Linux).
const TICKS: f64 = 100.0;

/// CPU seconds used so far by the platform, the runners and the database.
#[derive(Clone, Copy, Default)]
pub struct Cpu {
    platform: f64,
    runners: f64,
    database: f64,
}

impl Cpu {
    /// Reads the counters now; `postmaster` is the cluster's first process, if it is local.
    pub fn now(platform: u32, postmaster: Option<u32>) -> Self {
        let own = |pid: &str| stat(pid).map(|s| s.used).unwrap_or(0.0);
        Cpu {
            platform: own(&platform.to_string()),
            runners: own("self"),
            database: postmaster.map(cluster_seconds).unwrap_or(0.0),
        }
    }

    /// Prints the CPU used since `before`, in seconds, per run and as cores busy.
    pub fn report(&self, before: &Cpu, runs: usize, seconds: f64) {
        let line = |name: &str, used: f64| {
            println!(
                "  cpu {name:<9} {used:>6.2} s  {:>6.1} µs/run  {:>4.2} cores",
                used / runs as f64 * 1e6,
                used / seconds
            );
        };
        line("platform", self.platform - before.platform);
        line("runners", self.runners - before.runners);
        if self.database > 0.0 {
            line("database", self.database - before.database);
        }
    }
}

/// What /proc/<pid>/stat says about one process.
struct Stat {
    parent: u32,
    /// Its own CPU seconds (user and system).
    used: f64,
    /// CPU seconds of the children it reaped.
    reaped: f64,
}

fn stat(pid: &str) -> Option<Stat> {
    let text = std::fs::read_to_string(Path::new("/proc").join(pid).join("stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields start after the last ')'.
    let (_, rest) = text.rsplit_once(") ")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // Fields 4 (ppid) and 14-17 (utime, stime, cutime, cstime), counted from 1 with the pid.
    Some(Stat {
        parent: fields.get(1)?.parse().ok()?,
        used: (number(11)? + number(12)?) / TICKS,
        reaped: (number(13)? + number(14)?) / TICKS,
    })
}

/// The postmaster and everything under it, including backends that have exited.
fn cluster_seconds(postmaster: u32) -> f64 {
    let Some(main) = stat(&postmaster.to_string()) else {
        return 0.0;
    };
    let children: f64 = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| stat(e.file_name().to_str()?))
        .filter(|s| s.parent == postmaster)
        .map(|s| s.used)
        .sum();
    main.used + main.reaped + children
}

/// The postmaster's pid, when the server at `url` runs on this machine (its checkpointer is
/// one of the postmaster's children).
pub fn postmaster(url: &str) -> Option<u32> {
    let pid = psql(
        url,
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'",
    )
    .ok()?;
    let parent = stat(pid.trim())?.parent;
    Some(parent)
}

/// Clears the counters of the database at `url` and of the cluster's WAL.
pub fn reset(url: &str) {
    let sql = "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; \
               SELECT pg_stat_statements_reset(); SELECT pg_stat_reset(); \
               SELECT pg_stat_reset_shared('wal'); SELECT pg_stat_reset_shared('bgwriter')";
    if let Err(error) = psql(url, sql) {
        eprintln!("profile: cannot reset the statistics: {error}");
    }
}

/// Prints statements, table writes and WAL per run since [`reset`]. Table counters reach the
/// statistics when a backend ends or at most a second after its last transaction: call this
/// once the platform has stopped.
pub fn report(url: &str, runs: usize) {
    if let Ok(dir) = psql(url, "SHOW data_directory") {
        let log = std::path::Path::new(dir.trim())
            .parent()
            .unwrap()
            .join("postgres.log");
        let _ = std::fs::copy(&log, "/work/wip/dispatch/postgres.log");
    }
    let per_run = format!("{runs}.0");
    let queries = [
        (
            "statements (per run: calls, rows, exec ms, plan ms; then the statement)",
            format!(
                "SELECT to_char(calls / {per_run}, 'FM990.000'), to_char(rows / {per_run}, 'FM990.000'), \
                        to_char(total_exec_time / {per_run}, 'FM990.0000'), \
                        to_char(total_plan_time / {per_run}, 'FM990.0000'), \
                        left(regexp_replace(query, '\\s+', ' ', 'g'), 110) \
                 FROM pg_stat_statements \
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 ORDER BY total_exec_time + total_plan_time DESC LIMIT 25"
            ),
        ),
        (
            "all statements per run: calls, exec ms, plan ms",
            format!(
                "SELECT to_char(sum(calls) / {per_run}, 'FM990.000'), \
                        to_char(sum(total_exec_time) / {per_run}, 'FM990.0000'), \
                        to_char(sum(total_plan_time) / {per_run}, 'FM990.0000') \
                 FROM pg_stat_statements \
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
        ),
        (
            "transactions per run: commits, rollbacks",
            format!(
                "SELECT to_char(xact_commit / {per_run}, 'FM990.000'), to_char(xact_rollback / {per_run}, 'FM990.000') \
                 FROM pg_stat_database WHERE datname = current_database()"
            ),
        ),
        (
            "tables per run: inserted, updated, of which HOT, deleted; dead rows now",
            format!(
                "SELECT relname, to_char(n_tup_ins / {per_run}, 'FM990.000'), to_char(n_tup_upd / {per_run}, 'FM990.000'), \
                        to_char(n_tup_hot_upd / {per_run}, 'FM990.000'), to_char(n_tup_del / {per_run}, 'FM990.000'), \
                        n_dead_tup \
                 FROM pg_stat_user_tables WHERE n_tup_ins + n_tup_upd + n_tup_del > 0 ORDER BY relname"
            ),
        ),
        (
            "indexes: scans per run, size",
            format!(
                "SELECT relname || '.' || indexrelname, to_char(idx_scan / {per_run}, 'FM990.000'), \
                        pg_size_pretty(pg_relation_size(indexrelid)) \
                 FROM pg_stat_user_indexes WHERE relname IN ('runs', 'sessions') \
                   OR relname LIKE 'run\\_%' ORDER BY 1"
            ),
        ),
        (
            "WAL per run: records, full-page images, bytes, syncs",
            format!(
                "SELECT to_char(wal_records / {per_run}, 'FM990.00'), to_char(wal_fpi / {per_run}, 'FM990.00'), \
                        to_char(wal_bytes / {per_run}, 'FM999990'), to_char(wal_sync / {per_run}, 'FM990.000') \
                 FROM pg_stat_wal"
            ),
        ),
        (
            "buffers: written by checkpoints, by the background writer, by backends",
            "SELECT buffers_checkpoint, buffers_clean, buffers_backend FROM pg_stat_bgwriter"
                .to_string(),
        ),
    ];
    for (title, sql) in queries {
        println!("  {title}");
        match psql(url, &sql) {
            Ok(rows) => {
                for row in rows.lines() {
                    println!("    {}", row.replace('|', "  "));
                }
            }
            Err(error) => println!("    (not available: {error})"),
        }
    }
}
