//! The `mcproof` command line: scan an MCP server, list and explain checks, write baselines.
//!
//! Exit codes: 0 nothing at or above `--fail-on` failed; 1 something did (or a baseline entry
//! went stale); 2 usage or configuration error; 3 the target is unreachable, not MCP, or stopped
//! answering during the scan.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use mcproof::baseline::Baseline;
use mcproof::check::{Level, Status};
use mcproof::checks::catalogue;
use mcproof::probe::{ConnectError, Probe, ScanOptions};
use mcproof::report::{Format, REPORT_SCHEMA, Report, Summary, ToolInfo, rfc3339};
use mcproof::runner::{CheckResult, Filter};
use mcproof::target::Target;

/// The baseline applied when scanning the embedded reference server.
const EMBEDDED_BASELINE: &str = include_str!("../baselines/embedded.toml");

/// Prove, with evidence, whether an MCP server is secure.
#[derive(Debug, Parser)]
#[command(name = "mcproof", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scan an MCP server (Streamable HTTP URL, or a stdio command after `--`). With no
    /// target, starts the embedded reference server on 127.0.0.1 and scans it.
    Scan(ScanArgs),
    /// Scan and write a baseline that accepts every current FAIL, WARN and ERROR.
    Baseline {
        #[command(flatten)]
        scan: ScanArgs,
        /// Where to write the baseline.
        #[arg(long, short, value_name = "FILE")]
        output: PathBuf,
        /// The reason recorded for every entry (edit each one afterwards).
        #[arg(long, default_value = "accepted when the baseline was created; review")]
        reason: String,
    },
    /// List the check catalogue.
    Checks {
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Explain one check: its rule, source, level and remediation.
    Explain {
        /// A check id, e.g. transport/origin-forbidden.
        id: String,
    },
    /// Fuzz a running MCP server over the wire (URL, stdio command after `--`, or the embedded
    /// reference server). Exit 0: no finding; 1: findings (reproducers in --out); 2: usage; 3:
    /// unreachable.
    Fuzz(mcproof::fuzz::cli::FuzzArgs),
    /// Re-run a fuzz reproducer. Exit 1: the failure reproduces; 0: it does not; 2: usage; 3:
    /// unreachable.
    Replay(mcproof::fuzz::cli::ReplayArgs),
    /// Run the embedded reference server (for tests of stdio targets).
    #[command(name = "__serve-reference", hide = true)]
    ServeReference {
        #[arg(long)]
        stdio: bool,
        #[arg(long = "fault")]
        faults: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ListFormat {
    Table,
    Json,
    Markdown,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum FailOn {
    Must,
    Should,
    BestPractice,
    Never,
}

#[derive(Debug, Args)]
struct ScanArgs {
    /// The MCP endpoint URL (http:// or https://). Omit it to scan the embedded reference
    /// server; give a command after `--` to scan a stdio server.
    target: Option<String>,
    /// The stdio server command and its arguments, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
    /// Extra HTTP header `Name: value`; repeatable.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Bearer token sent as `Authorization: Bearer …` (prefer the environment variable).
    #[arg(long, env = "MCPROOF_BEARER", hide_env_values = true, value_name = "TOKEN")]
    bearer: Option<String>,
    /// API key sent as `X-API-Key` (prefer the environment variable).
    #[arg(long, env = "MCPROOF_API_KEY", hide_env_values = true, value_name = "KEY")]
    api_key: Option<String>,
    /// PEM file with a client certificate and key (mutual TLS).
    #[arg(long, value_name = "FILE")]
    client_cert: Option<PathBuf>,
    /// PEM file with an extra CA certificate to trust.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Accept any TLS certificate (verification is on by default).
    #[arg(long)]
    insecure_tls: bool,
    /// Environment variable `NAME=VALUE` for a stdio server; repeatable.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// Working directory for a stdio server.
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// Seconds a stdio server may take to answer `initialize`.
    #[arg(long, default_value_t = 20, value_name = "SECS")]
    startup_timeout: u64,
    /// Seconds allowed for each exchange.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    timeout: u64,
    /// Seconds allowed for each check.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    check_timeout: u64,
    /// Checks run at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Run only this check (id or `area/*`); repeatable.
    #[arg(long = "check", value_name = "ID")]
    checks: Vec<String>,
    /// Skip this check (id or `area/*`); repeatable.
    #[arg(long = "skip", value_name = "ID")]
    skips: Vec<String>,
    /// Run only checks of this area; repeatable.
    #[arg(long = "area", value_name = "AREA")]
    areas: Vec<String>,
    /// Run only checks at or above this level (must, should, best-practice).
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    level: Option<Level>,
    /// Run passive checks only (no malformed or unusual requests).
    #[arg(long)]
    passive: bool,
    /// Also run destructive checks (bursts, tools with side effects).
    #[arg(long)]
    destructive: bool,
    /// Seed for generated probes (default: random; always recorded in the report).
    #[arg(long)]
    seed: Option<u64>,
    /// What goes to stdout.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Also write a report: FORMAT=PATH (e.g. sarif=out.sarif); repeatable.
    #[arg(long = "report", value_name = "FORMAT=PATH", value_parser = mcproof::report::parse_report_arg)]
    reports: Vec<(Format, PathBuf)>,
    /// Accepted findings (strict both ways: unlisted failures and stale entries both fail).
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Exit 1 when a check at or above this level fails.
    #[arg(long, value_enum, default_value = "must")]
    fail_on: FailOn,
    /// No colour (also off for NO_COLOR and when stdout is not a terminal).
    #[arg(long)]
    no_color: bool,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
}

fn parse_level(s: &str) -> Result<Level, String> {
    Level::parse(s).ok_or_else(|| format!("unknown level `{s}`: use must, should or best-practice"))
}

/// How a run ended, mapped to the documented exit codes.
enum Failure {
    Usage(anyhow::Error),
    Unreachable(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Usage(e)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcproof: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.command {
        Command::Scan(args) => runtime.block_on(scan(args, None)),
        Command::Baseline { scan: args, output, reason } => runtime.block_on(scan(args, Some((output, reason)))),
        Command::Checks { format } => list(format).map(|()| ExitCode::SUCCESS).map_err(Failure::Usage),
        Command::Explain { id } => explain(&id).map(|()| ExitCode::SUCCESS).map_err(Failure::Usage),
        Command::Fuzz(args) => {
            runtime.block_on(mcproof::fuzz::cli::fuzz(args)).map(ExitCode::from).map_err(fuzz_failure)
        }
        Command::Replay(args) => {
            runtime.block_on(mcproof::fuzz::cli::replay(args)).map(ExitCode::from).map_err(fuzz_failure)
        }
        Command::ServeReference { stdio: _, faults } => {
            runtime.block_on(mcproof::serve::serve_stdio(&faults)).map(|()| ExitCode::SUCCESS).map_err(Failure::Usage)
        }
    };
    match outcome {
        Ok(code) => code,
        Err(Failure::Usage(e)) => {
            eprintln!("mcproof: error: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Unreachable(e)) => {
            eprintln!("mcproof: error: {e:#}");
            ExitCode::from(3)
        }
    }
}

/// Maps the fuzz commands' errors to the documented exit codes.
fn fuzz_failure(e: mcproof::fuzz::cli::CliError) -> Failure {
    match e {
        mcproof::fuzz::cli::CliError::Usage(m) => Failure::Usage(anyhow!(m)),
        mcproof::fuzz::cli::CliError::Unreachable(m) => Failure::Unreachable(anyhow!(m)),
    }
}

/// The target named on the command line (one parser for `scan`, `baseline` and `fuzz`).
fn target_of(args: &ScanArgs) -> anyhow::Result<Option<Target>> {
    let conn = mcproof::target::ConnArgs {
        headers: args.headers.clone(),
        bearer: args.bearer.clone(),
        api_key: args.api_key.clone(),
        client_cert: args.client_cert.clone(),
        ca_cert: args.ca_cert.clone(),
        insecure_tls: args.insecure_tls,
        env: args.env.clone(),
        cwd: args.cwd.clone(),
        startup_timeout: args.startup_timeout,
        timeout: args.timeout,
    };
    Ok(Target::from_args(args.target.as_deref(), &args.command, &conn)?)
}

async fn scan(args: ScanArgs, write_baseline: Option<(PathBuf, String)>) -> Result<ExitCode, Failure> {
    let started = Instant::now();
    let started_at = rfc3339(SystemTime::now());
    let all = catalogue();
    let filter = Filter {
        only: args.checks.clone(),
        skip: args.skips.clone(),
        areas: args.areas.clone(),
        min_level: args.level,
    };
    let unknown = filter.unknown_patterns(&all);
    if !unknown.is_empty() {
        return Err(Failure::Usage(anyhow!("no check matches: {} (see `mcproof checks`)", unknown.join(", "))));
    }
    let explicit = target_of(&args)?;
    let baseline = match (&args.baseline, explicit.is_none()) {
        (Some(path), _) => Some(Baseline::load(path).with_context(|| format!("baseline {}", path.display()))?),
        (None, true) if write_baseline.is_none() => {
            Some(Baseline::parse(EMBEDDED_BASELINE).context("the embedded reference server's baseline")?)
        }
        (None, _) => None,
    };
    for (_, path) in &args.reports {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            return Err(Failure::Usage(anyhow!("report directory {} does not exist", dir.display())));
        }
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut options = ScanOptions {
        active: !args.passive,
        destructive: args.destructive,
        seed,
        check_timeout: Duration::from_secs(args.check_timeout.max(1)),
        concurrency: args.concurrency.clamp(1, 64),
        ..ScanOptions::default()
    };
    options.limits.timeout = Duration::from_secs(args.timeout.max(1));

    let (target, embedded) = match explicit {
        Some(target) => (target, None),
        None => {
            let embedded =
                mcproof::serve::start_embedded(&[]).await.context("cannot start the embedded reference server")?;
            (embedded.target(), Some(embedded))
        }
    };
    let show_progress = !args.quiet && std::io::stderr().is_terminal();
    if !args.quiet {
        eprintln!(
            "mcproof: scanning {}{}",
            target.describe(),
            if embedded.is_some() { " (embedded reference server)" } else { "" }
        );
    }
    let probe = Probe::connect(target, options).await.map_err(|e| match e {
        ConnectError::Config(_) => Failure::Usage(e.into()),
        other => Failure::Unreachable(other.into()),
    })?;
    let checks: Vec<_> = all.into_iter().filter(|c| filter.selects(c)).collect();
    let total = checks.len();
    let mut done = 0usize;
    let mut results = mcproof::runner::run(&probe, &checks, |r: &CheckResult| {
        done += 1;
        if show_progress {
            let width = 30;
            let filled = width * done / total.max(1);
            eprint!(
                "\r[{}{}] {done}/{total} {:<48}",
                "#".repeat(filled),
                " ".repeat(width - filled),
                truncate(&r.id, 48)
            );
            let _ = std::io::stderr().flush();
        }
    })
    .await;
    if show_progress {
        eprint!("\r{:<90}\r", "");
    }

    let stale = match baseline {
        Some(mut b) => {
            // Entries for checks this run did not select say nothing; typos (unknown ids) still count.
            let catalogue_ids: Vec<&str> = catalogue().iter().map(|c| c.info.id).collect();
            b.entries
                .retain(|e| checks.iter().any(|c| c.info.id == e.check) || !catalogue_ids.contains(&e.check.as_str()));
            b.apply(&mut results).stale
        }
        None => Vec::new(),
    };
    let (score, grade) = mcproof::grade::score(&results);
    let report = Report {
        schema: REPORT_SCHEMA.into(),
        tool: ToolInfo::default(),
        target: probe.target.describe(),
        transport: probe.target.transport(),
        negotiated_version: probe.version().to_owned(),
        server_info: probe.inventory.init_result.get("serverInfo").cloned().unwrap_or_default(),
        started_at,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        seed,
        summary: Summary::of(&results),
        score,
        grade,
        results,
    };
    let stopped = probe.stopped_answering();
    drop(embedded);

    if let Some((path, reason)) = write_baseline {
        let b = Baseline::from_results(&report.results, &reason);
        std::fs::write(&path, b.to_toml()).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("mcproof: wrote {} entries to {}", b.entries.len(), path.display());
        return Ok(ExitCode::SUCCESS);
    }
    mcproof::report::emit(&report, args.format, &args.reports, args.no_color).map_err(anyhow::Error::from)?;

    let gate: Vec<&CheckResult> = report
        .results
        .iter()
        .filter(|r| r.status == Status::Fail && r.accepted.is_none() && at_or_above(r.level, args.fail_on))
        .collect();
    for s in &stale {
        eprintln!("mcproof: stale baseline entry: {s}");
    }
    if !args.quiet {
        eprintln!(
            "mcproof: grade {:?} ({}), {} failing at or above --fail-on, {} stale baseline entries, {:.1} s",
            report.grade,
            report.score,
            gate.len(),
            stale.len(),
            started.elapsed().as_secs_f64()
        );
    }
    if let Some(why) = stopped {
        eprintln!("mcproof: error: the target stopped answering during the scan: {why}");
        return Ok(ExitCode::from(3));
    }
    Ok(if gate.is_empty() && stale.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn at_or_above(level: Level, fail_on: FailOn) -> bool {
    match fail_on {
        FailOn::Never => false,
        FailOn::Must => level >= Level::Must,
        FailOn::Should => level >= Level::Should,
        FailOn::BestPractice => true,
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn list(format: ListFormat) -> anyhow::Result<()> {
    let all = catalogue();
    let mut out = String::new();
    match format {
        ListFormat::Json => {
            let infos: Vec<_> = all.iter().map(|c| &c.info).collect();
            out = serde_json::to_string_pretty(&infos)?;
            out.push('\n');
        }
        ListFormat::Markdown => {
            out.push_str("| id | level | kind | weight | title | source |\n|---|---|---|---|---|---|\n");
            for c in &all {
                let i = &c.info;
                out.push_str(&format!(
                    "| `{}` | {} | {:?} | {} | {} | {} |\n",
                    i.id,
                    i.level,
                    i.kind,
                    i.weight,
                    i.title.replace('|', "\\|"),
                    i.source.replace('|', "\\|")
                ));
            }
        }
        ListFormat::Table => {
            let w = all.iter().map(|c| c.info.id.len()).max().unwrap_or(10);
            out.push_str(&format!("{:w$}  {:13}  {:11}  TITLE\n", "ID", "LEVEL", "KIND"));
            for c in &all {
                let i = &c.info;
                out.push_str(&format!(
                    "{:w$}  {:13}  {:11}  {}\n",
                    i.id,
                    i.level.as_str(),
                    format!("{:?}", i.kind).to_lowercase(),
                    i.title
                ));
            }
            out.push_str(&format!("\n{} checks\n", all.len()));
        }
    }
    print!("{out}");
    Ok(())
}

fn explain(id: &str) -> anyhow::Result<()> {
    let Some(check) = mcproof::checks::find(id) else {
        let near: Vec<_> = catalogue()
            .into_iter()
            .map(|c| c.info.id)
            .filter(|c| c.contains(id) || id.contains(c.split('/').next().unwrap_or("")))
            .take(5)
            .collect();
        if near.is_empty() {
            bail!("no check `{id}` (see `mcproof checks`)");
        }
        bail!("no check `{id}`; did you mean: {}", near.join(", "));
    };
    let i = &check.info;
    let transports: Vec<_> = i.transports.iter().map(|t| format!("{t:?}").to_lowercase()).collect();
    println!("{}  —  {}\n", i.id, i.title);
    println!(
        "level:       {}\nweight:      {}\nkind:        {:?}\nsource:      {}",
        i.level, i.weight, i.kind, i.source
    );
    println!("revisions:   {}\ntransports:  {}\n", i.revisions.join(", "), transports.join(", "));
    println!("what it checks:\n  {}\n\nhow to fix a failure:\n  {}", i.description, i.remediation);
    Ok(())
}
