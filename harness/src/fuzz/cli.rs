//! The `mcproof fuzz` and `mcproof replay` commands (argument parsing lives here so that the
//! binary only dispatches).
//!
//! `mcproof fuzz` exits 0 with no finding, 1 with findings, 2 on a usage error, 3 when the
//! target is unreachable or not MCP. `mcproof replay FILE [TARGET]` exits 1 when the recorded
//! failure reproduces, 0 when it does not, 2 on a usage error, 3 when the target is unreachable.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use super::exec::{ExecError, Executor};
use super::{FuzzOptions, Progress, Reproducer};
use crate::report::{Format, rfc3339};
use crate::target::{ConnArgs, Target, TargetArgError};

/// How a command failed, mapped by the binary to exit codes 2 and 3.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Unreachable(String),
}

impl From<TargetArgError> for CliError {
    fn from(e: TargetArgError) -> Self {
        CliError::Usage(e.to_string())
    }
}

impl From<ExecError> for CliError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Config(_) => CliError::Usage(e.to_string()),
            _ => CliError::Unreachable(e.to_string()),
        }
    }
}

/// `mcproof fuzz`.
#[derive(Debug, clap::Args)]
pub struct FuzzArgs {
    /// The MCP endpoint URL. Omit it to fuzz the embedded reference server; give a command
    /// after `--` to fuzz a stdio server.
    pub target: Option<String>,
    /// The stdio server command and its arguments, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Seed of the run (default: random; always printed and recorded).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seconds of fuzzing (shrinking comes after, within --shrink-requests).
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub duration: u64,
    /// Most messages sent while fuzzing (HTTP requests or stdio lines, discovery included).
    #[arg(long, default_value_t = 5000, value_name = "N")]
    pub max_requests: u64,
    /// Most messages spent shrinking and confirming findings, all findings together.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub shrink_requests: u64,
    /// Stop at the first finding (it is still shrunk and saved).
    #[arg(long)]
    pub stop_on_finding: bool,
    /// Where reproducers and `summary.json` are written.
    #[arg(long, default_value = "mcproof-fuzz", value_name = "DIR")]
    pub out: PathBuf,
    /// What goes to stdout.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Also write a report: FORMAT=PATH (e.g. sarif=fuzz.sarif); repeatable.
    #[arg(long = "report", value_name = "FORMAT=PATH", value_parser = crate::report::parse_report_arg)]
    pub reports: Vec<(Format, PathBuf)>,
    /// No colour.
    #[arg(long)]
    pub no_color: bool,
    /// No progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Fault switches of the embedded reference server (test builds only).
    #[arg(long = "fault", hide = true)]
    pub faults: Vec<String>,
}

/// `mcproof replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// A reproducer written by `mcproof fuzz`.
    pub file: PathBuf,
    /// The MCP endpoint URL (default: the URL the reproducer was found against); give a
    /// command after `--` for a stdio server.
    pub target: Option<String>,
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// No exchange listing on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `mcproof fuzz`; returns the exit code (0 or 1).
pub async fn fuzz(args: FuzzArgs) -> Result<u8, CliError> {
    let explicit = Target::from_args(args.target.as_deref(), &args.command, &args.conn)?;
    for (_, path) in &args.reports {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            return Err(CliError::Usage(format!("report directory {} does not exist", dir.display())));
        }
    }
    let (target, embedded) = match explicit {
        Some(target) => (target, None),
        None => {
            let embedded = crate::serve::start_embedded(&args.faults)
                .await
                .map_err(|e| CliError::Usage(format!("cannot start the embedded reference server: {e:#}")))?;
            (embedded.target(), Some(embedded))
        }
    };
    let options = FuzzOptions {
        seed: args.seed.unwrap_or_else(rand::random),
        duration: Duration::from_secs(args.duration.max(1)),
        max_requests: args.max_requests.max(1),
        shrink_requests: args.shrink_requests,
        timeout: Duration::from_secs(args.conn.timeout.max(1)),
        stop_on_finding: args.stop_on_finding,
        ..FuzzOptions::default()
    };
    let started_at = rfc3339(SystemTime::now());
    // The seed goes out even with --quiet: it is what makes the run repeatable.
    eprintln!(
        "mcproof: fuzzing {}{} with seed {} for up to {} s and {} requests",
        target.describe(),
        if embedded.is_some() { " (embedded reference server)" } else { "" },
        options.seed,
        options.duration.as_secs(),
        options.max_requests
    );
    let tty = std::io::stderr().is_terminal();
    let quiet = args.quiet;
    let mut last_line = Instant::now();
    let outcome = super::run(&target, &options, Some(&args.out), |p| {
        if quiet {
            return;
        }
        match p {
            Progress::Tick { elapsed, requests, cases, findings } => {
                let line = format!(
                    "[fuzz] {:>5.1} s  {requests} requests  {cases} cases  {findings} findings",
                    elapsed.as_secs_f64()
                );
                if tty {
                    eprint!("\r{line:<78}");
                    let _ = std::io::stderr().flush();
                } else if last_line.elapsed() >= Duration::from_secs(10) {
                    last_line = Instant::now();
                    eprintln!("{line}");
                }
            }
            Progress::Found { oracle, detail } => {
                if tty {
                    eprint!("\r{:<78}\r", "");
                }
                eprintln!("mcproof: found {}: {detail}", oracle.id());
            }
            Progress::Shrunk { oracle, from, to, requests } => {
                eprintln!(
                    "mcproof: shrunk the {} case from {from} to {to} step(s) in {requests} requests",
                    oracle.id()
                );
            }
        }
    })
    .await?;
    drop(embedded);
    if tty && !quiet {
        eprint!("\r{:<78}\r", "");
    }
    let report = super::report(&outcome, started_at);
    let summary = json!({
        "seed": outcome.seed,
        "target": outcome.target,
        "requests": outcome.requests,
        "shrink_requests": outcome.shrink_requests,
        "cases": outcome.cases,
        "elapsed_ms": u64::try_from(outcome.elapsed.as_millis()).unwrap_or(u64::MAX),
        "stopped_by": outcome.stopped_by,
        "unsaved_findings": outcome.unsaved,
        "findings": outcome.findings.iter().map(|f| json!({
            "oracle": f.reproducer.oracle.id(),
            "detail": f.reproducer.detail,
            "reproducer": f.path.as_ref().map(|p| p.display().to_string()),
            "steps": f.reproducer.steps.len(),
            "original_steps": f.original_steps,
            "occurrences": f.occurrences,
            "confirmed": f.confirmed,
            "found_after_ms": u64::try_from(f.found_after.as_millis()).unwrap_or(u64::MAX),
        })).collect::<Vec<_>>(),
    });
    std::fs::create_dir_all(&args.out)
        .and_then(|()| std::fs::write(args.out.join("summary.json"), format!("{summary:#}\n")))
        .map_err(|e| CliError::Usage(format!("cannot write {}: {e}", args.out.join("summary.json").display())))?;
    crate::report::emit(&report, args.format, &args.reports, args.no_color)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    eprintln!(
        "mcproof: fuzzed for {:.1} s: {} requests in {} cases (+{} shrinking), {} finding(s), seed {}, stopped by {}",
        outcome.elapsed.as_secs_f64(),
        outcome.requests,
        outcome.cases,
        outcome.shrink_requests,
        outcome.findings.len() as u64 + outcome.unsaved,
        outcome.seed,
        outcome.stopped_by
    );
    Ok(if outcome.findings.is_empty() && outcome.unsaved == 0 { 0 } else { 1 })
}

/// Runs `mcproof replay`; returns 1 if the failure reproduces, 0 if not.
pub async fn replay(args: ReplayArgs) -> Result<u8, CliError> {
    let reproducer = Reproducer::load(&args.file).map_err(|e| CliError::Usage(e.to_string()))?;
    let target = match Target::from_args(args.target.as_deref(), &args.command, &args.conn)? {
        Some(t) => t,
        None => {
            let recorded = reproducer.found_against.clone();
            match reproducer.transport {
                crate::check::Transport::Http => Target::from_args(Some(&recorded), &[], &args.conn)?,
                crate::check::Transport::Stdio => {
                    let words: Vec<String> = recorded.split_whitespace().map(str::to_owned).collect();
                    Target::from_args(None, &words, &args.conn)?
                }
            }
            .ok_or_else(|| CliError::Usage("the reproducer names no target; give one".into()))?
        }
    };
    let mut exec = Executor::new(&target, Duration::from_secs(args.conn.timeout.max(1)))?;
    exec.preflight().await?;
    let replay = reproducer.replay(&mut exec).await;
    exec.close().await;
    if !args.quiet {
        for e in &replay.exchanges {
            let status = e.response.as_ref().map_or_else(
                || e.error.clone().unwrap_or_else(|| "no response".into()),
                |r| if r.status == 0 { "answered".to_owned() } else { format!("HTTP {}", r.status) },
            );
            eprintln!("  {} -> {status}", e.label);
        }
    }
    match (&replay.failure, replay.reproduced) {
        (Some(f), true) => {
            println!("reproduced: {} — {}", f.oracle.id(), f.detail);
            Ok(1)
        }
        (Some(f), false) => {
            println!(
                "not reproduced: expected {}, saw a different failure: {} — {}",
                reproducer.oracle.id(),
                f.oracle.id(),
                f.detail
            );
            Ok(0)
        }
        (None, _) => {
            println!("not reproduced: {} did not fire", reproducer.oracle.id());
            Ok(0)
        }
    }
}
