//! Layered rate limits over HTTP (TO-08): 429 with an honest integer `Retry-After`, a JSON-RPC
//! -32000 body carrying the request id, the scope of each layer, and recovery after waiting.
//!
//! The conformance profile's `test_simple_text` and `test_error_handling` are used as cheap,
//! side-effect-free tools.
#![allow(clippy::unwrap_used)] // reason: tests; a panic is the failure report

mod common;

use std::time::Duration;

use common::*;
use mcproof_server::config::Quota;
use reqwest::Method;
use serde_json::{Value, json};

const CHEAP: &str = "test_simple_text";
const OTHER: &str = "test_error_handling";

fn call_body(id: i64, tool: &str) -> Value {
    tool_call_body(id, tool, json!({}))
}

/// Asserts a 429 with an integer `Retry-After` ≥ 1 and a -32000 body; returns the wait.
fn assert_limited(r: &Reply, id: Option<i64>, layer: &str) -> u64 {
    assert_eq!(r.status, 429, "expected 429 ({layer}): {}", r.describe());
    let retry = r.header("retry-after").unwrap_or_else(|| panic!("429 without Retry-After: {}", r.describe()));
    let secs: u64 = retry.trim().parse().unwrap_or_else(|_| panic!("Retry-After is not whole seconds: {retry:?}"));
    assert!(secs >= 1, "Retry-After {secs}");
    let body = r.json();
    assert_eq!(body["error"]["code"], json!(-32000), "{body}");
    assert!(body.get("result").is_none(), "{body}");
    if let Some(id) = id {
        assert_eq!(body["id"], json!(id), "the 429 body carries the request id: {body}");
    }
    if let Some(l) = body.pointer("/error/data/layer") {
        assert_eq!(l, layer, "{body}");
    }
    secs
}

/// Sleeps `secs` (bounded, so a dishonest Retry-After fails fast instead of hanging).
async fn wait(secs: u64) {
    assert!(secs <= 2, "Retry-After of {secs}s is longer than the quota implies");
    tokio::time::sleep(Duration::from_secs(secs)).await;
}

#[tokio::test]
async fn per_tool_quota_gives_429_with_retry_after_and_recovers() {
    let mut config = conformance();
    config.rate_limits.per_tool.insert(CHEAP.into(), Quota { per_minute: 60, burst: 2 });
    let srv = start(config).await;
    let mut c = srv.client();
    c.initialize().await;

    for id in 1..=2 {
        let r = c.post(&call_body(id, CHEAP)).await;
        assert_eq!(r.status, 200, "call {id}: {}", r.describe());
        assert_eq!(r.json()["result"]["isError"], json!(false));
    }
    let r = c.post(&call_body(3, CHEAP)).await;
    let secs = assert_limited(&r, Some(3), "tool");

    // Other tools are not limited by this tool's override.
    let r = c.post(&call_body(4, OTHER)).await;
    assert_eq!(r.status, 200, "another tool: {}", r.describe());
    // Non-tool requests are unaffected.
    assert_eq!(c.ping_ok().await, Ok(()));

    // Retry-After is honest: after waiting it, the call is admitted.
    wait(secs).await;
    let r = c.post(&call_body(5, CHEAP)).await;
    assert_eq!(r.status, 200, "after Retry-After: {}", r.describe());
    assert_eq!(r.json()["id"], json!(5));
}

#[tokio::test]
async fn default_tool_quota_applies_per_tool() {
    let mut config = conformance();
    config.rate_limits.tool = Quota { per_minute: 60, burst: 2 };
    let srv = start(config).await;
    let mut c = srv.client();
    c.initialize().await;
    for id in 1..=2 {
        assert_eq!(c.post(&call_body(id, CHEAP)).await.status, 200);
    }
    assert_limited(&c.post(&call_body(3, CHEAP)).await, Some(3), "tool");
    // Each tool has its own bucket.
    for id in 4..=5 {
        let r = c.post(&call_body(id, OTHER)).await;
        assert_eq!(r.status, 200, "{}", r.describe());
    }
    assert_limited(&c.post(&call_body(6, OTHER)).await, Some(6), "tool");
    // A fresh session of the same principal shares the principal's tool buckets.
    let mut d = srv.client();
    d.initialize().await;
    assert_limited(&d.post(&call_body(7, CHEAP)).await, Some(7), "tool");
}

#[tokio::test]
async fn string_ids_are_kept_in_429_bodies() {
    let mut config = conformance();
    config.rate_limits.per_tool.insert(CHEAP.into(), Quota { per_minute: 60, burst: 1 });
    let srv = start(config).await;
    let mut c = srv.client();
    c.initialize().await;
    assert_eq!(c.post(&call_body(1, CHEAP)).await.status, 200);
    let mut body = call_body(0, CHEAP);
    body["id"] = json!("req-abc");
    let r = c.post(&body).await;
    assert_eq!(r.status, 429, "{}", r.describe());
    assert_eq!(r.json()["id"], json!("req-abc"), "{}", r.describe());
}

#[tokio::test]
async fn principal_quota_counts_every_tool_call() {
    let mut config = conformance();
    config.rate_limits.principal = Quota { per_minute: 60, burst: 2 };
    let srv = start(config).await;
    let mut c = srv.client();
    c.initialize().await;
    assert_eq!(c.post(&call_body(1, CHEAP)).await.status, 200);
    assert_eq!(c.post(&call_body(2, OTHER)).await.status, 200);
    assert_limited(&c.post(&call_body(3, "test_image_content")).await, Some(3), "principal");
    assert_eq!(c.ping_ok().await, Ok(()), "ping is not a tool call");
}

#[tokio::test]
async fn session_quota_limits_every_request_of_the_session() {
    let mut config = standard();
    config.rate_limits.session = Quota { per_minute: 60, burst: 4 };
    let srv = start(config).await;
    let mut c = srv.client();
    c.initialize().await; // `notifications/initialized` is the first counted request
    let mut limited = None;
    for id in 1..=5 {
        let r = c.post(&json!({ "jsonrpc": "2.0", "id": id, "method": "ping" })).await;
        if r.status == 429 {
            limited = Some((id, r));
            break;
        }
        assert_eq!(r.status, 200, "{}", r.describe());
    }
    let (id, r) = limited.expect("the session quota was never enforced");
    assert_eq!(id, 4, "burst 4 including notifications/initialized");
    let secs = assert_limited(&r, Some(id), "session");
    // Another session is not affected.
    let mut d = srv.client();
    d.initialize().await;
    assert_eq!(d.ping_ok().await, Ok(()));
    wait(secs).await;
    assert_eq!(c.ping_ok().await, Ok(()));
}

#[tokio::test]
async fn ip_quota_limits_any_request() {
    let mut config = standard();
    config.rate_limits.ip = Quota { per_minute: 60, burst: 4 };
    let srv = start(config).await;
    let mut c = srv.client();
    c.initialize().await; // 2 requests: initialize and notifications/initialized
    assert_eq!(c.ping_ok().await, Ok(()));
    assert_eq!(c.ping_ok().await, Ok(()));
    // Over the quota every request is refused, whatever it is.
    let r = c.request_reply("ping", json!({})).await;
    let secs = assert_limited(&r, None, "ip");
    let r = c.send(Method::GET, &format!("{}/admin", srv.base), None, &[]).await;
    assert_eq!(r.status, 429, "{}", r.describe());
    assert!(r.header("retry-after").is_some());
    let r = srv.client().post(&initialize_body(1, LATEST)).await;
    assert_eq!(r.status, 429, "initialize: {}", r.describe());
    assert!(r.header("mcp-session-id").is_none());

    wait(secs).await;
    assert_eq!(c.ping_ok().await, Ok(()), "admitted again after Retry-After");
}

#[tokio::test]
async fn a_burst_is_throttled_and_the_server_keeps_answering() {
    let mut config = conformance();
    config.rate_limits.tool = Quota { per_minute: 600, burst: 20 };
    let srv = start(config).await;
    let mut c = srv.client();
    c.initialize().await;
    let mut statuses = Vec::new();
    for id in 0..60 {
        statuses.push(c.post(&call_body(id, CHEAP)).await.status);
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(ok + limited, statuses.len(), "only 200 or 429: {statuses:?}");
    assert!((20..=40).contains(&ok), "about the burst is admitted: {ok}");
    assert!(limited > 0);
    assert_eq!(c.ping_ok().await, Ok(()));
}
