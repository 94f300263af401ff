//! A structured, tamper-evident audit log (JSON lines, SHA-256 hash chain).
//!
//! Each line is one JSON object, members in this order:
//!
//! ```text
//! {"seq":N,"ts":"2025-01-02T03:04:05.678Z","prev":"<64 hex>","event":{"kind":…},"hash":"<64 hex>"}
//! ```
//!
//! * `seq` counts lines from 1, with no gaps.
//! * `ts` is the wall-clock time, RFC 3339 UTC with milliseconds (informative, not ordered).
//! * `prev` is the previous line's `hash`; the first line's is 64 zeros ([`GENESIS`]).
//! * `hash` is the lowercase hex SHA-256 of the line's own bytes with the `hash` member cut
//!   out: exactly the text `{"seq":…,"ts":…,"prev":…,"event":{…}}` as written, i.e. the line
//!   up to (not including) `,"hash":"`, followed by `}`. Hashing the bytes as written (rather
//!   than a re-serialization) means no canonicalization rule can differ between writer and
//!   verifier.
//!
//! Editing any line breaks its `hash`; deleting, inserting or reordering lines breaks the next
//! line's `prev` (or the `seq` sequence). The chain is unkeyed, so it proves integrity only up
//! to the last hash an operator has kept elsewhere: someone able to rewrite the file can rewrite
//! every line after an edit, and dropping whole lines from the tail leaves a valid, shorter
//! chain. [`verify`] returns the last hash so it can be compared with an externally kept one
//! ([`AuditLog::last_hash`] gives the live value to export).
//!
//! Events hold identifiers and argument *names* only, never argument values, tokens or raw
//! session ids (sessions appear as [`crate::session::session_label`]). JSON string escaping
//! keeps attacker-chosen names from forging line breaks.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Longest line [`verify`] accepts: the file is untrusted and must not exhaust memory.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Bounds for [`arg_names`]: argument names are attacker-chosen too.
const MAX_ARG_NAMES: usize = 32;
const MAX_ARG_NAME_CHARS: usize = 64;

/// One auditable event. Only names and identifiers, never values or secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditEvent {
    ToolCall {
        /// Session label, not the raw id.
        session: Option<String>,
        principal: String,
        tool: String,
        arg_names: Vec<String>,
        /// `ok`, `tool_error`, `rejected`, `timeout` or `internal_error`.
        outcome: String,
        duration_ms: u64,
    },
    AuthDecision {
        principal: String,
        action: String,
        allowed: bool,
        reason: String,
    },
    RateLimited {
        layer: String,
        /// Already a label or a hash, never a raw session id or token.
        key: String,
        retry_after_secs: u64,
    },
    ValidationFailed {
        session: Option<String>,
        principal: String,
        tool: String,
        arg_names: Vec<String>,
        problems: usize,
    },
    SessionStarted {
        session: String,
        principal: String,
        protocol_version: String,
    },
    SessionEnded {
        session: String,
        reason: String,
    },
}

/// The top-level names of a tool's arguments, sorted and bounded (at most 32 names of at most
/// 64 characters; a final `+N more` entry counts the rest). Values are never read.
pub fn arg_names(args: Option<&serde_json::Value>) -> Vec<String> {
    let Some(serde_json::Value::Object(map)) = args else {
        return Vec::new();
    };
    let mut names: Vec<String> = map.keys().map(|k| k.chars().take(MAX_ARG_NAME_CHARS).collect()).collect();
    names.sort();
    if names.len() > MAX_ARG_NAMES {
        let extra = names.len() - MAX_ARG_NAMES;
        names.truncate(MAX_ARG_NAMES);
        names.push(format!("+{extra} more"));
    }
    names
}

/// The hashed part of a line, in its fixed member order.
#[derive(Serialize)]
struct LineBody<'a> {
    seq: u64,
    ts: &'a str,
    prev: &'a str,
    event: &'a AuditEvent,
}

/// What [`verify`] reads back; unknown or duplicate members make a line malformed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParsedBody {
    seq: u64,
    #[allow(dead_code)] // reason: required to be present and a string; not otherwise checked
    ts: String,
    prev: String,
    event: serde_json::Map<String, serde_json::Value>,
}

const HASH_MEMBER: &str = ",\"hash\":\"";

/// Serializes and seals one line: returns the line (without newline) and its hash.
fn seal(seq: u64, ts: &str, prev: &str, event: &AuditEvent) -> serde_json::Result<(String, String)> {
    let mut body = serde_json::to_string(&LineBody { seq, ts, prev, event })?;
    let hash = hex::encode(Sha256::digest(body.as_bytes()));
    // `body` is a JSON object, so it ends with `}`: reopen it to append the hash member.
    body.pop();
    body.push_str(HASH_MEMBER);
    body.push_str(&hash);
    body.push_str("\"}");
    Ok((body, hash))
}

enum Sink {
    File { file: File, path: PathBuf },
    Tracing,
    Memory(Vec<String>),
}

struct State {
    sink: Sink,
    /// `seq` of the last line written (0: none yet).
    seq: u64,
    /// Hash of the last line written ([`GENESIS`] when none).
    prev: String,
}

/// The audit log. Thread-safe: one mutex orders the chain, and a line is written and flushed
/// before the next begins.
pub struct AuditLog {
    state: Mutex<State>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        let sink = match &st.sink {
            Sink::File { path, .. } => format!("file {}", path.display()),
            Sink::Tracing => "tracing".into(),
            Sink::Memory(_) => "memory".into(),
        };
        f.debug_struct("AuditLog").field("sink", &sink).field("seq", &st.seq).finish()
    }
}

impl AuditLog {
    fn with_sink(sink: Sink, seq: u64, prev: String) -> Self {
        Self { state: Mutex::new(State { sink, seq, prev }) }
    }

    /// Appends to the file at `path` (created with mode 0600 on Unix). An existing file is
    /// verified first and the chain continues from its last line; a file that fails
    /// verification — including a last line torn by a crash — is refused, because appending
    /// would bury the evidence of tampering under a fresh, valid-looking tail. The operator
    /// moves it aside (keeping it as evidence) and restarts.
    ///
    /// Two processes must not append to the same file: nothing locks it.
    pub fn to_file(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let mut opts = OpenOptions::new();
        opts.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(path)?;
        let summary = verify(BufReader::new(&file)).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "audit log {} fails verification ({e}); refusing to append to a broken \
                     chain: move the file aside, keep it as evidence, and restart",
                    path.display()
                ),
            )
        })?;
        // A valid last line without its newline (verify accepts it): terminate it so the next
        // line starts on its own.
        if file.metadata()?.len() > 0 {
            file.seek(SeekFrom::End(-1))?;
            let mut last = [0u8; 1];
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        let sink = Sink::File { file, path: path.to_path_buf() };
        Ok(Self::with_sink(sink, summary.lines, summary.last_hash))
    }

    /// Events go only to `tracing` (`info`, target `audit`), as sealed lines: the chain is
    /// still computed, so a log pipeline that keeps every line can verify it.
    pub fn to_tracing() -> Self {
        Self::with_sink(Sink::Tracing, 0, GENESIS.to_string())
    }

    /// Lines kept in memory, for tests; read them with [`lines`](Self::lines).
    pub fn in_memory() -> Self {
        Self::with_sink(Sink::Memory(Vec::new()), 0, GENESIS.to_string())
    }

    /// The lines written so far by an [`in_memory`](Self::in_memory) log (empty otherwise).
    pub fn lines(&self) -> Vec<String> {
        match &self.state.lock().sink {
            Sink::Memory(lines) => lines.clone(),
            _ => Vec::new(),
        }
    }

    /// Hash of the last line written ([`GENESIS`] when none): export it elsewhere to make
    /// truncation of the file detectable.
    pub fn last_hash(&self) -> String {
        self.state.lock().prev.clone()
    }

    /// `seq` of the last line written (0 when none).
    pub fn last_seq(&self) -> u64 {
        self.state.lock().seq
    }

    /// Appends one event. Never panics: an IO error is logged and the chain does not advance,
    /// so a line that failed to be written leaves the next one pointing at the last good line
    /// (a partially written line shows up in [`verify`] at that line).
    pub fn record(&self, event: AuditEvent) {
        let mut st = self.state.lock();
        let seq = st.seq + 1;
        let ts = rfc3339_utc(SystemTime::now());
        let (line, hash) = match seal(seq, &ts, &st.prev, &event) {
            Ok(sealed) => sealed,
            Err(e) => {
                tracing::error!(target: "audit", error = %e, "could not serialize an audit event");
                return;
            }
        };
        let written = match &mut st.sink {
            Sink::File { file, path } => {
                tracing::debug!(target: "audit", seq, event = ?event, "audit event");
                let mut bytes = line.into_bytes();
                bytes.push(b'\n');
                match file.write_all(&bytes).and_then(|()| file.flush()) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::error!(
                            target: "audit", path = %path.display(), seq, error = %e,
                            "could not write to the audit log"
                        );
                        false
                    }
                }
            }
            Sink::Tracing => {
                tracing::info!(target: "audit", "{line}");
                true
            }
            Sink::Memory(lines) => {
                tracing::debug!(target: "audit", seq, event = ?event, "audit event");
                lines.push(line);
                true
            }
        };
        if written {
            st.seq = seq;
            st.prev = hash;
        }
    }
}

/// A chain that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySummary {
    pub lines: u64,
    /// Hash of the last line ([`GENESIS`] for an empty log). Compare it with an externally
    /// kept value: only that detects lines dropped from the tail.
    pub last_hash: String,
}

/// Where and why a chain failed to verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct VerifyError {
    /// 1-based line number.
    pub line: u64,
    pub kind: VerifyErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyErrorKind {
    #[error("read error: {0}")]
    Io(String),
    #[error("line longer than {MAX_LINE_BYTES} bytes")]
    TooLong,
    #[error("malformed line: {0}")]
    Malformed(String),
    #[error("hash does not match the line's content (the line was edited)")]
    HashMismatch,
    #[error("prev does not match the previous line's hash (lines deleted, inserted or reordered)")]
    PrevMismatch,
    #[error("seq gap: expected {expected}, found {found}")]
    SeqGap { expected: u64, found: u64 },
}

/// Recomputes the chain of an audit log read from `reader` (untrusted input: every line is
/// checked, bounded in length, and nothing panics). Checks per line, in order: well-formed,
/// `hash` matches the content, `prev` matches the previous line's hash, `seq` is the line
/// number. A final line without a trailing newline is accepted.
///
/// Truncation of the tail (whole lines removed) yields a valid shorter chain: it is only
/// detectable by comparing [`VerifySummary::last_hash`] with a hash kept elsewhere.
pub fn verify(mut reader: impl BufRead) -> Result<VerifySummary, VerifyError> {
    let mut prev = GENESIS.to_string();
    let mut line_no = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = Read::take(&mut reader, MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| VerifyError { line: line_no + 1, kind: VerifyErrorKind::Io(e.to_string()) })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let fail = |kind| VerifyError { line: line_no, kind };
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if buf.len() > MAX_LINE_BYTES {
            return Err(fail(VerifyErrorKind::TooLong));
        }
        let (body, hash, parsed) = parse_line(&buf).map_err(|m| fail(VerifyErrorKind::Malformed(m)))?;
        if hex::encode(Sha256::digest(body.as_bytes())) != hash {
            return Err(fail(VerifyErrorKind::HashMismatch));
        }
        if parsed.prev != prev {
            return Err(fail(VerifyErrorKind::PrevMismatch));
        }
        if parsed.seq != line_no {
            return Err(fail(VerifyErrorKind::SeqGap { expected: line_no, found: parsed.seq }));
        }
        prev = hash.to_string();
    }
    Ok(VerifySummary { lines: line_no, last_hash: prev })
}

/// Splits a line into the hashed body, the claimed hash and the parsed members.
fn parse_line(bytes: &[u8]) -> Result<(String, &str, ParsedBody), String> {
    let line = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    let missing = || "no trailing \"hash\" member".to_string();
    let rest = line.strip_suffix("\"}").ok_or_else(missing)?;
    let split = rest.len().checked_sub(64).ok_or_else(missing)?;
    let (head, hash) = (rest.get(..split).ok_or_else(missing)?, rest.get(split..).ok_or_else(missing)?);
    if !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("hash is not 64 lowercase hex digits".into());
    }
    let head = head.strip_suffix(HASH_MEMBER).ok_or_else(missing)?;
    let body = format!("{head}}}");
    let parsed: ParsedBody = serde_json::from_str(&body).map_err(|e| format!("invalid JSON: {e}"))?;
    if !parsed.prev.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) || parsed.prev.len() != 64 {
        return Err("prev is not 64 lowercase hex digits".into());
    }
    if !matches!(parsed.event.get("kind"), Some(serde_json::Value::String(_))) {
        return Err("event has no string \"kind\"".into());
    }
    Ok((body, hash, parsed))
}

/// RFC 3339 UTC with milliseconds, e.g. `2025-01-02T03:04:05.678Z`. Times before 1970 (a
/// badly set clock) print as the epoch.
fn rfc3339_utc(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = civil_from_days(secs / 86_400);
    let s = secs % 86_400;
    format!("{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z", s / 3_600, s % 3_600 / 60, s % 60, d.subsec_millis())
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sample(i: usize) -> AuditEvent {
        match i % 6 {
            0 => AuditEvent::SessionStarted {
                session: format!("label{i}"),
                principal: "alice".into(),
                protocol_version: "2025-11-25".into(),
            },
            1 => AuditEvent::ToolCall {
                session: Some(format!("label{i}")),
                principal: "alice".into(),
                tool: "echo".into(),
                arg_names: vec!["text".into()],
                outcome: "ok".into(),
                duration_ms: i as u64,
            },
            2 => AuditEvent::AuthDecision {
                principal: "alice".into(),
                action: "tools/call admin_reset".into(),
                allowed: false,
                reason: "insufficient_scope".into(),
            },
            3 => AuditEvent::RateLimited { layer: "tool".into(), key: "alice".into(), retry_after_secs: 2 },
            4 => AuditEvent::ValidationFailed {
                session: None,
                principal: "alice".into(),
                tool: "read_file".into(),
                arg_names: vec!["path".into()],
                problems: 1,
            },
            _ => AuditEvent::SessionEnded { session: format!("label{i}"), reason: "deleted".into() },
        }
    }

    fn ten() -> (AuditLog, Vec<String>) {
        let log = AuditLog::in_memory();
        for i in 0..10 {
            log.record(sample(i));
        }
        let lines = log.lines();
        (log, lines)
    }

    fn check(lines: &[String]) -> Result<VerifySummary, VerifyError> {
        verify(lines.join("\n").as_bytes())
    }

    fn err(lines: &[String]) -> VerifyError {
        check(lines).expect_err("tampering must be detected")
    }

    #[test]
    fn intact_log_verifies() {
        let (log, lines) = ten();
        assert_eq!(lines.len(), 10);
        let s = check(&lines).expect("intact");
        assert_eq!(s, VerifySummary { lines: 10, last_hash: log.last_hash() });
        assert_eq!(log.last_seq(), 10);
        // With a trailing newline too, and an empty log.
        assert_eq!(verify(format!("{}\n", lines.join("\n")).as_bytes()), Ok(s));
        assert_eq!(verify(&b""[..]), Ok(VerifySummary { lines: 0, last_hash: GENESIS.into() }));
    }

    #[test]
    fn line_layout_is_as_documented() {
        let (_, lines) = ten();
        let v: serde_json::Value = serde_json::from_str(&lines[1]).expect("a line is JSON");
        assert_eq!(v["seq"], 2);
        assert_eq!(v["event"]["kind"], "tool_call");
        assert!(lines[1].starts_with("{\"seq\":2,\"ts\":\""));
        let first: serde_json::Value = serde_json::from_str(&lines[0]).expect("JSON");
        assert_eq!(first["prev"], GENESIS);
        assert_eq!(v["prev"], first["hash"]);
        // The hash covers the line with the hash member cut out.
        let hash = v["hash"].as_str().expect("hash");
        let cut = lines[1].replace(&format!(",\"hash\":\"{hash}\""), "");
        assert_eq!(hex::encode(Sha256::digest(cut.as_bytes())), hash);
    }

    #[test]
    fn edited_line_is_a_hash_mismatch() {
        let (_, mut lines) = ten();
        // Line 4 is the rate-limit event: lower the recorded wait.
        assert!(lines[3].contains("\"retry_after_secs\":2"));
        lines[3] = lines[3].replace("\"retry_after_secs\":2", "\"retry_after_secs\":0");
        assert_eq!(err(&lines), VerifyError { line: 4, kind: VerifyErrorKind::HashMismatch });
    }

    #[test]
    fn deleted_line_is_a_prev_mismatch() {
        let (_, mut lines) = ten();
        lines.remove(4);
        assert_eq!(err(&lines), VerifyError { line: 5, kind: VerifyErrorKind::PrevMismatch });
    }

    #[test]
    fn swapped_lines_are_a_prev_mismatch() {
        let (_, mut lines) = ten();
        lines.swap(2, 5);
        assert_eq!(err(&lines), VerifyError { line: 3, kind: VerifyErrorKind::PrevMismatch });
    }

    #[test]
    fn inserted_lines_are_detected() {
        let (_, lines) = ten();
        // A naive forgery: an edited copy of another line.
        let mut naive = lines.clone();
        naive.insert(5, lines[3].replace("alice", "mallory"));
        assert_eq!(err(&naive), VerifyError { line: 6, kind: VerifyErrorKind::HashMismatch });

        // A well-formed forgery chained onto line 5 breaks the link to the original line 6.
        let prev5 = hash_of(&lines[4]);
        let forged_event = AuditEvent::SessionEnded { session: "x".into(), reason: "forged".into() };
        let (forged, _) = seal(6, "2025-01-01T00:00:00.000Z", &prev5, &forged_event).expect("seal");
        let mut well = lines.clone();
        well.insert(5, forged);
        assert_eq!(err(&well), VerifyError { line: 7, kind: VerifyErrorKind::PrevMismatch });
    }

    #[test]
    fn rechained_line_with_wrong_seq_is_a_seq_gap() {
        let (_, mut lines) = ten();
        let (line, _) = seal(7, "2025-01-01T00:00:00.000Z", &hash_of(&lines[3]), &sample(4)).expect("seal");
        lines[4] = line;
        assert_eq!(err(&lines), VerifyError { line: 5, kind: VerifyErrorKind::SeqGap { expected: 5, found: 7 } });
    }

    #[test]
    fn truncated_lines_are_detected_and_tail_truncation_needs_the_anchor() {
        let (log, lines) = ten();
        let mut cut = lines.clone();
        let half = cut[6].len() / 2;
        cut[6].truncate(half);
        assert_eq!(err(&cut).line, 7);
        assert!(matches!(err(&cut).kind, VerifyErrorKind::Malformed(_)));

        let mut cut_last = lines.clone();
        let short = cut_last[9].len() - 3;
        cut_last[9].truncate(short);
        assert_eq!(err(&cut_last).line, 10);

        // Whole lines dropped from the tail: a valid chain, but not the exported last hash.
        let s = check(&lines[..8]).expect("a prefix is a valid chain");
        assert_eq!(s.lines, 8);
        assert_ne!(s.last_hash, log.last_hash());
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for input in [
            &b"\xff\xfe\n"[..],
            b"{}\n",
            b"\"}\n",
            b"not json at all\n",
            b"\n",
            "{\"seq\":1,\"ts\":\"x\",\"prev\":\"é\",\"event\":{},\"hash\":\"\u{e9}\u{e9}\"}".as_bytes(),
        ] {
            let e = verify(input).expect_err("garbage");
            assert_eq!(e.line, 1);
            assert!(matches!(e.kind, VerifyErrorKind::Malformed(_)), "{input:?}: {e}");
        }
        let long = vec![b'a'; MAX_LINE_BYTES + 10];
        assert_eq!(verify(&long[..]).map_err(|e| e.kind), Err(VerifyErrorKind::TooLong));
    }

    #[test]
    fn argument_values_never_reach_the_log() {
        let args = serde_json::json!({
            "path": "/etc/passwd",
            "password": "hunter2-SECRET-value",
            "api_key": "sk-live-0123456789abcdef",
        });
        let log = AuditLog::in_memory();
        log.record(AuditEvent::ToolCall {
            session: Some(crate::session::session_label("raw-session-id-0123")),
            principal: "alice".into(),
            tool: "read_file".into(),
            arg_names: arg_names(Some(&args)),
            outcome: "ok".into(),
            duration_ms: 3,
        });
        let line = &log.lines()[0];
        assert!(line.contains("\"arg_names\":[\"api_key\",\"password\",\"path\"]"), "{line}");
        for secret in ["hunter2", "sk-live", "/etc/passwd", "raw-session-id"] {
            assert!(!line.contains(secret), "{secret} leaked: {line}");
        }
    }

    #[test]
    fn arg_names_are_bounded() {
        let mut map = serde_json::Map::new();
        for i in 0..40 {
            map.insert(format!("{i:02}{}", "n".repeat(100)), serde_json::Value::Null);
        }
        let names = arg_names(Some(&serde_json::Value::Object(map)));
        assert_eq!(names.len(), MAX_ARG_NAMES + 1);
        assert_eq!(names[MAX_ARG_NAMES], "+8 more");
        assert!(names.iter().all(|n| n.chars().count() <= MAX_ARG_NAME_CHARS));
        assert!(arg_names(Some(&serde_json::json!([1, 2]))).is_empty());
        assert!(arg_names(None).is_empty());
    }

    #[test]
    fn restarted_file_log_continues_the_chain() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let first = AuditLog::to_file(&path).expect("create");
        for i in 0..4 {
            first.record(sample(i));
        }
        drop(first);
        let second = AuditLog::to_file(&path).expect("reopen a valid log");
        assert_eq!(second.last_seq(), 4);
        for i in 4..10 {
            second.record(sample(i));
        }
        let file = File::open(&path).expect("open");
        let s = verify(BufReader::new(file)).expect("whole file verifies");
        assert_eq!(s, VerifySummary { lines: 10, last_hash: second.last_hash() });

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o077, 0, "audit log readable by others: {mode:o}");
        }
    }

    #[test]
    fn restart_accepts_a_missing_final_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let (_, lines) = ten();
        std::fs::write(&path, lines.join("\n")).expect("write");
        let log = AuditLog::to_file(&path).expect("valid");
        log.record(sample(10));
        let s = verify(BufReader::new(File::open(&path).expect("open"))).expect("verifies");
        assert_eq!(s.lines, 11);
    }

    #[test]
    fn restart_refuses_a_tampered_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let (_, mut lines) = ten();
        lines.remove(2);
        std::fs::write(&path, lines.join("\n") + "\n").expect("write");
        let e = AuditLog::to_file(&path).expect_err("broken chain");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("line 3"), "{e}");
    }

    #[test]
    fn tracing_sink_keeps_no_lines_and_still_chains() {
        let log = AuditLog::to_tracing();
        log.record(sample(0));
        log.record(sample(1));
        assert!(log.lines().is_empty());
        assert_eq!(log.last_seq(), 2);
        assert_ne!(log.last_hash(), GENESIS);
    }

    #[test]
    fn concurrent_records_form_one_chain() {
        let log = std::sync::Arc::new(AuditLog::in_memory());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        log.record(sample(t * 25 + i));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(check(&log.lines()).map(|s| s.lines), Ok(100));
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = |s: u64, ms: u64| UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms);
        assert_eq!(rfc3339_utc(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc(at(951_782_400, 5)), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339_utc(at(1_700_000_000, 123)), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339_utc(at(4_107_542_399, 999)), "2100-02-28T23:59:59.999Z");
        assert_eq!(rfc3339_utc(at(4_107_542_400, 0)), "2100-03-01T00:00:00.000Z");
    }

    fn hash_of(line: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
        v["hash"].as_str().expect("hash").to_string()
    }
}
