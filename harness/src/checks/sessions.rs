//! Checks of the `sessions` area: `Mcp-Session-Id` over Streamable HTTP (basic/transports
//! §Session Management; basic/security_best_practices §Session Hijacking): the id's alphabet
//! and unpredictability, refusal of missing, unknown and ended ids, DELETE, and fixation.

use std::collections::{HashMap, HashSet};

use futures_util::future::{BoxFuture, join_all};
use serde_json::{Value, json};

use super::transport::{
    SESSION_REVISIONS, close, close_raw, get_request, harmless_request, random_token, served, status_of,
};
use crate::check::{Check, CheckInfo, Kind, Level, Transport, Verdict};
use crate::client::http::{HttpResponse, PREFERRED_REVISION, initialize_body};
use crate::client::{HttpRequest, McpSession};
use crate::probe::{Probe, truncate};

const HTTP: &[Transport] = &[Transport::Http];
const NO_SESSIONS: &str = "not applicable: the server issues no Mcp-Session-Id (it does not use sessions)";

/// The checks of this area.
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            info: CheckInfo {
                id: "sessions/id-charset",
                title: "Session ids use only visible ASCII (0x21-0x7E)",
                level: Level::Must,
                weight: 8,
                source: "basic/transports §Session Management 1; spec-checks HT-07",
                revisions: SESSION_REVISIONS,
                transports: HTTP,
                kind: Kind::Passive,
                description: "Initializes three sessions and inspects the raw bytes of each `Mcp-Session-Id` \
                    header: every byte must be visible ASCII, 0x21 to 0x7E (no spaces, controls or non-ASCII), and \
                    the id must not be empty. Skipped for servers that issue no session ids.",
                remediation: "Encode session ids with a visible-ASCII alphabet, e.g. base64url or hex of random \
                    bytes, or a UUID.",
            },
            run: run_id_charset,
        },
        Check {
            info: CheckInfo {
                id: "sessions/id-entropy",
                title: "Session ids are unpredictable (distinct, not sequential, enough entropy)",
                level: Level::Must,
                weight: 15,
                source: "basic/security_best_practices §Session Hijacking → Mitigation (secure, \
                    non-deterministic session ids); basic/transports §Session Management 1 (cryptographically \
                    secure); spec-checks HT-07",
                revisions: SESSION_REVISIONS,
                transports: HTTP,
                kind: Kind::Active,
                description: "Initializes 32 sessions in a row and collects their ids (then deletes them). Fails if \
                    two ids are equal, if the part that varies is a number that only grows (or only shrinks), by \
                    less than 2^32 from one id to the next (a counter or a clock), or if the estimated entropy is below 64 bits; warns \
                    below 100 bits. Estimator: the ids are aligned by character position (left and right \
                    alignment; the larger estimate counts); for each position the Shannon entropy of the 32 \
                    characters seen there, plus the Miller-Madow correction (k-1)/(2n ln 2) for k distinct \
                    characters in n samples, capped at log2 of the alphabet seen over all ids; the estimate is the \
                    sum over positions. With 32 samples it credits at most about 5 bits per character, so it \
                    under-estimates long random ids (a 43-character base64url id scores about 220 bits, a UUIDv4 \
                    about 117, 16 random bytes in hex about 125) and cannot prove randomness, only catch its absence. Skipped when the server issues \
                    no session ids.",
                remediation: "Generate session ids from a cryptographically secure random source with at least 128 \
                    bits (e.g. 32 random bytes in base64url, or a UUIDv4), never from counters, clocks or client \
                    input.",
            },
            run: run_id_entropy,
        },
        Check {
            info: CheckInfo {
                id: "sessions/missing-id-400",
                title: "A request without Mcp-Session-Id is refused with 400",
                level: Level::Should,
                weight: 5,
                source: "basic/transports §Session Management 2; spec-checks HT-08",
                revisions: SESSION_REVISIONS,
                transports: HTTP,
                kind: Kind::Active,
                description: "After a session was issued, POSTs a request (not initialize) without the \
                    `Mcp-Session-Id` header. It must be refused with 400. Serving it fails (session binding and \
                    per-session limits are then bypassed); another refusal status warns. Skipped for servers that \
                    issue no session ids.",
                remediation: "When the server uses sessions, answer every non-initialize request that lacks \
                    `Mcp-Session-Id` with 400 Bad Request.",
            },
            run: run_missing_id_400,
        },
        Check {
            info: CheckInfo {
                id: "sessions/unknown-id-404",
                title: "A session id that was never issued is refused (404)",
                level: Level::Must,
                weight: 12,
                source: "basic/transports §Session Management 3; basic/security_best_practices §Session \
                    Hijacking; spec-checks HT-09",
                revisions: SESSION_REVISIONS,
                transports: HTTP,
                kind: Kind::Active,
                description: "POSTs a request carrying a well-formed random `Mcp-Session-Id` (43 base64url \
                    characters) that the server never issued. 404 passes; serving the request (2xx, or a result in \
                    the body) fails, since the server then accepts arbitrary session ids; another refusal status \
                    warns (404 is what tells a client to start a new session). Skipped for servers that issue no \
                    session ids.",
                remediation: "Look every session id up in the server's session store and answer unknown ids with \
                    404 Not Found; never create a session from an id the client sends.",
            },
            run: run_unknown_id_404,
        },
        Check {
            info: CheckInfo {
                id: "sessions/delete-ends",
                title: "DELETE ends the session (or is refused with 405)",
                level: Level::Must,
                weight: 10,
                source: "basic/transports §Session Management 3, 5; spec-checks HT-10",
                revisions: SESSION_REVISIONS,
                transports: HTTP,
                kind: Kind::Active,
                description: "Sends DELETE with a fresh session's id. 405 passes (the server does not let clients \
                    end sessions, as the spec allows). After a 2xx, a POST and a GET with the same id must not be \
                    served: serving either fails, because the session the server reported ended is still usable. \
                    Other answers to the DELETE warn. The exact status afterwards is checked by \
                    sessions/ended-id-404.",
                remediation: "On DELETE with a valid session id, remove the session from the store and close its \
                    streams before answering 2xx; or answer 405 if clients may not end sessions.",
            },
            run: run_delete_ends,
        },
        Check {
            info: CheckInfo {
                id: "sessions/ended-id-404",
                title: "Requests with an ended session's id get 404",
                level: Level::Must,
                weight: 8,
                source: "basic/transports §Session Management 3-4; spec-checks HT-09, HT-10",
                revisions: SESSION_REVISIONS,
                transports: HTTP,
                kind: Kind::Active,
                description: "Ends a fresh session with DELETE, then POSTs a request and GETs with its id. After \
                    the session is terminated both must be answered 404 Not Found (a GET may get 405 where the \
                    server offers no GET stream); any other status fails, because 404 is what tells a client to \
                    start a new session. Skipped when the server does not let clients end sessions (DELETE \
                    answered 405 or refused) or issues no session ids.",
                remediation: "Answer requests that carry the id of an ended or expired session with 404 Not Found.",
            },
            run: run_ended_id_404,
        },
        Check {
            info: CheckInfo {
                id: "sessions/no-fixation",
                title: "initialize never adopts a session id chosen by the client",
                level: Level::Must,
                weight: 12,
                source: "basic/security_best_practices §Session Hijacking → Mitigation (secure, \
                    non-deterministic session ids); OWASP Session Fixation",
                revisions: SESSION_REVISIONS,
                transports: HTTP,
                kind: Kind::Active,
                description: "Sends initialize carrying a client-chosen, never-issued `Mcp-Session-Id`. The server \
                    must not adopt it: returning the chosen id fails, and so does returning no id while serving \
                    requests under the chosen one. A fresh, different id (or a refusal) passes; if the chosen id is \
                    nevertheless served as an arbitrary id, the check warns (see sessions/unknown-id-404). Skipped \
                    for servers that issue no session ids.",
                remediation: "Always mint a new random session id in the initialize response and ignore (or \
                    refuse) any id the client sends with initialize.",
            },
            run: run_no_fixation,
        },
    ]
}

fn run_id_charset(p: &Probe) -> BoxFuture<'_, Verdict> {
    Box::pin(id_charset(p))
}
fn run_id_entropy(p: &Probe) -> BoxFuture<'_, Verdict> {
    Box::pin(id_entropy(p))
}
fn run_missing_id_400(p: &Probe) -> BoxFuture<'_, Verdict> {
    Box::pin(missing_id_400(p))
}
fn run_unknown_id_404(p: &Probe) -> BoxFuture<'_, Verdict> {
    Box::pin(unknown_id_404(p))
}
fn run_delete_ends(p: &Probe) -> BoxFuture<'_, Verdict> {
    Box::pin(delete_ends(p))
}
fn run_ended_id_404(p: &Probe) -> BoxFuture<'_, Verdict> {
    Box::pin(ended_id_404(p))
}
fn run_no_fixation(p: &Probe) -> BoxFuture<'_, Verdict> {
    Box::pin(no_fixation(p))
}

/// A fresh session that has an id, or the verdict to return (ERROR, or SKIP without sessions).
async fn session_with_id(p: &Probe) -> Result<(&crate::client::HttpClient, McpSession), Verdict> {
    let (http, session) = p.session().await?;
    if session.id.is_none() {
        return Err(Verdict::skip(NO_SESSIONS));
    }
    Ok((http, session))
}

/// One bare initialize (no `notifications/initialized`); returns the answer and its id.
async fn bare_initialize(p: &Probe, label: &str) -> (HttpResponse, Value) {
    let id = p.next_id();
    let http = match p.http() {
        Ok(h) => h,
        Err(_) => return (HttpResponse::default(), json!(id)),
    };
    (http.send(HttpRequest::post(label, &initialize_body(id, PREFERRED_REVISION))).await, json!(id))
}

fn initialized(r: &HttpResponse, id: &Value) -> bool {
    r.response_to(id).is_some_and(|m| m.get("result").is_some())
}

/// Describes the bytes of a session id outside 0x21..=0x7E without revealing the id.
fn bad_bytes(id: &[u8]) -> Option<String> {
    if id.is_empty() {
        return Some("the id is empty".into());
    }
    let bad: Vec<String> = id
        .iter()
        .enumerate()
        .filter(|(_, b)| !(0x21..=0x7e).contains(*b))
        .take(5)
        .map(|(i, b)| match b {
            b' ' => format!("a space (0x20) at position {i}"),
            _ => format!("byte 0x{b:02X} at position {i}"),
        })
        .collect();
    (!bad.is_empty()).then(|| format!("{} of {} bytes", bad.join(", "), id.len()))
}

async fn id_charset(p: &Probe) -> Verdict {
    if let Err(v) = p.http() {
        return v;
    }
    let mut evidence = Vec::new();
    let mut problems = Vec::new();
    let mut ids = 0;
    for n in 1..=3 {
        let (r, id) = bare_initialize(p, &format!("initialize #{n}")).await;
        if let Some(raw) = r.headers.get("mcp-session-id") {
            ids += 1;
            if let Some(bad) = bad_bytes(raw.as_bytes()) {
                problems.push(format!("session #{n}: {bad}"));
            }
        } else if initialized(&r, &id) && ids == 0 {
            return Verdict::skip(NO_SESSIONS).with(r.exchange);
        }
        if let Ok(http) = p.http() {
            close_raw(http, &r).await;
        }
        evidence.push(r.exchange);
    }
    let v = if ids == 0 {
        Verdict::error("no initialize was answered with a session")
    } else if problems.is_empty() {
        Verdict::pass(format!("{ids} session id(s), every byte visible ASCII (0x21-0x7E)"))
    } else {
        Verdict::fail(format!("session ids contain bytes outside 0x21-0x7E: {}", problems.join("; ")))
    };
    v.with_all(evidence)
}

const ENTROPY_SAMPLES: usize = 32;
const FAIL_BELOW_BITS: f64 = 64.0;
const WARN_BELOW_BITS: f64 = 100.0;

async fn id_entropy(p: &Probe) -> Verdict {
    let http = match p.http() {
        Ok(h) => h,
        Err(v) => return v,
    };
    let mut ids: Vec<String> = Vec::new();
    let mut responses = Vec::new();
    let mut failures = 0;
    for n in 1..=ENTROPY_SAMPLES {
        let (r, id) = bare_initialize(p, &format!("initialize #{n}")).await;
        match r.headers.get("mcp-session-id") {
            Some(raw) => ids.push(String::from_utf8_lossy(raw.as_bytes()).into_owned()),
            None if initialized(&r, &id) && ids.is_empty() => {
                return Verdict::skip(NO_SESSIONS).with(r.exchange);
            }
            None => failures += 1,
        }
        responses.push(r);
        if failures > ENTROPY_SAMPLES / 4 {
            break;
        }
    }
    join_all(responses.iter().map(|r| close_raw(http, r))).await;
    let evidence: Vec<_> = responses.into_iter().take(3).map(|r| r.exchange).collect();
    if ids.len() < ENTROPY_SAMPLES / 2 {
        return Verdict::error(format!(
            "only {} of {} initialize requests returned a session id",
            ids.len(),
            ids.len() + failures
        ))
        .with_all(evidence);
    }
    let analysis = analyse(&ids);
    let n = ids.len();
    let lengths = match (ids.iter().map(String::len).min(), ids.iter().map(String::len).max()) {
        (Some(a), Some(b)) if a == b => format!("{a} characters"),
        (Some(a), Some(b)) => format!("{a}-{b} characters"),
        _ => String::new(),
    };
    let v = if analysis.duplicates > 0 {
        Verdict::fail(format!("{} of {n} session ids were issued more than once", analysis.duplicates))
    } else if let Some(pattern) = &analysis.sequence {
        Verdict::fail(format!("session ids are predictable: {pattern}"))
    } else if analysis.bits < FAIL_BELOW_BITS {
        Verdict::fail(format!(
            "{n} distinct ids of {lengths}, but only about {:.0} bits of entropy estimated (< {FAIL_BELOW_BITS:.0}): \
             they can be guessed",
            analysis.bits
        ))
    } else if analysis.bits < WARN_BELOW_BITS {
        Verdict::warn(format!(
            "{n} distinct ids of {lengths}, about {:.0} bits of entropy estimated (< {WARN_BELOW_BITS:.0}; 128 \
             random bits are the norm)",
            analysis.bits
        ))
    } else {
        Verdict::pass(format!(
            "{n} distinct ids of {lengths}, no sequence, about {:.0} bits of entropy estimated",
            analysis.bits
        ))
    };
    v.with_all(evidence)
}

/// What the entropy analysis found.
#[derive(Debug)]
pub(crate) struct Analysis {
    /// Ids seen more than once (counting every repeat).
    pub duplicates: usize,
    /// A description of a counter or clock pattern, if found.
    pub sequence: Option<String>,
    /// Estimated entropy per id, in bits.
    pub bits: f64,
}

/// Analyses session ids in the order they were issued.
pub(crate) fn analyse(ids: &[String]) -> Analysis {
    let distinct: HashSet<&String> = ids.iter().collect();
    Analysis { duplicates: ids.len() - distinct.len(), sequence: sequence(ids), bits: entropy_bits(ids) }
}

/// The part of each id between the prefix and the suffix that all ids share.
fn varying_parts(ids: &[String]) -> Vec<&str> {
    let Some(first) = ids.first() else { return Vec::new() };
    let mut prefix = first.len();
    let mut suffix = first.len();
    for id in ids {
        prefix = prefix.min(first.bytes().zip(id.bytes()).take_while(|(a, b)| a == b).count());
        suffix = suffix.min(first.bytes().rev().zip(id.bytes().rev()).take_while(|(a, b)| a == b).count());
    }
    ids.iter()
        .map(|id| {
            let start = prefix.min(id.len());
            let end = id.len().saturating_sub(suffix).max(start);
            id.get(start..end).unwrap_or("")
        })
        .collect()
}

/// A counter or clock: the varying parts are numbers (decimal, else hex) in issuance order
/// (only rising or only falling) that move by less than 2^32 from one id to the next.
fn sequence(ids: &[String]) -> Option<String> {
    let parts = varying_parts(ids);
    if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let radix = if parts.iter().all(|p| p.len() <= 38 && p.bytes().all(|b| b.is_ascii_digit())) {
        10
    } else if parts.iter().all(|p| p.len() <= 32 && p.bytes().all(|b| b.is_ascii_hexdigit())) {
        16
    } else {
        return None;
    };
    let values: Vec<u128> = parts.iter().filter_map(|p| u128::from_str_radix(p, radix).ok()).collect();
    if values.len() != parts.len() {
        return None;
    }
    // Random values are in order by chance with probability 2/n!; counters and clocks always are.
    let rising = values.windows(2).all(|w| w[0] < w[1]);
    let falling = values.windows(2).all(|w| w[0] > w[1]);
    let steps: Vec<u128> = values.windows(2).map(|w| w[0].abs_diff(w[1])).collect();
    let max = steps.iter().copied().max()?;
    ((rising || falling) && values.len() >= 8 && max < 1u128 << 32).then(|| {
        let kind = if radix == 10 { "decimal" } else { "hexadecimal" };
        let direction = if rising { "rises" } else { "falls" };
        if max == 1 {
            format!("the {kind} number inside the ids {direction} by one from each id to the next (a counter)")
        } else {
            format!(
                "the {kind} number inside the ids {direction} with every id, by at most {max} (a counter or a clock)"
            )
        }
    })
}

/// The per-position entropy estimate described in the check, in bits per id.
pub(crate) fn entropy_bits(ids: &[String]) -> f64 {
    let chars: Vec<Vec<char>> = ids.iter().map(|s| s.chars().collect()).collect();
    let n = chars.len();
    if n < 2 {
        return 0.0;
    }
    let alphabet: HashSet<char> = chars.iter().flatten().copied().collect();
    let cap = (alphabet.len().max(1) as f64).log2();
    let width = chars.iter().map(Vec::len).max().unwrap_or(0);
    let estimate = |right: bool| -> f64 {
        (0..width)
            .map(|i| {
                let mut counts: HashMap<Option<char>, usize> = HashMap::new();
                for id in &chars {
                    let c = if right { (id.len() + i).checked_sub(width).and_then(|j| id.get(j)) } else { id.get(i) };
                    *counts.entry(c.copied()).or_default() += 1;
                }
                let k = counts.len();
                if k < 2 {
                    return 0.0;
                }
                let total = n as f64;
                let h: f64 = counts.values().map(|&c| c as f64 / total).map(|q| -q * q.log2()).sum();
                (h + (k as f64 - 1.0) / (2.0 * total * std::f64::consts::LN_2)).min(cap)
            })
            .sum()
    };
    estimate(false).max(estimate(true))
}

async fn missing_id_400(p: &Probe) -> Verdict {
    let (http, session) = match session_with_id(p).await {
        Ok(s) => s,
        Err(v) => return v,
    };
    let (body, method) = harmless_request(p);
    let r = http
        .send(
            HttpRequest::post(format!("{method} without Mcp-Session-Id"), &body)
                .in_session(&session)
                .without("mcp-session-id"),
        )
        .await;
    close(http, &session).await;
    let status = status_of(&r);
    let v = if served(&r) {
        Verdict::fail(format!("{method} without Mcp-Session-Id was served ({status})"))
    } else if r.status == Some(400) {
        Verdict::pass(format!("{method} without Mcp-Session-Id was refused with 400"))
    } else {
        Verdict::warn(format!("{method} without Mcp-Session-Id got {status} instead of 400"))
    };
    v.with(r.exchange)
}

async fn unknown_id_404(p: &Probe) -> Verdict {
    let (http, session) = match session_with_id(p).await {
        Ok(s) => s,
        Err(v) => return v,
    };
    close(http, &session).await;
    let forged = McpSession { id: Some(random_token(32)), ..session };
    let (body, method) = harmless_request(p);
    let r = http
        .send(HttpRequest::post(format!("{method} with a never-issued Mcp-Session-Id"), &body).in_session(&forged))
        .await;
    let status = status_of(&r);
    let v = if served(&r) {
        Verdict::fail(format!(
            "{method} with a random, never-issued session id was served ({status}): the server accepts arbitrary \
             session ids"
        ))
    } else if r.status == Some(404) {
        Verdict::pass(format!("{method} with a never-issued session id got 404"))
    } else {
        Verdict::warn(format!("{method} with a never-issued session id got {status} instead of 404"))
    };
    v.with(r.exchange)
}

/// Probes a session after it was ended: a POST and a GET with its id.
async fn after_end(p: &Probe, http: &crate::client::HttpClient, session: &McpSession) -> Vec<(String, HttpResponse)> {
    let (body, method) = harmless_request(p);
    let post = http.send(HttpRequest::post(format!("{method} after DELETE"), &body).in_session(session)).await;
    let get = http.send(get_request("GET after DELETE").in_session(session)).await;
    vec![(format!("POST {method}"), post), ("GET".to_owned(), get)]
}

async fn delete_ends(p: &Probe) -> Verdict {
    let (http, session) = match session_with_id(p).await {
        Ok(s) => s,
        Err(v) => return v,
    };
    let d = http.delete(&session).await;
    let status = status_of(&d);
    match d.status {
        Some(405) => {
            return Verdict::pass("DELETE was answered 405: the server does not let clients end sessions")
                .with(d.exchange);
        }
        Some(s) if (200..=299).contains(&s) => {}
        _ => {
            return Verdict::warn(format!("DELETE of a live session got {status}, neither 2xx nor 405"))
                .with(d.exchange);
        }
    }
    let mut evidence = vec![d.exchange];
    let mut alive = Vec::new();
    let mut gone = Vec::new();
    for (what, r) in after_end(p, http, &session).await {
        let line = format!("{what} → {}", status_of(&r));
        if served(&r) {
            alive.push(line)
        } else {
            gone.push(line)
        }
        evidence.push(r.exchange);
    }
    let v = if alive.is_empty() {
        Verdict::pass(format!("DELETE got {status}; afterwards the session is not served: {}", gone.join("; ")))
    } else {
        Verdict::fail(format!("DELETE got {status}, but the session is still served: {}", alive.join("; ")))
    };
    v.with_all(evidence)
}

async fn ended_id_404(p: &Probe) -> Verdict {
    let (http, session) = match session_with_id(p).await {
        Ok(s) => s,
        Err(v) => return v,
    };
    let d = http.delete(&session).await;
    if !d.status_in(200..=299) {
        return Verdict::skip(format!(
            "not applicable: DELETE got {}, so the harness cannot end a session to test",
            status_of(&d)
        ))
        .with(d.exchange);
    }
    let mut evidence = vec![d.exchange];
    let mut wrong = Vec::new();
    let mut right = Vec::new();
    for (what, r) in after_end(p, http, &session).await {
        let line = format!("{what} → {}", status_of(&r));
        let ok = r.status == Some(404) || (what == "GET" && r.status == Some(405));
        if ok && !served(&r) {
            right.push(line)
        } else {
            wrong.push(line)
        }
        evidence.push(r.exchange);
    }
    let v = if wrong.is_empty() {
        Verdict::pass(format!("after DELETE, requests with the ended session's id got 404: {}", right.join("; ")))
    } else {
        Verdict::fail(format!(
            "after DELETE, requests with the ended session's id did not get 404: {}",
            wrong.join("; ")
        ))
    };
    v.with_all(evidence)
}

async fn no_fixation(p: &Probe) -> Verdict {
    let http = match p.http() {
        Ok(h) => h,
        Err(v) => return v,
    };
    let chosen = format!("mcproof-fixation-{}", random_token(24));
    let id = p.next_id();
    let init = HttpRequest::post(
        "initialize carrying a client-chosen Mcp-Session-Id",
        &initialize_body(id, PREFERRED_REVISION),
    )
    .header("mcp-session-id", &chosen);
    let r = http.send(init).await;
    let returned = r.header("mcp-session-id").map(str::to_owned);
    close_raw(http, &r).await;
    let mut evidence = vec![r.exchange.clone()];
    if returned.as_deref() == Some(chosen.as_str()) {
        return Verdict::fail("initialize returned the session id the client chose: the server adopts client ids")
            .with_all(evidence);
    }
    if returned.is_none() && initialized(&r, &json!(id)) {
        // Served without an id: either the server has no sessions, or it took the client's.
        let (_, plain) = match p.session().await {
            Ok(s) => s,
            Err(v) => return v.with_all(evidence),
        };
        close(http, &plain).await;
        if plain.id.is_none() {
            return Verdict::skip(NO_SESSIONS).with_all(evidence);
        }
    }
    let version = returned_version(&r).unwrap_or_else(|| p.version().to_owned());
    let fixed = McpSession { id: Some(chosen), version, result: Value::Null };
    let (body, method) = harmless_request(p);
    let probe =
        http.send(HttpRequest::post(format!("{method} with the client-chosen id"), &body).in_session(&fixed)).await;
    let probe_served = served(&probe);
    let probe_status = status_of(&probe);
    evidence.push(probe.exchange);
    let init_status = status_of(&r);
    let v = match (returned.is_some(), probe_served) {
        (false, true) => Verdict::fail(format!(
            "initialize with a client-chosen id issued no id of its own ({init_status}), and requests under the \
             chosen id are served ({probe_status}): the server adopted it"
        )),
        (true, true) => Verdict::warn(format!(
            "initialize issued a fresh id, but a request under the client-chosen id was served as well \
             ({probe_status}): the server accepts arbitrary ids (see sessions/unknown-id-404)"
        )),
        (true, false) => Verdict::pass(format!(
            "initialize issued a fresh id, not the one the client chose; the chosen id is refused ({probe_status})"
        )),
        (false, false) => Verdict::pass(format!(
            "initialize carrying a client-chosen id got {init_status} and no session id; the chosen id is refused \
             ({probe_status})"
        )),
    };
    v.with_all(evidence)
}

fn returned_version(r: &HttpResponse) -> Option<String> {
    r.messages.iter().find_map(|m| m.get("result")?.get("protocolVersion")?.as_str().map(|s| truncate(s, 40)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_ids(n: usize, bytes: usize) -> Vec<String> {
        (0..n).map(|_| random_token(bytes)).collect()
    }

    #[test]
    fn random_ids_pass_and_counters_and_clocks_fail() {
        let strong = analyse(&random_ids(32, 32));
        assert!(strong.duplicates == 0 && strong.sequence.is_none() && strong.bits > 150.0, "{strong:?}");
        let uuids: Vec<String> = (0..32)
            .map(|_| {
                let h = hex::encode(rand::random::<[u8; 16]>());
                format!("{}-{}-4{}-a{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
            })
            .collect();
        let uuid = analyse(&uuids);
        assert!(uuid.sequence.is_none() && uuid.bits > WARN_BELOW_BITS, "{uuid:?}");
        let counter: Vec<String> = (1..=32).map(|n| format!("session-{n:08}")).collect();
        let c = analyse(&counter);
        assert!(c.sequence.is_some() && c.bits < FAIL_BELOW_BITS, "{c:?}");
        let plain: Vec<String> = (95..127).map(|n: u32| n.to_string()).collect();
        assert!(analyse(&plain).sequence.is_some());
        let clock: Vec<String> = (0..32).map(|n| format!("{:x}", 1_700_000_000_000u64 + n * 7)).collect();
        assert!(analyse(&clock).sequence.is_some());
        let short = analyse(&random_ids(32, 6));
        assert!(short.sequence.is_none() && short.bits < FAIL_BELOW_BITS, "{short:?}");
        let dup = analyse(&["a".repeat(40), "a".repeat(40), "b".repeat(40)]);
        assert_eq!(dup.duplicates, 1);
    }

    #[test]
    fn charset_findings_name_positions_not_ids() {
        assert!(bad_bytes(b"abc-DEF_123~").is_none());
        let bad = bad_bytes(b"sid abc").unwrap_or_default();
        assert!(bad.contains("space") && bad.contains("position 3") && !bad.contains("abc"), "{bad}");
        assert!(bad_bytes(b"").is_some());
        assert!(bad_bytes("é".as_bytes()).is_some());
    }
}
