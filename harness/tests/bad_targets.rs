//! The harness against hostile or broken targets. Every run must end by itself well within its
//! watchdog, never panic, keep its memory bounded, and exit with the documented code (3: the
//! target is unreachable or does not speak MCP) and a clear message.
//!
//! The hostile HTTP servers are raw TCP listeners on 127.0.0.1 written here, so they can do
//! what no well-behaved framework would: stream forever, lie about lengths, send invalid UTF-8.

mod support;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use serde_json::{Value, json};
use support::{BIN, Run, Watchdog};

/// The watchdog kills a run that uses more memory than this (the harness reads at most 1 MiB
/// per response and queues a few such lines; a debug build idles at about 20 MiB).
const RSS_LIMIT_KB: u64 = 200 * 1024;

/// Runs the binary with `args`; kills it (and its process group) after `limit` or when it
/// uses more than [`RSS_LIMIT_KB`], and fails the test if it had to.
fn mcproof(args: &[&str], limit: Duration) -> Run {
    support::mcproof_watched(args, Watchdog { time: limit, rss_kb: Some(RSS_LIMIT_KB) })
}

/// Processes whose command line is exactly `argv`.
fn processes_running(argv: &[&str]) -> Vec<u32> {
    let wanted: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if std::fs::read(entry.path().join("cmdline")).is_ok_and(|c| c == wanted) {
            // A zombie still has no cmdline, so anything found here is alive.
            found.push(pid);
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP servers.

/// One parsed request (enough for the stand-ins here).
#[derive(Debug, Default)]
struct Request {
    method: String,
    body: Vec<u8>,
}

impl Request {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn is_initialize(&self) -> bool {
        self.json()["method"] == "initialize"
    }
}

/// Reads one request: headers (at most 64 KiB), then `Content-Length` bytes of body (at most
/// 1 MiB). `None` if the peer went away.
fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if buf.len() > 64 * 1024 || stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf);
    let method = head.split_whitespace().next().unwrap_or("").to_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0)
        .min(1024 * 1024);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    Some(Request { method, body })
}

/// Serves every connection on 127.0.0.1 with `handler` (one request per connection, then the
/// handler decides); returns the endpoint URL. The listener lives until the test process ends.
fn raw_server(handler: fn(TcpStream, Request)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
                if let Some(request) = read_request(&mut stream) {
                    handler(stream, request);
                }
            });
        }
    });
    format!("http://127.0.0.1:{port}/mcp")
}

/// Writes a complete response and closes the connection.
fn respond(mut stream: TcpStream, status: &str, headers: &[(&str, &str)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}

/// Holds the connection open without answering until the client gives up.
fn hang(mut stream: TcpStream) {
    let mut sink = [0u8; 4096];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}

fn initialize_result(id: &Value) -> Vec<u8> {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "result": {
            "protocolVersion": "2025-11-25",
            "capabilities": { "tools": {} },
            "serverInfo": { "name": "hostile-stand-in", "version": "1.0.0" },
        },
    })
    .to_string()
    .into_bytes()
}

/// Answers `initialize` correctly (with a session id), the rest per `other`.
fn answer_initialize(stream: TcpStream, request: &Request) -> Option<TcpStream> {
    if request.method == "POST" && request.is_initialize() {
        let body = initialize_result(&request.json()["id"]);
        respond(
            stream,
            "200 OK",
            &[("Content-Type", "application/json"), ("Mcp-Session-Id", "hostile-session-1")],
            &body,
        );
        None
    } else {
        Some(stream)
    }
}

/// Deterministic noise (xorshift), so a failure replays.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Unreachable and not-MCP HTTP targets: exit 3.

#[test]
fn refused_connection_exits_3() {
    // A port that was just free: bind, note it, close.
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let run = mcproof(&["scan", &url, "--timeout", "3"], Duration::from_secs(20));
    run.expect_mentioning(3, &["cannot reach the target"]).within(Duration::from_secs(10));
    assert!(run.stdout.is_empty(), "no report for an unreachable target: {}", run.stdout);

    let run = mcproof(&["scan", "http://127.0.0.1:1/mcp", "--timeout", "3"], Duration::from_secs(20));
    run.expect_mentioning(3, &["cannot reach the target"]);
}

#[test]
fn garbage_answer_exits_3() {
    let url = raw_server(|mut stream, _| {
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n");
        let _ = stream.write_all(&noise(8192, 0x9e37_79b9_7f4a_7c15));
    });
    let run = mcproof(&["scan", &url, "--timeout", "3"], Duration::from_secs(20));
    run.expect_mentioning(3, &["does not speak MCP"]).within(Duration::from_secs(10));
}

#[test]
fn not_http_at_all_exits_3() {
    let url = raw_server(|mut stream, _| {
        let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\n");
        let _ = stream.write_all(&noise(512, 7));
    });
    let run = mcproof(&["scan", &url, "--timeout", "3"], Duration::from_secs(20));
    run.expect_mentioning(3, &[]).within(Duration::from_secs(10));
    assert!(run.stderr.contains("mcproof: error:"), "{}", run.stderr);
}

#[test]
fn endless_sse_without_a_response_exits_3() {
    let url = raw_server(|mut stream, _| {
        let _ =
            stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n");
        while stream.write_all(b": ping\n\n").and_then(|()| stream.flush()).is_ok() {
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let run = mcproof(&["scan", &url, "--timeout", "3"], Duration::from_secs(25));
    run.expect_mentioning(3, &["does not speak MCP"]).within(Duration::from_secs(12));
}

#[test]
fn endless_sse_line_without_newline_exits_3() {
    let url = raw_server(|mut stream, _| {
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: ");
        let chunk = vec![b'x'; 64 * 1024];
        while stream.write_all(&chunk).is_ok() {}
    });
    let run = mcproof(&["scan", &url, "--timeout", "3"], Duration::from_secs(25));
    run.expect_mentioning(3, &["does not speak MCP"]).within(Duration::from_secs(12));
    assert!(run.peak_rss_kb < RSS_LIMIT_KB);
}

#[test]
fn hundred_megabyte_body_is_read_only_to_the_limit() {
    let url = raw_server(|mut stream, _| {
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n[");
        let chunk = b"0,".repeat(32 * 1024);
        let mut sent = 1;
        while sent < 100 * 1024 * 1024 && stream.write_all(&chunk).is_ok() {
            sent += chunk.len();
        }
    });
    let run = mcproof(&["scan", &url, "--timeout", "5"], Duration::from_secs(25));
    run.expect_mentioning(3, &["does not speak MCP"]).within(Duration::from_secs(12));
    eprintln!("peak RSS {} KiB", run.peak_rss_kb);
    assert!(run.peak_rss_kb < RSS_LIMIT_KB, "peak RSS {} KiB", run.peak_rss_kb);
}

#[test]
fn invalid_utf8_in_initialize_exits_3() {
    let url = raw_server(|stream, request| {
        let mut body = br#"{"jsonrpc":"2.0","id":"#.to_vec();
        body.extend_from_slice(request.json()["id"].to_string().as_bytes());
        body.extend_from_slice(
            br#","result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":""#,
        );
        body.extend_from_slice(b"\xff\xfe\xc3\x28 \xed\xa0\x80");
        body.extend_from_slice(br#"","version":"1"}}}"#);
        respond(stream, "200 OK", &[("Content-Type", "application/json")], &body);
    });
    let run = mcproof(&["scan", &url, "--timeout", "3"], Duration::from_secs(20));
    run.no_panic();
    match run.code {
        Some(3) => assert!(run.stderr.contains("does not speak MCP"), "{}", run.stderr),
        Some(0 | 1) => assert!(run.stdout.contains("checks:"), "a clean report: {}", run.stdout),
        other => panic!("unexpected exit {other:?}: {run:#?}"),
    }
}

#[test]
fn invalid_utf8_after_initialize_gives_a_clean_report() {
    let url = raw_server(|stream, request| {
        let Some(stream) = answer_initialize(stream, &request) else { return };
        let mut body = br#"{"jsonrpc":"2.0","id":"#.to_vec();
        body.extend_from_slice(request.json().get("id").unwrap_or(&json!(1)).to_string().as_bytes());
        body.extend_from_slice(br#","result":{"tools":[{"name":"t\xff\xfe","inputSchema":{"type":"object"}}],"x":""#);
        body.extend_from_slice(&noise(200, 3));
        body.extend_from_slice(br#""}}"#);
        let ct = if request.method == "GET" { "text/event-stream" } else { "application/json" };
        respond(stream, "200 OK", &[("Content-Type", ct)], &body);
    });
    let run = mcproof(
        &["scan", &url, "--timeout", "3", "--check-timeout", "10", "--format", "json"],
        Duration::from_secs(45),
    );
    run.no_panic();
    assert!(matches!(run.code, Some(0 | 1)), "{run:#?}");
    let report: Value = serde_json::from_str(&run.stdout).expect("a JSON report");
    assert!(!report["results"].as_array().expect("results").is_empty());
}

// ---------------------------------------------------------------------------------------------
// A server that answers initialize, then never answers anything else.

#[test]
fn server_hanging_after_initialize_ends_with_a_report() {
    let url = raw_server(|stream, request| {
        if let Some(stream) = answer_initialize(stream, &request) {
            hang(stream);
        }
    });
    // Without the runner noticing that the target stopped answering, this took about 50 s
    // (every check waiting out its timeouts, 8 at a time), and minutes with the defaults.
    let run = mcproof(
        &["scan", &url, "--timeout", "2", "--check-timeout", "10", "--format", "json"],
        Duration::from_secs(40),
    );
    run.no_panic();
    run.within(Duration::from_secs(25));
    // The report is still written, and the exit code says the target became unreachable.
    assert_eq!(run.code, Some(3), "{run:#?}");
    assert!(run.stderr.contains("stopped answering"), "{run:#?}");
    let report: Value = serde_json::from_str(&run.stdout).expect("a JSON report");
    let results = report["results"].as_array().expect("results");
    assert!(!results.is_empty());
    let troubled: Vec<&Value> = results.iter().filter(|r| r["status"] == "ERROR" || r["status"] == "FAIL").collect();
    assert!(troubled.len() * 2 > results.len(), "a target that never answers cannot pass: {results:#?}");
    for r in &troubled {
        assert!(!r["message"].as_str().unwrap_or("").is_empty(), "{} has no message", r["id"]);
    }
    assert!(
        results.iter().any(|r| r["message"].as_str().is_some_and(|m| m.contains("stopped answering"))),
        "the report says the target stopped answering"
    );
    for r in results {
        assert!(r["duration_ms"].as_u64().unwrap_or(0) <= 10_500, "{} ran past --check-timeout: {r}", r["id"]);
    }
}

/// The server goes away after answering `initialize`: every later request is refused at once.
#[test]
fn server_gone_after_initialize_ends_with_a_report() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let url = format!("http://127.0.0.1:{}/mcp", listener.local_addr().expect("addr").port());
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept()
            && let Some(request) = read_request(&mut stream)
        {
            answer_initialize(stream, &request);
        }
        // The listener is dropped here: the port refuses connections from now on.
    });
    let run = mcproof(&["scan", &url, "--timeout", "3", "--format", "json"], Duration::from_secs(40));
    run.no_panic();
    run.within(Duration::from_secs(25));
    assert!(matches!(run.code, Some(0 | 1)), "{run:#?}");
    let report: Value = serde_json::from_str(&run.stdout).expect("a JSON report");
    let results = report["results"].as_array().expect("results");
    eprintln!("{:?}: {}", run.elapsed, report["summary"]);
    assert!(results.iter().any(|r| r["status"] == "ERROR" || r["status"] == "FAIL"), "{results:#?}");
}

// ---------------------------------------------------------------------------------------------
// stdio targets.

/// A stdio server that answers `initialize` (echoing its numeric id) and nothing else.
const STDIO_INITIALIZE_ONLY: &str = r#"while IFS= read -r line; do
  case "$line" in
    *'"method":"initialize"'*)
      id=$(printf '%s' "$line" | sed -n 's/.*"id":\([0-9][0-9]*\).*/\1/p')
      printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"mute","version":"1"}}}\n' "${id:-0}"
      ;;
  esac
done"#;

#[test]
fn stdio_server_answering_only_initialize_ends_with_a_report() {
    let run = mcproof(
        &[
            "scan",
            "--timeout",
            "2",
            "--check-timeout",
            "10",
            "--format",
            "json",
            "--",
            "sh",
            "-c",
            STDIO_INITIALIZE_ONLY,
        ],
        Duration::from_secs(45),
    );
    run.no_panic();
    run.within(Duration::from_secs(30));
    assert!(matches!(run.code, Some(0 | 1)), "{run:#?}");
    let report: Value = serde_json::from_str(&run.stdout).expect("a JSON report");
    let results = report["results"].as_array().expect("results");
    eprintln!("{:?}: {}", run.elapsed, report["summary"]);
    assert!(results.iter().any(|r| r["status"] == "ERROR" || r["status"] == "FAIL"), "{results:#?}");
    for r in results {
        assert!(r["duration_ms"].as_u64().unwrap_or(0) <= 10_500, "{} ran past --check-timeout: {r}", r["id"]);
    }
}

#[test]
fn stdio_child_exiting_at_once_exits_3() {
    let run = mcproof(&["scan", "--timeout", "3", "--", "sh", "-c", "exit 0"], Duration::from_secs(20));
    run.expect_mentioning(3, &["does not speak MCP"]).within(Duration::from_secs(10));
}

#[test]
fn stdio_command_not_found_exits_3() {
    let run = mcproof(&["scan", "--", "/nonexistent/mcp-server-binary"], Duration::from_secs(20));
    run.expect_mentioning(3, &["/nonexistent/mcp-server-binary"]).within(Duration::from_secs(10));
}

#[test]
fn stdio_child_that_never_answers_is_killed() {
    let secs = format!("60.{}", std::process::id());
    let run =
        mcproof(&["scan", "--startup-timeout", "2", "--timeout", "2", "--", "sleep", &secs], Duration::from_secs(20));
    run.expect_mentioning(3, &["does not speak MCP"]).within(Duration::from_secs(10));
    assert!(processes_running(&["sleep", &secs]).is_empty(), "the child was left running");
}

/// `--startup-timeout` governs `initialize` (never less than `--timeout`): a server that takes
/// two seconds to start is scanned with `--timeout 1 --startup-timeout 10`, and is unreachable
/// with `--startup-timeout 1`.
#[test]
fn stdio_startup_timeout_governs_initialize() {
    let slow = format!("sleep 2; exec '{BIN}' __serve-reference --stdio");
    let run = mcproof(
        &[
            "scan",
            "-q",
            "--timeout",
            "1",
            "--startup-timeout",
            "10",
            "--format",
            "json",
            "--area",
            "lifecycle",
            "--",
            "sh",
            "-c",
            &slow,
        ],
        Duration::from_secs(40),
    );
    run.no_panic();
    assert_eq!(run.code, Some(0), "{run:#?}");
    let run = mcproof(
        &["scan", "--timeout", "1", "--startup-timeout", "1", "--", "sh", "-c", &slow],
        Duration::from_secs(20),
    );
    run.expect_mentioning(3, &["does not speak MCP"]).within(Duration::from_secs(10));
}

#[test]
fn stdio_child_swallowing_input_exits_3() {
    let run = mcproof(
        &["scan", "--startup-timeout", "2", "--timeout", "2", "--", "sh", "-c", "cat >/dev/null"],
        Duration::from_secs(20),
    );
    run.expect_mentioning(3, &["does not speak MCP"]).within(Duration::from_secs(10));
}

#[test]
fn stdio_child_flooding_lines_stays_bounded() {
    let run = mcproof(
        &["scan", "--startup-timeout", "2", "--timeout", "2", "--", "yes", "not json"],
        Duration::from_secs(20),
    );
    run.expect_mentioning(3, &["does not speak MCP"]).within(Duration::from_secs(10));
    eprintln!("peak RSS {} KiB", run.peak_rss_kb);
}

#[test]
fn stdio_child_writing_an_endless_line_stays_bounded() {
    let run = mcproof(
        &["scan", "--startup-timeout", "2", "--timeout", "2", "--", "cat", "/dev/zero"],
        Duration::from_secs(20),
    );
    run.expect_mentioning(3, &["does not speak MCP"]).within(Duration::from_secs(10));
    eprintln!("peak RSS {} KiB", run.peak_rss_kb);
}
