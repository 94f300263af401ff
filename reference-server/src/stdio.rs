//! stdio transport: newline-delimited JSON-RPC on stdin/stdout over the same core. Nothing but
//! MCP messages is ever written to stdout; logs go to stderr.

use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::auth::Principal;
use crate::jsonrpc::{self, ErrorObject, Incoming, Message};
use crate::protocol::ProtocolVersion;
use crate::server::McpServer;
use crate::session::Session;

/// Reads one line of at most `max` bytes. Returns `Ok(None)` at end of input and
/// `Ok(Some(Err(())))` for an over-long line, which is skipped to its end.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Option<Result<Vec<u8>, ()>>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if line.is_empty() && !too_long {
                None
            } else if too_long {
                Some(Err(()))
            } else {
                Some(Ok(line))
            });
        }
        let (chunk, found) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !too_long {
            if line.len() + chunk.len() > max {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let consumed = found.unwrap_or(buf.len());
        reader.consume(consumed);
        if found.is_some() {
            return Ok(Some(if too_long { Err(()) } else { Ok(line) }));
        }
    }
}

/// Serves one client on `input`/`output` until end of input.
pub async fn run<R, W>(server: McpServer, mut input: R, mut output: W) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    // Fault `stdio-clean-stdout`: a log line on stdout, where only MCP messages belong.
    if server.config().faults.is_on("stdio-clean-stdout") {
        output.write_all(b"mcproof-server: listening on stdio\n").await?;
    }
    // Fault `stdio-framing`: tool results are pretty-printed, spreading them over several lines.
    let pretty = server.config().faults.is_on("stdio-framing");
    let (out_tx, mut out_rx) = mpsc::channel::<Value>(64);
    let writer = tokio::spawn(async move {
        while let Some(message) = out_rx.recv().await {
            // serde_json's compact form never contains a raw newline.
            let mut line = if pretty && message.get("result").is_some_and(|r| r.get("content").is_some()) {
                serde_json::to_string_pretty(&message).unwrap_or_default().into_bytes()
            } else {
                message.to_string().into_bytes()
            };
            line.push(b'\n');
            if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
                break;
            }
        }
    });
    let max = server.config().limits.max_body_bytes;
    let mut session: Option<Arc<Session>> = None;
    let mut tasks = JoinSet::new();
    while let Some(line) = read_line(&mut input, max).await? {
        let Ok(line) = line else {
            let error = ErrorObject::new(jsonrpc::INVALID_REQUEST, "Message too large");
            let _ = out_tx.send(jsonrpc::error_response(None, &error)).await;
            continue;
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let faults = &server.config().faults;
        // Fault `null-id-rejection`: a null id is read as the string "null", so the request is served.
        let line = match std::str::from_utf8(&line) {
            Ok(text) if faults.is_on("null-id-rejection") => {
                text.replace("\"id\":null", "\"id\":\"null\"").into_bytes()
            }
            _ => line,
        };
        // Fault `batch-rejection`: batches are accepted whatever the revision.
        let allow_batch =
            session.as_ref().is_some_and(|s| s.protocol_version.allows_batches()) || faults.is_on("batch-rejection");
        let messages = match jsonrpc::parse(&line, server.parse_limits(), allow_batch) {
            Err(mut rejection) => {
                // Fault `parse-error-code`: malformed JSON gets -32603 instead of -32700.
                if rejection.error.code == jsonrpc::PARSE_ERROR && faults.is_on("parse-error-code") {
                    rejection.error.code = jsonrpc::INTERNAL_ERROR;
                }
                let _ = out_tx.send(rejection.to_response()).await;
                continue;
            }
            Ok(Incoming::Single(m)) => vec![Ok(m)],
            // Batches (2025-03-26) are answered element by element on stdio.
            Ok(Incoming::Batch(items)) => items,
        };
        for message in messages {
            let message = match message {
                Ok(m) => m,
                Err(rejection) => {
                    let _ = out_tx.send(rejection.to_response()).await;
                    continue;
                }
            };
            dispatch(&server, &mut session, message, &out_tx, &mut tasks).await;
        }
        while tasks.try_join_next().is_some() {}
    }
    // End of input: let in-flight requests finish (each is bounded by the tool timeout).
    while tasks.join_next().await.is_some() {}
    if let Some(s) = session {
        server.end_session(&s, "stdio closed");
    }
    drop(out_tx);
    let _ = writer.await;
    Ok(())
}

async fn dispatch(
    server: &McpServer,
    session: &mut Option<Arc<Session>>,
    message: Message,
    out: &mpsc::Sender<Value>,
    tasks: &mut JoinSet<()>,
) {
    match message {
        Message::Request(req) if req.method == "initialize" => {
            let reply = if session.is_some() {
                let e = ErrorObject::new(jsonrpc::INVALID_REQUEST, "Session is already initialized");
                jsonrpc::error_response(Some(&req.id), &e)
            } else {
                match server.initialize(&req, Principal::anonymous()) {
                    Ok((new, result)) => {
                        if server.start_session(&new).is_err() {
                            let e = ErrorObject::new(jsonrpc::INTERNAL_ERROR, "Too many sessions");
                            jsonrpc::error_response(Some(&req.id), &e)
                        } else {
                            *session = Some(new);
                            jsonrpc::result_response(&req.id, result)
                        }
                    }
                    Err(e) => jsonrpc::error_response(Some(&req.id), &e),
                }
            };
            let _ = out.send(reply).await;
        }
        Message::Request(req) => {
            // Fault `initialize-first`: requests before initialize get a throwaway session.
            if session.is_none() && server.config().faults.is_on("initialize-first") {
                let fake = Session::new(ProtocolVersion::LATEST, Principal::anonymous(), serde_json::json!({}));
                *session = Some(Arc::new(fake));
            }
            let Some(s) = session.clone() else {
                let reply = if req.method == "ping" {
                    jsonrpc::result_response(&req.id, serde_json::json!({}))
                } else {
                    let e = ErrorObject::new(jsonrpc::NOT_INITIALIZED, "Server not initialized: send initialize first");
                    jsonrpc::error_response(Some(&req.id), &e)
                };
                let _ = out.send(reply).await;
                return;
            };
            let server = server.clone();
            let out = out.clone();
            let version: ProtocolVersion = s.protocol_version;
            tasks.spawn(async move {
                let handled = server.handle_request(&s, req, out.clone(), version).await;
                let _ = out.send(handled.response).await;
            });
        }
        Message::Notification(n) => {
            if let Some(s) = session {
                server.handle_notification(s, &n);
            }
        }
        Message::Response(r) => {
            if let Some(s) = session {
                s.deliver_response(&r.id.to_json(), r.outcome);
            }
        }
    }
}
