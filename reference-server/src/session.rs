//! Sessions: unguessable ids, the negotiated protocol state, and the channel back to the client.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parking_lot::Mutex;
use rand::TryRngCore as _;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::auth::Principal;
use crate::protocol::ProtocolVersion;

/// A fresh session id: 256 bits from the operating system's CSPRNG, base64url without padding
/// (43 characters, all visible ASCII).
pub fn new_session_id() -> String {
    let mut bytes = [0u8; 32];
    // The OS generator failing is unrecoverable for a server that must mint secrets.
    #[allow(clippy::expect_used)] // reason: no safe fallback exists for a broken OS CSPRNG
    rand::rngs::OsRng.try_fill_bytes(&mut bytes).expect("operating system random generator failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The session id the fault switches `session-entropy` (sequential, guessable ids) and
/// `session-id-charset` (a space inside the id) ask for; `None` when neither is on.
pub fn faulty_session_id(faults: &crate::faults::Faults) -> Option<String> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    if faults.is_on("session-entropy") {
        return Some(format!("session-{:08}", NEXT.fetch_add(1, Ordering::Relaxed)));
    }
    faults.is_on("session-id-charset").then(|| format!("sid {}", new_session_id()))
}

/// A short, non-reversible label for logs and the audit trail: session ids are bearer
/// secrets within their principal, so they are never written out whole.
pub fn session_label(id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.as_bytes());
    hex::encode(&digest[..6])
}

/// Severity levels of `notifications/message` (RFC 5424 order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl LogLevel {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "debug" => Self::Debug,
            "info" => Self::Info,
            "notice" => Self::Notice,
            "warning" => Self::Warning,
            "error" => Self::Error,
            "critical" => Self::Critical,
            "alert" => Self::Alert,
            "emergency" => Self::Emergency,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Notice => "notice",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
            Self::Alert => "alert",
            Self::Emergency => "emergency",
        }
    }
}

/// One client's negotiated state.
pub struct Session {
    pub id: String,
    pub protocol_version: ProtocolVersion,
    /// The principal that created the session; every later request must be made by it.
    pub principal: Principal,
    pub client_capabilities: Value,
    initialized: AtomicBool,
    closed: AtomicBool,
    log_level: Mutex<LogLevel>,
    next_request_id: AtomicU64,
    next_event_id: AtomicU64,
    pending: Mutex<HashMap<String, oneshot::Sender<Result<Value, Value>>>>,
    subscriptions: Mutex<HashSet<String>>,
    last_seen: Mutex<Instant>,
    /// Messages that belong to no request (resource updates), read by the standalone GET stream.
    standalone_tx: mpsc::Sender<Value>,
    standalone_rx: Mutex<Option<mpsc::Receiver<Value>>>,
    closed_notify: tokio::sync::Notify,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &session_label(&self.id))
            .field("protocol_version", &self.protocol_version)
            .field("principal", &self.principal.id)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub fn new(protocol_version: ProtocolVersion, principal: Principal, client_capabilities: Value) -> Self {
        let (standalone_tx, standalone_rx) = mpsc::channel(64);
        Self {
            id: new_session_id(),
            protocol_version,
            principal,
            client_capabilities,
            initialized: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            log_level: Mutex::new(LogLevel::Info),
            next_request_id: AtomicU64::new(1),
            next_event_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            subscriptions: Mutex::new(HashSet::new()),
            last_seen: Mutex::new(Instant::now()),
            standalone_tx,
            standalone_rx: Mutex::new(Some(standalone_rx)),
            closed_notify: tokio::sync::Notify::new(),
        }
    }

    /// Rebuilds, on another replica, a session another replica created: same id, version,
    /// principal and client capabilities, already initialized. Live state (pending requests,
    /// streams, subscriptions, log level) is per replica and starts afresh.
    pub fn restore(id: String, protocol_version: ProtocolVersion, principal: Principal, caps: Value) -> Self {
        let session = Self { id, ..Self::new(protocol_version, principal, caps) };
        session.mark_initialized();
        session
    }

    /// The client sent `notifications/initialized`.
    pub fn mark_initialized(&self) {
        self.initialized.store(true, Ordering::Release);
    }

    pub fn is_initialized(&self) -> bool {
        self.initialized.load(Ordering::Acquire)
    }

    pub fn touch(&self) {
        *self.last_seen.lock() = Instant::now();
    }

    pub fn idle_for(&self) -> Duration {
        self.last_seen.lock().elapsed()
    }

    pub fn log_level(&self) -> LogLevel {
        *self.log_level.lock()
    }

    pub fn set_log_level(&self, level: LogLevel) {
        *self.log_level.lock() = level;
    }

    /// Whether the client declared `capability` (for example `sampling`, `elicitation`) at
    /// initialization. The server must not send requests the client cannot handle.
    pub fn client_supports(&self, capability: &str) -> bool {
        self.client_capabilities.get(capability).is_some_and(|v| !v.is_null())
    }

    pub fn subscribe(&self, uri: &str) {
        self.subscriptions.lock().insert(uri.to_owned());
    }

    pub fn unsubscribe(&self, uri: &str) -> bool {
        self.subscriptions.lock().remove(uri)
    }

    /// A new SSE event id, unique across every stream of this session.
    pub fn next_event_id(&self) -> String {
        format!("{}", self.next_event_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Restarts event numbering (fault `sse-event-ids` only: ids then repeat across streams).
    pub fn restart_event_ids(&self) {
        self.next_event_id.store(1, Ordering::Relaxed);
    }

    /// Delivers a client's response to a request this session sent. Returns false if no such
    /// request is pending (unknown or already answered id).
    pub fn deliver_response(&self, id: &Value, outcome: Result<Value, Value>) -> bool {
        let key = match id {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return false,
        };
        match self.pending.lock().remove(&key) {
            Some(tx) => tx.send(outcome).is_ok(),
            None => false,
        }
    }

    /// Takes the receiver of the standalone stream; only one GET stream may hold it at a time.
    pub fn take_standalone(&self) -> Option<mpsc::Receiver<Value>> {
        self.standalone_rx.lock().take()
    }

    /// Gives the receiver back when the GET stream ends.
    pub fn return_standalone(&self, rx: mpsc::Receiver<Value>) {
        if !self.is_closed() {
            *self.standalone_rx.lock() = Some(rx);
        }
    }

    /// Queues a message for the standalone stream; dropped if nobody listens and the queue is full.
    pub fn send_standalone(&self, message: Value) {
        let _ = self.standalone_tx.try_send(message);
    }

    /// Ends the session: pending requests fail, streams close.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.pending.lock().clear();
        self.standalone_rx.lock().take();
        self.closed_notify.notify_waiters();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Resolves when the session is closed.
    pub async fn closed(&self) {
        let notified = self.closed_notify.notified();
        if self.is_closed() {
            return;
        }
        notified.await;
    }
}

/// Why a request to the client did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("the client did not declare the `{0}` capability")]
    Unsupported(&'static str),
    #[error("the client did not answer in time")]
    Timeout,
    #[error("the connection to the client is closed")]
    Closed,
    #[error("the client answered with an error")]
    Rejected(Value),
}

/// The way back to the client for one request: notifications and server-to-client requests
/// sent here travel on that request's response stream.
#[derive(Clone)]
pub struct Peer {
    out: mpsc::Sender<Value>,
    session: Arc<Session>,
    timeout: Duration,
}

impl Peer {
    pub fn new(out: mpsc::Sender<Value>, session: Arc<Session>, timeout: Duration) -> Self {
        Self { out, session, timeout }
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// Sends a notification; silently dropped if the stream is gone.
    pub async fn notify(&self, method: &str, params: Value) {
        let _ = self.out.send(json!({ "jsonrpc": "2.0", "method": method, "params": params })).await;
    }

    /// Sends `notifications/message` if `level` is at or above the session's level.
    pub async fn log(&self, level: LogLevel, logger: &str, data: Value) {
        if level >= self.session.log_level() {
            self.notify("notifications/message", json!({ "level": level.as_str(), "logger": logger, "data": data }))
                .await;
        }
    }

    /// Sends a request to the client and waits for its answer. `capability` is the client
    /// capability the method needs (`sampling`, `elicitation`, `roots`).
    pub async fn request(&self, capability: &'static str, method: &str, params: Value) -> Result<Value, PeerError> {
        if !self.session.client_supports(capability) {
            return Err(PeerError::Unsupported(capability));
        }
        let n = self.session.next_request_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("srv-{n}");
        let (tx, rx) = oneshot::channel();
        self.session.pending.lock().insert(id.clone(), tx);
        let message = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        if self.out.send(message).await.is_err() {
            self.session.pending.lock().remove(&id);
            return Err(PeerError::Closed);
        }
        let outcome = tokio::time::timeout(self.timeout, rx).await;
        self.session.pending.lock().remove(&id);
        match outcome {
            Err(_) => Err(PeerError::Timeout),
            Ok(Err(_)) => Err(PeerError::Closed),
            Ok(Ok(Ok(result))) => Ok(result),
            Ok(Ok(Err(error))) => Err(PeerError::Rejected(error)),
        }
    }
}

/// The key of a session in the shared store: hex SHA-256 of its id, so the store (and anyone
/// who can read it) never holds the bearer id itself.
pub fn session_hash(id: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// What another replica needs to accept a session: who owns it and what was negotiated. Stored
/// as JSON under [`session_hash`]; live channels are never shared.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionRecord {
    /// Format version, so that a rolling upgrade can refuse records it does not understand.
    pub v: u8,
    pub principal: Principal,
    pub protocol_version: String,
    pub client_capabilities: Value,
}

/// Why a stored session record could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("session record is not valid JSON of the expected shape")]
    Malformed,
    #[error("session record has an unknown format version")]
    UnknownVersion,
    #[error("session record names an unsupported protocol version")]
    UnsupportedProtocol,
}

impl SessionRecord {
    const FORMAT: u8 = 1;

    pub fn of(session: &Session) -> Self {
        Self {
            v: Self::FORMAT,
            principal: session.principal.clone(),
            protocol_version: session.protocol_version.as_str().to_owned(),
            client_capabilities: session.client_capabilities.clone(),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain strings and a JSON value cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let record: Self = serde_json::from_slice(bytes).map_err(|_| RecordError::Malformed)?;
        if record.v != Self::FORMAT {
            return Err(RecordError::UnknownVersion);
        }
        Ok(record)
    }

    /// The session this record describes, under `id` (whose hash the record was stored at).
    pub fn restore(self, id: String) -> Result<Session, RecordError> {
        let version = ProtocolVersion::parse(&self.protocol_version).ok_or(RecordError::UnsupportedProtocol)?;
        Ok(Session::restore(id, version, self.principal, self.client_capabilities))
    }
}

/// Why a session could not be created or used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("too many sessions")]
    Full,
}

/// Live sessions, bounded in number and idle time.
pub struct SessionStore {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    max: usize,
    idle: Duration,
}

impl SessionStore {
    pub fn new(max: usize, idle: Duration) -> Self {
        Self { sessions: Mutex::new(HashMap::new()), max, idle }
    }

    /// Stores a session. Expired sessions are dropped first; if the table is still full the
    /// new one is refused rather than evicting a live client.
    pub fn insert(&self, session: Arc<Session>) -> Result<(), SessionError> {
        let mut map = self.sessions.lock();
        self.insert_into(&mut map, session)
    }

    fn insert_into(&self, map: &mut HashMap<String, Arc<Session>>, session: Arc<Session>) -> Result<(), SessionError> {
        if map.len() >= self.max {
            let idle = self.idle;
            map.retain(|_, s| {
                let keep = s.idle_for() < idle && !s.is_closed();
                if !keep {
                    s.close();
                }
                keep
            });
        }
        if map.len() >= self.max {
            return Err(SessionError::Full);
        }
        if let Some(old) = map.insert(session.id.clone(), session) {
            old.close();
        }
        Ok(())
    }

    /// Stores a session unless one with its id is live already, and returns the one kept: two
    /// requests restoring the same shared session at once end up with one local copy.
    pub fn insert_or_get(&self, session: Arc<Session>) -> Result<Arc<Session>, SessionError> {
        let mut map = self.sessions.lock();
        if let Some(existing) = map.get(&session.id).filter(|s| s.idle_for() < self.idle && !s.is_closed()) {
            existing.touch();
            return Ok(existing.clone());
        }
        self.insert_into(&mut map, session.clone())?;
        Ok(session)
    }

    /// A live session by id. Expired sessions are ended on the way.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        let mut map = self.sessions.lock();
        let session = map.get(id)?.clone();
        if session.idle_for() >= self.idle || session.is_closed() {
            map.remove(id);
            session.close();
            return None;
        }
        session.touch();
        Some(session)
    }

    /// Ends a session. Returns false if it did not exist.
    pub fn remove(&self, id: &str) -> bool {
        match self.sessions.lock().remove(id) {
            Some(s) => {
                s.close();
                true
            }
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_43_visible_ascii_chars_and_distinct() {
        let ids: HashSet<String> = (0..1000).map(|_| new_session_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.len(), 43);
            assert!(id.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        }
    }

    #[test]
    fn records_round_trip_and_restore_under_the_same_id() {
        let mut original = Session::new(ProtocolVersion::LATEST, Principal::admin("ops"), json!({ "sampling": {} }));
        original.id = "sid-1".into();
        let bytes = SessionRecord::of(&original).to_bytes();
        let restored =
            SessionRecord::from_bytes(&bytes).and_then(|r| r.restore("sid-1".into())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(restored.id, "sid-1");
        assert_eq!(restored.protocol_version, ProtocolVersion::LATEST);
        assert_eq!(restored.principal, Principal::admin("ops"));
        assert!(restored.client_supports("sampling"));
        assert!(restored.is_initialized());
        assert!(!String::from_utf8_lossy(&bytes).contains("sid-1"), "the id is not part of the record");
    }

    #[test]
    fn bad_records_are_refused() {
        assert_eq!(SessionRecord::from_bytes(b"nope"), Err(RecordError::Malformed));
        let mut r = SessionRecord::of(&Session::new(ProtocolVersion::LATEST, Principal::anonymous(), json!({})));
        r.v = 9;
        assert_eq!(SessionRecord::from_bytes(&r.to_bytes()), Err(RecordError::UnknownVersion));
        r.v = 1;
        r.protocol_version = "1999-01-01".into();
        let r = SessionRecord::from_bytes(&r.to_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(r.restore("x".into()), Err(RecordError::UnsupportedProtocol)));
    }

    #[test]
    fn insert_or_get_keeps_the_first_live_copy() {
        let store = SessionStore::new(4, Duration::from_secs(60));
        let first = Arc::new(Session::restore("s".into(), ProtocolVersion::LATEST, Principal::anonymous(), json!({})));
        let second = Arc::new(Session::restore("s".into(), ProtocolVersion::LATEST, Principal::anonymous(), json!({})));
        let kept = store.insert_or_get(first.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert!(Arc::ptr_eq(&kept, &first));
        let kept = store.insert_or_get(second).unwrap_or_else(|e| panic!("{e}"));
        assert!(Arc::ptr_eq(&kept, &first));
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn session_hash_is_hex_sha256() {
        let h = session_hash("abc");
        assert_eq!(h.len(), 64);
        assert_ne!(h, session_hash("abd"));
        assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn store_refuses_when_full_and_forgets_removed() {
        let store = SessionStore::new(1, Duration::from_secs(60));
        let a = Arc::new(Session::new(ProtocolVersion::LATEST, Principal::anonymous(), json!({})));
        let id = a.id.clone();
        store.insert(a).unwrap_or_else(|e| panic!("{e}"));
        let b = Arc::new(Session::new(ProtocolVersion::LATEST, Principal::anonymous(), json!({})));
        assert_eq!(store.insert(b), Err(SessionError::Full));
        assert!(store.remove(&id));
        assert!(store.get(&id).is_none());
    }
}
