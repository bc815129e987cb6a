//! `steward discover`: generate a workspace from clusters or a snapshot, and upload it.

use crate::cli::{DiscoverArgs, MergeModeArg, Output};
use crate::{dirs, output};
use anyhow::{Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use steward_discovery::kubernetes::Progress;
use steward_discovery::naming::NameMode;
use steward_discovery::upload::{self, MergeMode};
use steward_discovery::{DiscoverOptions, Summary};

pub async fn discover(args: DiscoverArgs) -> Result<ExitCode> {
    let options = DiscoverOptions {
        config: args.config.clone(),
        upload_info: args.upload_info.clone(),
        kubeconfig: args.kubeconfig.clone(),
        contexts: args.contexts.clone(),
        from_snapshot: args.from_snapshot.clone(),
        snapshot_out: args.snapshot_out.clone(),
        out: args.out.clone(),
        name_mode: args.name_mode.as_deref().and_then(NameMode::parse),
        index_only: args.index_only,
        map_customization_rules: args.map_customization_rules.clone(),
        cache_dir: dirs::cache_dir(args.dirs.cache_dir.clone()),
    };
    let progress: Arc<dyn Progress> =
        if args.output == Output::Text && std::io::stderr().is_terminal() {
            Arc::new(Bars::default())
        } else {
            Arc::new(Lines)
        };
    let run = steward_discovery::discover(&options, progress).await?;
    let mut summary = run.summary;
    if args.upload {
        let out = summary
            .out
            .clone()
            .context("--upload needs a generated tree; drop --index-only")?;
        let url = args
            .url
            .clone()
            .or_else(|| run.info.papi_url.clone())
            .unwrap_or_else(|| "http://127.0.0.1:8080".to_string());
        let token = args.token.clone().or_else(|| run.info.token.clone());
        let merge = match args.merge_mode {
            MergeModeArg::KeepUploaded => MergeMode::KeepUploaded,
            MergeModeArg::KeepExisting => MergeMode::KeepExisting,
        };
        let tarball = upload::pack(&out)?;
        let answer = upload::upload(
            &url,
            token.as_deref(),
            &summary.workspace,
            &tarball,
            merge,
            args.prune_stale_slxs,
        )
        .await?;
        summary.upload = Some(answer);
    }
    match args.output {
        Output::Json => output::json(&summary),
        Output::Text => print_summary(&summary),
    }
    // A context that could not be indexed makes the workspace partial: say so in the exit
    // code, for scripts and cron jobs (the tree and the upload still happened).
    Ok(if summary.failed_contexts.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_summary(s: &Summary) {
    println!("Workspace {} from {}", s.workspace, s.source);
    if !s.contexts.is_empty() {
        println!("Contexts indexed: {}", s.contexts.join(", "));
    }
    if !s.failed_contexts.is_empty() {
        println!(
            "Contexts that could not be indexed: {}",
            s.failed_contexts.join(", ")
        );
    }
    let total: usize = s.resources.values().sum();
    println!("Resources: {total}");
    let rows: Vec<Vec<String>> = s
        .resources
        .iter()
        .map(|(t, n)| vec![format!("  {t}"), n.to_string()])
        .collect();
    if !rows.is_empty() {
        output::table(&["  type", "count"], &rows);
    }
    println!(
        "CodeCollections: {}, codebundles: {}; SLXs generated: {}, files: {}",
        s.collections, s.codebundles, s.slxs, s.files
    );
    if let Some(path) = &s.snapshot {
        println!("Snapshot written to {}", path.display());
    }
    if let Some(out) = &s.out {
        println!("Workspace tree: {}", out.display());
    }
    for w in &s.warnings {
        println!("warning: {w}");
    }
    if !s.skipped.is_empty() {
        println!("Skipped: {}", s.skipped.len());
        for item in s.skipped.iter().take(20) {
            println!("  {} ({}): {}", item.item, item.location, item.reason);
        }
        if s.skipped.len() > 20 {
            println!("  ... {} more", s.skipped.len() - 20);
        }
        if let Some(report) = &s.report {
            println!("Every skipped item, with its reason: {}", report.display());
        }
    }
    if let Some(answer) = &s.upload {
        let count = |k: &str| answer.get(k).and_then(|v| v.as_array()).map_or(0, Vec::len);
        println!(
            "Uploaded: {} added, {} updated, {} removed, {} kept",
            count("added"),
            count("updated"),
            count("removed"),
            count("kept")
        );
    }
    println!("Done in {:.1}s", s.elapsed_ms as f64 / 1000.0);
}

/// One bar per context on a terminal.
#[derive(Default)]
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Progress for Bars {
    fn context_started(&self, context: &str, steps: usize) {
        let bar = self.multi.add(ProgressBar::new(steps as u64));
        bar.set_style(
            ProgressStyle::with_template("{prefix:20!} [{bar:30}] {pos}/{len} kinds {wide_msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(context.to_string());
        self.bars
            .lock()
            .expect("poisoned")
            .insert(context.to_string(), bar);
    }

    fn listed(&self, context: &str, what: &str, count: usize) {
        if let Some(bar) = self.bars.lock().expect("poisoned").get(context) {
            bar.inc(1);
            bar.set_message(format!("{what}: {count}"));
        }
    }

    fn context_finished(&self, context: &str, error: Option<&str>) {
        let bar = self.bars.lock().expect("poisoned").remove(context);
        match (bar, error) {
            (Some(bar), None) => bar.finish_with_message("done"),
            (Some(bar), Some(e)) => bar.abandon_with_message(format!("failed: {e}")),
            (None, Some(e)) => {
                let _ = self.multi.println(format!("{context}: skipped: {e}"));
            }
            (None, None) => {}
        }
    }
}

/// Plain lines when stderr is not a terminal.
struct Lines;

impl Progress for Lines {
    fn context_started(&self, context: &str, steps: usize) {
        say!("{context}: listing {steps} kinds");
    }

    fn context_finished(&self, context: &str, error: Option<&str>) {
        match error {
            None => say!("{context}: indexed"),
            Some(e) => say!("{context}: skipped: {e}"),
        }
    }
}
