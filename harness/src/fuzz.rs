//! Live fuzzing of a running MCP server over the wire (`mcproof fuzz`, `mcproof replay`).
//!
//! A run learns what the server offers (a short discovery whose traffic is also a mutation
//! corpus), then sends generated *cases* — short step sequences (open a session, send messages,
//! DELETE, reuse the old session) — and judges every answer with [`oracle`]s: HTTP 5xx, a crash,
//! a hang, a malformed JSON-RPC answer, a wrong or missing id, internals in the output. Each
//! distinct failure is shrunk ([`shrink`]) to a minimal reproducer ([`repro`]) that replays
//! without the seed. Everything derives from one seed ([`rng`]), printed and recorded, so a run
//! against the same server sends the same traffic.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::check::{Kind, Level, Status};
use crate::evidence::Exchange;
use crate::grade::score;
use crate::report::{REPORT_SCHEMA, Report, Summary, ToolInfo};
use crate::runner::CheckResult;
use crate::target::Target;

pub mod cli;
pub mod exec;
pub mod generate;
pub mod mutate;
pub mod oracle;
pub mod repro;
pub mod rng;
pub mod schema;
pub mod shrink;

pub use exec::{CaseRun, Executor, Inventory};
pub use oracle::{Failure, Oracle};
pub use repro::Reproducer;
pub use rng::Rng;

/// One step of a case. Steps name sessions by slot, never by id, so a case replays against any
/// target (the ids are the server's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// `initialize` then `notifications/initialized`; the session id goes into `slot`. On stdio
    /// this is an `initialize` on the running process.
    Init { slot: u8 },
    /// One message in the session of `slot` (`None`: no session header; ignored on stdio).
    Send {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slot: Option<u8>,
        body: Body,
    },
    /// `DELETE` of the session in `slot`; the slot keeps the old id, so later steps reuse it.
    /// Nothing on stdio.
    Delete { slot: u8 },
}

/// What a [`Step::Send`] puts on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Body {
    /// A JSON value, serialized compactly.
    Json(Value),
    /// Text sent as is (broken JSON, duplicate keys, trailing garbage…).
    Raw(String),
}

impl Body {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Body::Json(v) => v.to_string().into_bytes(),
            Body::Raw(s) => s.clone().into_bytes(),
        }
    }
}

/// Slots a case may use (sessions open at once).
pub const SLOTS: usize = 3;

/// Bounds and knobs of a run.
#[derive(Debug, Clone)]
pub struct FuzzOptions {
    pub seed: u64,
    /// Fuzzing stops once this much time has passed (shrinking then has its own bound).
    pub duration: Duration,
    /// Most wire messages (HTTP requests, stdio lines) while fuzzing, discovery included.
    pub max_requests: u64,
    /// Most wire messages spent on shrinking and confirming all findings together.
    pub shrink_requests: u64,
    /// Time allowed for one exchange; a request unanswered after it is a hang.
    pub timeout: Duration,
    /// Distinct findings shrunk and saved; later ones are counted only.
    pub max_findings: usize,
    /// Stop fuzzing after the first finding (it is still shrunk and saved).
    pub stop_on_finding: bool,
}

impl Default for FuzzOptions {
    fn default() -> Self {
        Self {
            seed: 0,
            duration: Duration::from_secs(60),
            max_requests: 5000,
            shrink_requests: 1000,
            timeout: Duration::from_secs(5),
            max_findings: 8,
            stop_on_finding: false,
        }
    }
}

/// A distinct failure, shrunk.
#[derive(Debug, Clone)]
pub struct Finding {
    pub reproducer: Reproducer,
    /// Where the reproducer was saved, if it was.
    pub path: Option<std::path::PathBuf>,
    /// The exchanges of the shrunk case's last run (the evidence).
    pub evidence: Vec<Exchange>,
    /// Times this finding's signature fired during the run.
    pub occurrences: u64,
    /// Steps before shrinking.
    pub original_steps: usize,
    /// Whether the shrunk case still failed on a fresh connection.
    pub confirmed: bool,
    /// Time from the start of the run to the first failure of this signature.
    pub found_after: Duration,
}

/// What a run did and found.
#[derive(Debug, Clone)]
pub struct FuzzOutcome {
    pub seed: u64,
    pub target: String,
    pub transport: crate::check::Transport,
    pub version: String,
    pub server_info: Value,
    /// Wire messages sent while fuzzing (discovery included) and while shrinking.
    pub requests: u64,
    pub shrink_requests: u64,
    pub cases: u64,
    pub elapsed: Duration,
    pub findings: Vec<Finding>,
    /// Failures beyond `max_findings` distinct ones.
    pub unsaved: u64,
    /// Why fuzzing stopped: "duration", "max-requests", "crash" or "finding".
    pub stopped_by: String,
}

/// Progress events for the command line.
#[derive(Debug, Clone)]
pub enum Progress {
    Tick { elapsed: Duration, requests: u64, cases: u64, findings: usize },
    Found { oracle: Oracle, detail: String },
    Shrunk { oracle: Oracle, from: usize, to: usize, requests: u64 },
}

/// Runs a fuzzing session against `target`. `on_progress` is called about every second and on
/// every finding. Fails only if discovery cannot reach an MCP server.
pub async fn run(
    target: &Target,
    options: &FuzzOptions,
    out_dir: Option<&std::path::Path>,
    mut on_progress: impl FnMut(&Progress),
) -> Result<FuzzOutcome, exec::ExecError> {
    let started = Instant::now();
    let mut executor = Executor::new(target, options.timeout)?;
    executor.set_budget(options.max_requests);
    let inventory = executor.discover().await?;
    let mut generator = generate::Generator::new(options.seed, &inventory, executor.is_stdio());
    let deadline = started + options.duration;
    let mut findings: Vec<Finding> = Vec::new();
    let mut signatures: Vec<String> = Vec::new();
    let mut unsaved = 0u64;
    let mut cases = 0u64;
    let mut last_tick = Instant::now();
    let mut shrink_sent = 0u64;
    let mut stopped_by = "duration";
    executor.set_deadline(Some(deadline));
    loop {
        if Instant::now() >= deadline {
            break;
        }
        if executor.exhausted() {
            stopped_by = "max-requests";
            break;
        }
        let (index, steps) = generator.next_case();
        let run = executor.run_case(&steps, false).await;
        cases += 1;
        if last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
            on_progress(&Progress::Tick {
                elapsed: started.elapsed(),
                requests: executor.sent(),
                cases,
                findings: findings.len(),
            });
        }
        let Some(failure) = run.failure else {
            if run.stopped && executor.exhausted() {
                stopped_by = "max-requests";
                break;
            }
            continue;
        };
        let signature = failure.signature.clone();
        if let Some(pos) = signatures.iter().position(|s| *s == signature) {
            findings[pos].occurrences += 1;
            if failure.oracle == Oracle::Crash {
                stopped_by = "crash";
                break;
            }
            continue;
        }
        let found_after = started.elapsed();
        on_progress(&Progress::Found { oracle: failure.oracle, detail: failure.detail.clone() });
        if findings.len() >= options.max_findings {
            unsaved += 1;
            continue;
        }
        // The case as it would run on a fresh connection (stdio cases ran on a warm process).
        let mut case = steps[..=failure.step.min(steps.len().saturating_sub(1))].to_vec();
        if executor.is_stdio() && !matches!(case.first(), Some(Step::Init { .. })) {
            case.insert(0, Step::Init { slot: 0 });
        }
        let original = case.len();
        let fuzz_budget = executor.remaining();
        let fuzz_deadline = executor.deadline();
        executor.set_deadline(None);
        let crashed_http = failure.oracle == Oracle::Crash && !executor.is_stdio();
        let (shrunk, evidence, confirmed, final_failure) = if crashed_http {
            // A crashed HTTP server cannot be asked again: the case is saved as it ran.
            (case, run.exchanges.clone(), true, failure.clone())
        } else {
            let share = options.shrink_requests.saturating_sub(shrink_sent) / 2;
            executor.set_budget(share.max(1));
            let sent_before = executor.sent();
            let result = shrink::shrink(&mut executor, case, &failure, options.timeout).await;
            shrink_sent += executor.sent() - sent_before;
            on_progress(&Progress::Shrunk {
                oracle: failure.oracle,
                from: original,
                to: result.steps.len(),
                requests: executor.sent() - sent_before,
            });
            (result.steps, result.evidence, result.confirmed, result.failure.unwrap_or_else(|| failure.clone()))
        };
        executor.set_budget(fuzz_budget);
        executor.set_deadline(fuzz_deadline);
        let reproducer =
            Reproducer::new(&final_failure, options.seed, index, executor.transport(), &executor.describe(), shrunk);
        let path = out_dir.and_then(|dir| reproducer.save(dir).ok());
        findings.push(Finding {
            reproducer,
            path,
            evidence,
            occurrences: 1,
            original_steps: original,
            confirmed,
            found_after,
        });
        signatures.push(signature);
        if options.stop_on_finding {
            stopped_by = "finding";
            break;
        }
        if failure.oracle == Oracle::Crash && !executor.is_stdio() {
            stopped_by = "crash";
            break;
        }
    }
    executor.close().await;
    Ok(FuzzOutcome {
        seed: options.seed,
        target: executor.describe(),
        transport: executor.transport(),
        version: inventory.version.clone(),
        server_info: inventory.server_info.clone(),
        requests: executor.sent() - shrink_sent,
        shrink_requests: shrink_sent,
        cases,
        elapsed: started.elapsed(),
        findings,
        unsaved,
        stopped_by: stopped_by.to_owned(),
    })
}

/// The report of a run, in the scan report's shape: one result per oracle (`fuzz/<oracle>`),
/// FAIL with the minimal reproducers' exchanges as evidence, PASS otherwise.
pub fn report(outcome: &FuzzOutcome, started_at: String) -> Report {
    let mut results = Vec::new();
    for oracle in Oracle::ALL {
        let found: Vec<&Finding> = outcome.findings.iter().filter(|f| f.reproducer.oracle == oracle).collect();
        let (status, message, evidence) = if found.is_empty() {
            (
                Status::Pass,
                format!(
                    "{} in {} requests ({} cases, seed {})",
                    oracle.absent(),
                    outcome.requests,
                    outcome.cases,
                    outcome.seed
                ),
                Vec::new(),
            )
        } else {
            let mut parts = Vec::new();
            let mut evidence = Vec::new();
            for f in &found {
                let at = f.path.as_ref().map_or_else(|| "not saved".to_owned(), |p| p.display().to_string());
                parts.push(format!(
                    "{} (seen {}×; reproducer of {} step(s), shrunk from {}{}: {at}; replay with `mcproof replay`)",
                    f.reproducer.detail,
                    f.occurrences,
                    f.reproducer.steps.len(),
                    f.original_steps,
                    if f.confirmed { "" } else { ", not reproduced on a fresh connection" }
                ));
                evidence.extend(f.evidence.iter().take(12).cloned());
            }
            (Status::Fail, parts.join("; "), evidence)
        };
        results.push(CheckResult {
            id: format!("fuzz/{}", oracle.id()),
            title: oracle.title().to_owned(),
            area: "fuzz".into(),
            level: oracle.level(),
            weight: 10,
            kind: Kind::Active,
            source: oracle.source().to_owned(),
            status,
            message,
            remediation: oracle.remediation().to_owned(),
            evidence,
            duration_ms: u64::try_from(outcome.elapsed.as_millis()).unwrap_or(u64::MAX),
            accepted: None,
        });
    }
    let (score, grade) = score(&results);
    Report {
        schema: REPORT_SCHEMA.into(),
        tool: ToolInfo::default(),
        target: outcome.target.clone(),
        transport: outcome.transport,
        negotiated_version: outcome.version.clone(),
        server_info: outcome.server_info.clone(),
        started_at,
        duration_ms: u64::try_from(outcome.elapsed.as_millis()).unwrap_or(u64::MAX),
        seed: outcome.seed,
        summary: Summary::of(&results),
        score,
        grade,
        results,
    }
}

/// Whether a level counts as failing the gate (every fuzz finding does).
pub fn is_finding(result: &CheckResult) -> bool {
    result.status == Status::Fail && result.level >= Level::BestPractice
}
