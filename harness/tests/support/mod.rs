//! What the harness's command-line test binaries share: running the `mcproof` binary under a
//! watchdog that kills it (and its process group) after a hard time limit, or when it uses more
//! memory than allowed, and fails the test if it had to.

#![allow(dead_code, reason = "shared by several test binaries; each uses a subset")]

use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_mcproof");

/// What a finished run of the binary produced.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// Highest resident set size seen while it ran (VmHWM), in KiB.
    pub peak_rss_kb: u64,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }

    /// Ended by itself with `code`, and no panic.
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit {code}, got {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            tail(&self.stdout),
            self.stderr
        );
        self.no_panic();
        self
    }

    /// Ended by itself with `code`, no panic, and stderr mentioning each of `needles`
    /// (case-insensitive).
    pub fn expect_mentioning(&self, code: i32, needles: &[&str]) -> &Self {
        self.expect(code);
        for needle in needles {
            assert!(
                self.stderr.to_lowercase().contains(&needle.to_lowercase()),
                "stderr should mention `{needle}`:\n{}",
                self.stderr
            );
        }
        self
    }

    /// Exit 2 with something on stderr that mentions `needle` (case-insensitive).
    pub fn usage_error(&self, needle: &str) {
        self.expect_mentioning(2, &[needle]);
    }

    pub fn no_panic(&self) {
        assert!(!self.stderr.contains("panicked"), "the harness panicked:\n{}", self.stderr);
    }

    pub fn within(&self, limit: Duration) -> &Self {
        assert!(self.elapsed < limit, "took {:?}, expected under {limit:?}", self.elapsed);
        self
    }
}

/// The last 3000 characters of `s`.
pub fn tail(s: &str) -> &str {
    let start = s.char_indices().rev().nth(3000).map_or(0, |(i, _)| i);
    &s[start..]
}

/// When the watchdog kills a run.
#[derive(Debug, Clone, Copy)]
pub struct Watchdog {
    /// Still running after this long.
    pub time: Duration,
    /// Using more resident memory than this many KiB, if set.
    pub rss_kb: Option<u64>,
}

/// Runs the binary with `args`, killing it (and everything it started) after `limit`.
pub fn mcproof(args: &[&str], limit: Duration) -> Run {
    mcproof_watched(args, Watchdog { time: limit, rss_kb: None })
}

/// Runs the binary with `args`; kills it (and its process group) when `watchdog` says so, and
/// fails the test if it had to.
pub fn mcproof_watched(args: &[&str], watchdog: Watchdog) -> Run {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("MCPROOF_BEARER")
        .env_remove("MCPROOF_API_KEY")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn mcproof");
    let pid = child.id();
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut peak_rss_kb = 0;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        peak_rss_kb = peak_rss_kb.max(vm_hwm_kb(pid).unwrap_or(0));
        let why = if started.elapsed() > watchdog.time {
            Some(format!("still running after {:?}", watchdog.time))
        } else if let Some(rss_kb) = watchdog.rss_kb
            && peak_rss_kb > rss_kb
        {
            Some(format!("uses {peak_rss_kb} KiB of memory"))
        } else {
            None
        };
        if let Some(why) = why {
            kill_group(pid);
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
            panic!("watchdog: `mcproof {}` {why}; killed it\nstderr:\n{stderr}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    // Whatever the run left behind in its process group goes too (nothing should be there).
    kill_group(pid);
    let stdout = String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    Run { code: status.code(), stdout, stderr, elapsed, peak_rss_kb }
}

/// The peak resident set size of `pid` (VmHWM), in KiB.
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Kills the process group `pid` leads.
pub fn kill_group(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
