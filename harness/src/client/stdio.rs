//! stdio client: spawns the server command, writes newline-delimited JSON-RPC to its stdin and
//! reads its stdout line by line, with bounded lines, bounded waits and a kill on drop.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use super::{ClientLimits, is_response_to, parse_json};

/// Lines queued between the reader task and the connection (each at most `max_body` bytes).
const LINE_QUEUE: usize = 32;
/// Most lines (and bytes of line text) kept in `StdioConn::seen` and in one exchange's
/// `StdioResponse::lines`; past it, lines are read and dropped, so a child that floods stdout
/// cannot grow the harness's memory.
const MAX_KEPT_LINES: usize = 8192;
const MAX_KEPT_BYTES: usize = 8 * 1024 * 1024;
use crate::evidence::{Exchange, RequestRecord, ResponseRecord, excerpt, redact_text};
use crate::target::StdioTarget;

/// One line the child wrote to stdout.
#[derive(Debug, Clone)]
pub struct Line {
    pub text: String,
    /// The line parsed as JSON, if it is JSON.
    pub json: Option<Value>,
    /// The line was longer than the limit and was cut.
    pub truncated: bool,
}

/// Launches connections to a stdio target.
#[derive(Debug, Clone)]
pub struct StdioClient {
    target: StdioTarget,
    limits: ClientLimits,
}

impl StdioClient {
    pub fn new(target: StdioTarget, limits: ClientLimits) -> Self {
        Self { target, limits }
    }

    pub fn target(&self) -> &StdioTarget {
        &self.target
    }

    /// Starts a fresh child process.
    pub fn spawn(&self) -> Result<StdioConn, String> {
        let mut cmd = Command::new(&self.target.command);
        cmd.args(&self.target.args)
            .envs(self.target.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = &self.target.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().map_err(|e| format!("cannot start `{}`: {e}", self.target.command))?;
        let stdin = child.stdin.take().ok_or("child has no stdin")?;
        let stdout = child.stdout.take().ok_or("child has no stdout")?;
        let stderr = child.stderr.take().ok_or("child has no stderr")?;
        let (tx, rx) = mpsc::channel(LINE_QUEUE);
        let max_line = self.limits.max_body;
        let max_depth = self.limits.max_depth;
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut buf = Vec::new();
                // Bounded line read: take at most max_line bytes, then skip to the newline.
                let mut limited = (&mut reader).take(max_line as u64 + 1);
                match limited.read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let complete = buf.last() == Some(&b'\n');
                let truncated = buf.len() > max_line;
                // Skip the rest of an overlong line without keeping it (it may never end).
                if truncated && !complete && !skip_line(&mut reader).await {
                    let _ = tx.send(line_of(buf, max_line, max_depth, truncated)).await;
                    break;
                }
                if tx.send(line_of(buf, max_line, max_depth, truncated)).await.is_err() {
                    break;
                }
            }
        });
        let (err_tx, err_rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr);
            let mut kept = 0usize;
            let mut line = String::new();
            while let Ok(n) = reader.read_line(&mut line).await {
                if n == 0 {
                    break;
                }
                if kept < 64 * 1024 {
                    kept += line.len();
                    let _ = err_tx.try_send(std::mem::take(&mut line));
                }
                line.clear();
            }
        });
        Ok(StdioConn {
            child,
            stdin: Some(stdin),
            lines: rx,
            stderr: err_rx,
            command: self.target.command.clone(),
            timeout: self.limits.timeout,
            startup: self.target.startup_timeout.max(self.limits.timeout),
            seen: Vec::new(),
            seen_bytes: 0,
        })
    }
}

fn line_of(mut buf: Vec<u8>, max_line: usize, max_depth: usize, truncated: bool) -> Line {
    buf.truncate(max_line);
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    let json = if truncated { None } else { parse_json(&buf, max_depth) };
    Line { text: String::from_utf8_lossy(&buf).into_owned(), json, truncated }
}

/// Discards input up to and including the next newline, a buffer at a time. `false` at end of
/// output or on a read error.
async fn skip_line<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> bool {
    loop {
        let (consumed, found) = match reader.fill_buf().await {
            Ok([]) | Err(_) => return false,
            Ok(bytes) => match bytes.iter().position(|&b| b == b'\n') {
                Some(pos) => (pos + 1, true),
                None => (bytes.len(), false),
            },
        };
        reader.consume(consumed);
        if found {
            return true;
        }
    }
}

/// One running child.
#[derive(Debug)]
pub struct StdioConn {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Line>,
    stderr: mpsc::Receiver<String>,
    command: String,
    timeout: Duration,
    /// How long `initialize` may take (servers started through npx or uvx can be slow).
    startup: Duration,
    /// Every stdout line read so far, in order (at most the first [`MAX_KEPT_LINES`] lines and
    /// [`MAX_KEPT_BYTES`] of text).
    pub seen: Vec<Line>,
    seen_bytes: usize,
}

/// What a stdio request produced.
#[derive(Debug, Clone, Default)]
pub struct StdioResponse {
    pub exchange: Exchange,
    /// The response with the request's id, if it came in time.
    pub response: Option<Value>,
    /// Every line read while waiting (notifications, garbage, the response).
    pub lines: Vec<Line>,
    pub error: Option<String>,
}

impl StdioConn {
    /// Writes raw bytes (a newline is added if missing).
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin is closed")?;
        let mut data = bytes.to_vec();
        if data.last() != Some(&b'\n') {
            data.push(b'\n');
        }
        stdin.write_all(&data).await.map_err(|e| format!("write to child failed: {e}"))?;
        stdin.flush().await.map_err(|e| format!("flush to child failed: {e}"))
    }

    /// The next stdout line, or `None` at end of output or after `wait`.
    pub async fn next_line(&mut self, wait: Duration) -> Option<Line> {
        let line = tokio::time::timeout(wait, self.lines.recv()).await.ok().flatten()?;
        if self.seen.len() < MAX_KEPT_LINES && self.seen_bytes + line.text.len() <= MAX_KEPT_BYTES {
            self.seen_bytes += line.text.len();
            self.seen.push(line.clone());
        }
        Some(line)
    }

    /// Sends `bytes` and reads lines until a response with `id` arrives (or the timeout).
    pub async fn exchange(&mut self, label: &str, bytes: &[u8], id: Option<&Value>) -> StdioResponse {
        let started = Instant::now();
        let record = RequestRecord {
            method: "stdio".into(),
            target: self.command.clone(),
            headers: Vec::new(),
            body: excerpt(bytes).0,
        };
        let mut out = StdioResponse::default();
        if let Err(e) = self.write(bytes).await {
            out.error = Some(e);
        } else if let Some(id) = id {
            let deadline = started + self.timeout;
            let mut kept_bytes = 0usize;
            while let Some(line) = self.next_line(deadline.saturating_duration_since(Instant::now())).await {
                let done = line.json.as_ref().is_some_and(|v| is_response_to(v, id));
                if done {
                    out.response = line.json.clone();
                }
                if done || (out.lines.len() < MAX_KEPT_LINES && kept_bytes + line.text.len() <= MAX_KEPT_BYTES) {
                    kept_bytes += line.text.len();
                    out.lines.push(line);
                }
                if done {
                    break;
                }
            }
            if out.response.is_none() {
                out.error = Some(if self.has_exited() {
                    "the server process exited without answering".into()
                } else {
                    format!("no response within {} ms", self.timeout.as_millis())
                });
            }
        }
        let text: Vec<&str> = out.lines.iter().map(|l| l.text.as_str()).collect();
        out.exchange = Exchange {
            label: label.to_owned(),
            request: record,
            response: (!out.lines.is_empty()).then(|| {
                let (body, truncated) = excerpt(text.join("\n").as_bytes());
                ResponseRecord { status: 0, headers: Vec::new(), body, truncated }
            }),
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            error: out.error.as_deref().map(redact_text),
        };
        out
    }

    /// A request object with `id`.
    pub async fn request(&mut self, id: u64, method: &str, params: Value) -> StdioResponse {
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        self.exchange(method, body.to_string().as_bytes(), Some(&json!(id))).await
    }

    /// `initialize` then `notifications/initialized`.
    pub async fn initialize(&mut self, version: &str) -> StdioResponse {
        let body = super::http::initialize_body(0, version);
        let usual = std::mem::replace(&mut self.timeout, self.startup);
        let response = self.exchange("initialize", body.to_string().as_bytes(), Some(&json!(0))).await;
        self.timeout = usual;
        if response.response.as_ref().is_some_and(|r| r.get("result").is_some()) {
            let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
            let _ = self.write(note.to_string().as_bytes()).await;
        }
        response
    }

    /// Whether the child has exited.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// What the child wrote to stderr so far (bounded).
    pub fn stderr(&mut self) -> String {
        let mut text = String::new();
        while let Ok(line) = self.stderr.try_recv() {
            text.push_str(&line);
        }
        text
    }

    /// Closes stdin and waits (bounded) for the child to exit; kills it otherwise. Returns the
    /// exit code if it exited by itself.
    pub async fn close(mut self, wait: Duration) -> Option<i32> {
        drop(self.stdin.take());
        match tokio::time::timeout(wait, self.child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => {
                let _ = self.child.kill().await;
                None
            }
        }
    }
}
