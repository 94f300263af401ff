//! Reproducer files: a shrunk failing case as target-independent steps, with the oracle that
//! fired and the seed that found it. `mcproof replay FILE [TARGET]` runs the steps again.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::oracle::{Failure, Oracle};
use super::{Step, exec::Executor};
use crate::check::Transport;
use crate::evidence::Exchange;

/// The format tag of reproducer files; bumped on breaking changes.
pub const FORMAT: &str = "mcproof-fuzz-repro/1";

/// A saved failing case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reproducer {
    pub format: String,
    pub oracle: Oracle,
    /// What was seen when it was found (or last confirmed).
    pub detail: String,
    /// The run's seed and the case's index in it.
    pub seed: u64,
    pub case: u64,
    pub transport: Transport,
    /// The target it was found against (informative; replay takes a target).
    pub found_against: String,
    pub steps: Vec<Step>,
}

/// Why a reproducer could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ReproError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not a reproducer: {message}")]
    Parse { path: String, message: String },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

/// What a replay saw.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The recorded oracle fired again.
    pub reproduced: bool,
    /// The failure seen, whichever oracle it was.
    pub failure: Option<Failure>,
    pub exchanges: Vec<Exchange>,
}

impl Reproducer {
    pub fn new(
        failure: &Failure,
        seed: u64,
        case: u64,
        transport: Transport,
        found_against: &str,
        steps: Vec<Step>,
    ) -> Self {
        Self {
            format: FORMAT.into(),
            oracle: failure.oracle,
            detail: failure.detail.clone(),
            seed,
            case,
            transport,
            found_against: found_against.to_owned(),
            steps,
        }
    }

    /// The file name: oracle, seed and case, so names are stable for a seed.
    pub fn file_name(&self) -> String {
        format!("{}-{}-{}.json", self.oracle.id(), self.seed, self.case)
    }

    /// Writes the reproducer into `dir` (created if missing); returns the path.
    pub fn save(&self, dir: &Path) -> Result<PathBuf, ReproError> {
        let path = dir.join(self.file_name());
        let write = |e| ReproError::Write { path: path.display().to_string(), source: e };
        std::fs::create_dir_all(dir).map_err(write)?;
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        std::fs::write(&path, text + "\n")
            .map_err(|e| ReproError::Write { path: path.display().to_string(), source: e })?;
        Ok(path)
    }

    pub fn load(path: &Path) -> Result<Self, ReproError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ReproError::Read { path: shown.clone(), source })?;
        let r: Self = serde_json::from_str(&text)
            .map_err(|e| ReproError::Parse { path: shown.clone(), message: e.to_string() })?;
        if r.format != FORMAT {
            return Err(ReproError::Parse {
                path: shown,
                message: format!("format `{}`, expected `{FORMAT}`", r.format),
            });
        }
        if r.steps.is_empty() {
            return Err(ReproError::Parse { path: shown, message: "no steps".into() });
        }
        Ok(r)
    }

    /// Runs the steps once on a fresh connection.
    pub async fn replay(&self, exec: &mut Executor) -> Replay {
        let run = exec.run_case(&self.steps, true).await;
        Replay {
            reproduced: run.failure.as_ref().is_some_and(|f| f.oracle == self.oracle),
            failure: run.failure,
            exchanges: run.exchanges,
        }
    }
}
