//! Server-Sent Events framing for the POST response streams and the standalone GET stream.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{self, HeaderValue};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::jsonrpc;
use crate::server::Handled;
use crate::session::Session;

const KEEPALIVE: Duration = Duration::from_secs(15);

/// One SSE event carrying a JSON-RPC message, with a session-unique id.
fn event(session: &Session, message: &Value) -> Bytes {
    Bytes::from(format!("id: {}\nevent: message\ndata: {}\n\n", session.next_event_id(), message))
}

/// The priming event: an id and empty data, so a client has an id to resume from.
fn priming(session: &Session) -> Bytes {
    Bytes::from(format!("id: {}\ndata: \n\n", session.next_event_id()))
}

fn sse_response(body: axum::body::Body) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store"));
    response
}

/// The stream for one POST request: priming event, every message the request emits, then its
/// response; then the stream ends.
pub fn request_stream(
    session: Arc<Session>,
    first: Value,
    mut messages: mpsc::Receiver<Value>,
    task: JoinHandle<Handled>,
) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(32);
    tokio::spawn(async move {
        // Send failures mean the client went away; the handler still runs to completion
        // (bounded by the tool timeout) so that its side effects and audit record are whole.
        let _ = tx.send(priming(&session)).await;
        let _ = tx.send(event(&session, &first)).await;
        while let Some(message) = messages.recv().await {
            let _ = tx.send(event(&session, &message)).await;
        }
        let response = match task.await {
            Ok(handled) => handled.response,
            Err(_) => {
                tracing::error!("request handler failed");
                jsonrpc::error_response(None, &jsonrpc::ErrorObject::internal())
            }
        };
        let _ = tx.send(event(&session, &response)).await;
    });
    sse_response(super::body_from(rx))
}

/// The standalone GET stream: messages not tied to a request, with keep-alive comments, until
/// the session ends or the client disconnects (then the session gets its receiver back).
pub fn standalone_stream(session: Arc<Session>, mut messages: mpsc::Receiver<Value>) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(32);
    tokio::spawn(async move {
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.tick().await;
        if tx.send(priming(&session)).await.is_ok() {
            loop {
                let chunk = tokio::select! {
                    message = messages.recv() => match message {
                        Some(m) => event(&session, &m),
                        None => break,
                    },
                    _ = keepalive.tick() => Bytes::from_static(b": keep-alive\n\n"),
                    () = session.closed() => break,
                    // The client went away: give the stream back to the session at once.
                    () = tx.closed() => break,
                };
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
        }
        session.return_standalone(messages);
    });
    sse_response(super::body_from(rx))
}
