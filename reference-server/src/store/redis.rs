//! Redis-backed [`SharedStore`]: several replicas pointed at one Redis act as one server.
//!
//! Each operation is one Redis command or one Lua script, so it is atomic across replicas: a
//! GCRA step reads and writes the TAT in one script using the server's `TIME` (replicas' clocks
//! do not matter), and codes and refresh tokens are taken (read and deleted) in one script.
//!
//! Every call is bounded by a short timeout (default 500 ms) and every failure maps to a
//! [`StoreError`], so a dead or hung Redis makes callers fail closed quickly rather than hang or
//! allow. The [`ConnectionManager`] reconnects by itself: it is configured with no internal retry
//! loop, so while Redis is down each call fails at once and triggers one new connection attempt,
//! and the first calls after Redis returns succeed again.
//!
//! A timeout leaves the outcome unknown: a frozen Redis may still run the queued command when it
//! resumes. Every such case errs on the closed side: a rate-limit cell may be spent on a request
//! that was refused, a code or refresh token may be consumed without being handed out, and a
//! revocation the caller saw fail may still take effect.
//!
//! The scripts need Redis 5 or later (they turn on effect replication where that is not the
//! default) and use only string and hash commands.

use std::future::Future;
use std::time::{Duration, SystemTime};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{ErrorKind, RedisError, RedisResult, Script};
use futures_util::FutureExt;

use super::{GcraDecision, GcraParams, Kind, SharedStore, StoreError, StoreFuture, normalize_id, ttl_millis};

/// Connection and naming options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// Key prefix: keys are `{namespace}:{kind}:{id}`. Distinct deployments sharing one Redis
    /// need distinct namespaces.
    pub namespace: String,
    /// Bound on every call, including waiting for a reconnection.
    pub call_timeout: Duration,
    /// Bound on the first connection made by [`RedisStore::connect_with`].
    pub connect_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            namespace: "mcproof".to_owned(),
            call_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(2),
        }
    }
}

/// GCRA step. KEYS[1] = TAT key; ARGV[1] = emission interval (µs); ARGV[2] = tolerance (µs).
/// Returns `{1, 0}` (allow) or `{0, wait_µs}` (deny). Times are microseconds of server time;
/// they stay below 2^53, so doubles hold them exactly, and they are written with `%.0f`
/// because `tostring` would round them to 14 digits. The key expires when its TAT passes, when
/// it is indistinguishable from an absent key.
const GCRA_LUA: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat == nil then return redis.error_reply('CORRUPT rate-limit state') end
if tat < now then tat = now end
local wait = tat - now - tau
if wait > 0 then return {0, wait} end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, 0}
";

/// Atomic get-and-delete of a string (GETDEL without needing Redis 6.2).
const TAKE_LUA: &str = r"
local v = redis.call('GET', KEYS[1])
if v then redis.call('DEL', KEYS[1]) end
return v
";

/// Stores a hash `{r = record, t = idle ttl ms}` (sessions) or `{r = record, f = family}`
/// (refresh tokens) with an expiry of ARGV[3] ms, replacing any earlier value.
const PUT_HASH_LUA: &str = r"
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'r', ARGV[1], ARGV[4], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

/// Reads a session and restarts its idle timer with the TTL stored beside it.
const GET_SESSION_LUA: &str = r"
local v = redis.call('HMGET', KEYS[1], 'r', 't')
if not v[1] then return false end
local ttl = tonumber(v[2])
if not ttl then return redis.error_reply('CORRUPT session state') end
redis.call('PEXPIRE', KEYS[1], ttl)
return v[1]
";

/// Takes a refresh token: returns `{family, record}` and deletes it, or nil.
const TAKE_REFRESH_LUA: &str = r"
local v = redis.call('HMGET', KEYS[1], 'f', 'r')
if not v[1] then return false end
redis.call('DEL', KEYS[1])
if not v[2] then return redis.error_reply('CORRUPT refresh-token state') end
return {v[1], v[2]}
";

/// Scripts are hashed once; `invoke_async` sends `EVALSHA` and loads the script on `NOSCRIPT`
/// (after a Redis restart, for example).
struct Scripts {
    gcra: Script,
    take: Script,
    put_hash: Script,
    get_session: Script,
    take_refresh: Script,
}

/// The Redis [`SharedStore`]. Clone-free sharing: put it in an `Arc`; the connection inside is
/// multiplexed, so concurrent calls share one TCP connection.
pub struct RedisStore {
    conn: ConnectionManager,
    scripts: Scripts,
    namespace: String,
    call_timeout: Duration,
    /// `host:port/db` without credentials, for logs.
    endpoint: String,
}

impl std::fmt::Debug for RedisStore {
    /// The URL's credentials stay out: only the endpoint and options are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("endpoint", &self.endpoint)
            .field("namespace", &self.namespace)
            .field("call_timeout", &self.call_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects with [`RedisOptions::default`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, RedisOptions::default()).await
    }

    /// Connects to a `redis://[user:password@]host[:port][/db]` URL. Fails (rather than starting
    /// without shared state) when Redis does not answer within `connect_timeout`.
    pub async fn connect_with(url: &str, options: RedisOptions) -> Result<Self, StoreError> {
        let endpoint = redacted_endpoint(url)?;
        let client = ::redis::Client::open(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid Redis URL ({})", e.category())))?;
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(options.call_timeout)
            .set_response_timeout(options.call_timeout);
        let conn =
            match tokio::time::timeout(options.connect_timeout, ConnectionManager::new_with_config(client, config))
                .await
            {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => return Err(map_error("connect", &e)),
                Err(_) => {
                    return Err(StoreError::Unavailable(format!(
                        "connect: no answer from {endpoint} within {:?}",
                        options.connect_timeout
                    )));
                }
            };
        let store = RedisStore {
            conn,
            scripts: Scripts {
                gcra: Script::new(GCRA_LUA),
                take: Script::new(TAKE_LUA),
                put_hash: Script::new(PUT_HASH_LUA),
                get_session: Script::new(GET_SESSION_LUA),
                take_refresh: Script::new(TAKE_REFRESH_LUA),
            },
            namespace: options.namespace,
            call_timeout: options.call_timeout,
            endpoint,
        };
        // Load the scripts now so that a server without Lua support fails at start-up.
        let mut conn = store.conn.clone();
        for script in [
            &store.scripts.gcra,
            &store.scripts.take,
            &store.scripts.put_hash,
            &store.scripts.get_session,
            &store.scripts.take_refresh,
        ] {
            store.bounded("load script", script.prepare_invoke().load_async(&mut conn)).await?;
        }
        Ok(store)
    }

    /// `host:port/db` of the server, without credentials.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn key(&self, kind: Kind, id: &str) -> String {
        format!("{}:{}:{}", self.namespace, kind.as_str(), normalize_id(id))
    }

    /// Runs one Redis exchange under the call timeout and maps its error.
    async fn bounded<T>(&self, what: &'static str, fut: impl Future<Output = RedisResult<T>>) -> Result<T, StoreError> {
        match tokio::time::timeout(self.call_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(map_error(what, &e)),
            Err(_) => Err(StoreError::Unavailable(format!("{what}: no answer within {:?}", self.call_timeout))),
        }
    }

    async fn set_px(&self, what: &'static str, key: String, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let cmd = ::redis::cmd("SET").arg(key).arg(value).arg("PX").arg(ttl_millis(ttl)).to_owned();
        self.bounded(what, cmd.query_async::<()>(&mut conn)).await
    }

    async fn exists(&self, what: &'static str, key: String) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let n: i64 = self.bounded(what, ::redis::cmd("EXISTS").arg(key).query_async(&mut conn)).await?;
        Ok(n > 0)
    }

    async fn put_hash(
        &self,
        what: &'static str,
        key: String,
        record: &[u8],
        second: (&str, &[u8]),
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let mut call = self.scripts.put_hash.key(key);
        call.arg(record).arg(second.1).arg(ttl_millis(ttl)).arg(second.0);
        self.bounded(what, call.invoke_async::<()>(&mut conn)).await
    }

    async fn gcra_async(&self, key: &str, emission_interval: Duration, burst: u32) -> Result<GcraDecision, StoreError> {
        let p = GcraParams::new(emission_interval, burst);
        let mut conn = self.conn.clone();
        let mut call = self.scripts.gcra.key(self.key(Kind::Rate, key));
        call.arg(p.interval.as_micros().to_string()).arg(p.tolerance.as_micros().to_string());
        let reply: Vec<i64> = self.bounded("rate limit", call.invoke_async(&mut conn)).await?;
        match reply.as_slice() {
            [1, _] => Ok(GcraDecision::Allow),
            [0, wait] if *wait > 0 => {
                Ok(GcraDecision::Deny { retry_after: Duration::from_micros(wait.unsigned_abs()) })
            }
            _ => Err(StoreError::Corrupt("rate limit: unexpected script reply".into())),
        }
    }

    async fn get_session_async(&self, id_hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut conn = self.conn.clone();
        let call = self.scripts.get_session.key(self.key(Kind::Session, id_hash));
        self.bounded("get session", call.invoke_async(&mut conn)).await
    }
}

/// Keeps `host:port/db` of a `redis://` URL and drops credentials and query.
fn redacted_endpoint(url: &str) -> Result<String, StoreError> {
    let parsed = url::Url::parse(url).map_err(|_| StoreError::Unavailable("invalid Redis URL".into()))?;
    if parsed.scheme() != "redis" {
        return Err(StoreError::Unavailable(format!(
            "unsupported Redis URL scheme {:?} (only redis:// is built in)",
            parsed.scheme()
        )));
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| StoreError::Unavailable("Redis URL has no host".into()))?;
    let port = parsed.port().unwrap_or(6379);
    Ok(format!("{host}:{port}{}", parsed.path()))
}

/// Maps a client error without its detail text (which can quote values): state the backend
/// never writes is `Corrupt`; everything else means "cannot answer now".
fn map_error(what: &str, e: &RedisError) -> StoreError {
    let code = e.code();
    if e.kind() == ErrorKind::TypeError || matches!(code, Some("WRONGTYPE" | "CORRUPT")) {
        return StoreError::Corrupt(format!("{what}: {}", code.unwrap_or("unexpected reply type")));
    }
    let reason = if e.is_connection_refusal() {
        "connection refused".to_owned()
    } else if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connection_dropped() {
        "connection dropped".to_owned()
    } else if e.is_io_error() {
        "I/O error".to_owned()
    } else {
        match code {
            Some(code) => format!("{} ({code})", e.category()),
            None => e.category().to_owned(),
        }
    };
    StoreError::Unavailable(format!("{what}: {reason}"))
}

impl SharedStore for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        async move {
            let mut conn = self.conn.clone();
            let pong: String = self.bounded("ping", ::redis::cmd("PING").query_async(&mut conn)).await?;
            if pong == "PONG" { Ok(()) } else { Err(StoreError::Corrupt("ping: unexpected reply".into())) }
        }
        .boxed()
    }

    fn gcra<'a>(&'a self, key: &'a str, emission_interval: Duration, burst: u32) -> StoreFuture<'a, GcraDecision> {
        self.gcra_async(key, emission_interval, burst).boxed()
    }

    fn put_code<'a>(&'a self, code_hash: &'a str, record: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()> {
        self.set_px("put code", self.key(Kind::Code, code_hash), record, ttl).boxed()
    }

    fn take_code<'a>(&'a self, code_hash: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        async move {
            let mut conn = self.conn.clone();
            let call = self.scripts.take.key(self.key(Kind::Code, code_hash));
            self.bounded("take code", call.invoke_async(&mut conn)).await
        }
        .boxed()
    }

    fn put_session<'a>(&'a self, id_hash: &'a str, record: &'a [u8], idle_ttl: Duration) -> StoreFuture<'a, ()> {
        async move {
            let ttl = ttl_millis(idle_ttl).to_string();
            let key = self.key(Kind::Session, id_hash);
            self.put_hash("put session", key, record, ("t", ttl.as_bytes()), idle_ttl).await
        }
        .boxed()
    }

    fn get_session<'a>(&'a self, id_hash: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        self.get_session_async(id_hash).boxed()
    }

    fn delete_session<'a>(&'a self, id_hash: &'a str) -> StoreFuture<'a, bool> {
        async move {
            let mut conn = self.conn.clone();
            let key = self.key(Kind::Session, id_hash);
            let n: i64 = self.bounded("delete session", ::redis::cmd("DEL").arg(key).query_async(&mut conn)).await?;
            Ok(n > 0)
        }
        .boxed()
    }

    fn put_refresh<'a>(
        &'a self,
        token_hash: &'a str,
        family_id: &'a str,
        record: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        let key = self.key(Kind::Refresh, token_hash);
        self.put_hash("put refresh token", key, record, ("f", family_id.as_bytes()), ttl).boxed()
    }

    fn take_refresh<'a>(&'a self, token_hash: &'a str) -> StoreFuture<'a, Option<(String, Vec<u8>)>> {
        async move {
            let mut conn = self.conn.clone();
            let call = self.scripts.take_refresh.key(self.key(Kind::Refresh, token_hash));
            self.bounded("take refresh token", call.invoke_async(&mut conn)).await
        }
        .boxed()
    }

    fn revoke_family<'a>(&'a self, family_id: &'a str, ttl: Duration) -> StoreFuture<'a, ()> {
        self.set_px("revoke family", self.key(Kind::Family, family_id), b"1", ttl).boxed()
    }

    fn family_revoked<'a>(&'a self, family_id: &'a str) -> StoreFuture<'a, bool> {
        self.exists("family revoked", self.key(Kind::Family, family_id)).boxed()
    }

    fn revoke_jti<'a>(&'a self, jti: &'a str, until: SystemTime) -> StoreFuture<'a, ()> {
        async move {
            match until.duration_since(SystemTime::now()) {
                Ok(remaining) if !remaining.is_zero() => {
                    self.set_px("revoke jti", self.key(Kind::Jti, jti), b"1", remaining).await
                }
                _ => Ok(()),
            }
        }
        .boxed()
    }

    fn jti_revoked<'a>(&'a self, jti: &'a str) -> StoreFuture<'a, bool> {
        self.exists("jti revoked", self.key(Kind::Jti, jti)).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_drops_credentials() -> Result<(), StoreError> {
        assert_eq!(redacted_endpoint("redis://user:hunter2@127.0.0.1:6380/2")?, "127.0.0.1:6380/2");
        assert_eq!(redacted_endpoint("redis://localhost")?, "localhost:6379");
        assert!(redacted_endpoint("rediss://localhost").is_err());
        assert!(redacted_endpoint("http://localhost").is_err());
        assert!(redacted_endpoint("not a url").is_err());
        Ok(())
    }

    #[test]
    fn errors_carry_no_detail_text() {
        let e = RedisError::from((ErrorKind::TypeError, "bad", "value secret-record".to_owned()));
        let mapped = map_error("take code", &e);
        assert!(matches!(mapped, StoreError::Corrupt(_)));
        assert!(!mapped.to_string().contains("secret"));
        let io = RedisError::from(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "nope"));
        assert_eq!(map_error("ping", &io), StoreError::Unavailable("ping: connection refused".into()));
    }

    #[tokio::test]
    async fn connecting_to_a_closed_port_fails_promptly() -> Result<(), StoreError> {
        // Bind then drop to find a port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .port();
        let started = std::time::Instant::now();
        let r = RedisStore::connect(&format!("redis://127.0.0.1:{port}")).await;
        assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
        Ok(())
    }
}
