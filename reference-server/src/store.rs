//! Shared state behind one trait: in memory for a single server, in Redis when several replicas
//! must act as one (rate limits, one-time authorization codes, session metadata, refresh-token
//! families, access-token revocations).
//!
//! Every method returns `Result<_, StoreError>` so that callers can **fail closed**: when the
//! backend is unreachable a rate check is not an "allow", a code cannot be redeemed and a
//! revocation lookup is not a "not revoked". Callers pass hashes or opaque ids, never raw secrets;
//! the store namespaces them (`mcproof:{kind}:{id}`) and bounds their length ([`normalize_id`]).
//!
//! Expiry is part of the contract: an expired entry is indistinguishable from an absent one in
//! both backends, so memory can be reclaimed at any time without changing a decision.

pub mod memory;
pub mod redis;

use std::borrow::Cow;
use std::time::Duration;

use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};

pub use self::redis::{RedisOptions, RedisStore};
pub use memory::{MemoryLimits, MemoryStore};

/// The future every [`SharedStore`] method returns: boxed so that the trait is usable as
/// `dyn SharedStore` (the server picks the backend at start-up from its configuration).
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// Why a store call failed. Both variants mean "no decision": callers must deny.
///
/// Messages never contain keys, records or connection credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot answer now (connection refused or dropped, timeout, table full of live
    /// entries that may not be forgotten). Transient: a later call may succeed.
    #[error("shared store unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with something this code never writes (wrong type or shape).
    #[error("shared store returned corrupt data: {0}")]
    Corrupt(String),
}

/// The outcome of one GCRA rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcraDecision {
    Allow,
    /// `retry_after` is the time until this key would be admitted again (never zero).
    Deny {
        retry_after: Duration,
    },
}

impl GcraDecision {
    pub fn is_allowed(self) -> bool {
        matches!(self, GcraDecision::Allow)
    }
}

/// What a replica-shared store must do. Implementations: [`MemoryStore`] (the default) and
/// [`RedisStore`]. Every operation is atomic with respect to every other caller of the same
/// backend, including other replicas.
pub trait SharedStore: Send + Sync + 'static {
    /// Backend name for logs and health output: `"memory"` or `"redis"`.
    fn backend(&self) -> &'static str;

    /// Checks that the backend answers (readiness probes).
    fn ping(&self) -> StoreFuture<'_, ()>;

    /// One GCRA step for `key`: admits exactly `burst` back-to-back requests, then one per
    /// `emission_interval`. A denial leaves the state unchanged and carries the time until the
    /// key is admitted again. Arguments are clamped as [`GcraParams::new`] says.
    fn gcra<'a>(&'a self, key: &'a str, emission_interval: Duration, burst: u32) -> StoreFuture<'a, GcraDecision>;

    /// Stores a one-time authorization code record under the code's hash for `ttl`.
    fn put_code<'a>(&'a self, code_hash: &'a str, record: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()>;

    /// Atomically removes and returns a code record: of any number of concurrent takes on any
    /// replicas, at most one gets `Some`.
    fn take_code<'a>(&'a self, code_hash: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;

    /// Stores session metadata that expires after `idle_ttl` without use. The live channels of
    /// a session stay in the process that holds them; only what another replica needs to accept
    /// the session (its principal, protocol version, ...) is stored here.
    fn put_session<'a>(&'a self, id_hash: &'a str, record: &'a [u8], idle_ttl: Duration) -> StoreFuture<'a, ()>;

    /// Returns session metadata and restarts its idle timer (the `idle_ttl` given to
    /// [`put_session`](SharedStore::put_session)).
    fn get_session<'a>(&'a self, id_hash: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;

    /// Deletes a session; `true` when it existed (and had not expired).
    fn delete_session<'a>(&'a self, id_hash: &'a str) -> StoreFuture<'a, bool>;

    /// Stores a refresh-token record, tagged with its rotation family, for `ttl`.
    fn put_refresh<'a>(
        &'a self,
        token_hash: &'a str,
        family_id: &'a str,
        record: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, ()>;

    /// Atomically removes and returns `(family_id, record)`: a refresh token rotates once. A
    /// `None` for a token the caller can otherwise authenticate signals reuse, and the caller
    /// should [`revoke_family`](SharedStore::revoke_family).
    fn take_refresh<'a>(&'a self, token_hash: &'a str) -> StoreFuture<'a, Option<(String, Vec<u8>)>>;

    /// Marks a refresh-token family revoked for `ttl` (at least the family's longest remaining
    /// token lifetime).
    fn revoke_family<'a>(&'a self, family_id: &'a str, ttl: Duration) -> StoreFuture<'a, ()>;

    /// Whether a family has been revoked (and the revocation has not expired).
    fn family_revoked<'a>(&'a self, family_id: &'a str) -> StoreFuture<'a, bool>;

    /// Revokes an access token by its `jti` until `until` (its `exp` plus any verifier leeway;
    /// after that the token is rejected as expired anyway). A past `until` stores nothing.
    fn revoke_jti<'a>(&'a self, jti: &'a str, until: std::time::SystemTime) -> StoreFuture<'a, ()>;

    /// Whether an access token's `jti` has been revoked.
    fn jti_revoked<'a>(&'a self, jti: &'a str) -> StoreFuture<'a, bool>;
}

/// Namespaces used in keys; both backends use the same names so that state is easy to inspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Rate,
    Code,
    Session,
    Refresh,
    Family,
    Jti,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Rate => "rl",
            Kind::Code => "code",
            Kind::Session => "sess",
            Kind::Refresh => "rt",
            Kind::Family => "fam",
            Kind::Jti => "jti",
        }
    }
}

/// Ids up to this many bytes of `[A-Za-z0-9._:-]` are kept verbatim (a hex or base64url
/// SHA-256 fits); anything else is replaced by a digest.
pub const MAX_ID_BYTES: usize = 96;

/// Bounds the length and alphabet of caller-supplied ids. Short ids of the safe alphabet are
/// kept verbatim; any other id becomes `~` followed by the hex SHA-256 of the id. `~` is outside
/// the verbatim alphabet, so a chosen id can never collide with the digest of another.
pub fn normalize_id(id: &str) -> Cow<'_, str> {
    let safe = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-');
    if id.len() <= MAX_ID_BYTES && id.bytes().all(safe) {
        return Cow::Borrowed(id);
    }
    Cow::Owned(format!("~{}", hex::encode(Sha256::digest(id.as_bytes()))))
}

/// GCRA parameters after clamping, shared by both backends so that they decide alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcraParams {
    /// Emission interval `T`, in `[1 µs, MAX_INTERVAL]`.
    pub interval: Duration,
    /// Burst tolerance `tau = T * (burst - 1)`, at most `MAX_TOLERANCE`.
    pub tolerance: Duration,
}

impl GcraParams {
    /// Longest emission interval (about 11.6 days): keeps Redis arithmetic exact in doubles.
    pub const MAX_INTERVAL: Duration = Duration::from_secs(1_000_000);
    /// Longest burst tolerance (about 3.2 years), for the same reason.
    pub const MAX_TOLERANCE: Duration = Duration::from_secs(100_000_000);

    /// Rounds the interval up to whole microseconds (Redis keeps microseconds), clamps it to
    /// `[1 µs, MAX_INTERVAL]`, and treats `burst == 0` as 1 (a zero burst would deny forever,
    /// which no caller means).
    pub fn new(emission_interval: Duration, burst: u32) -> Self {
        let micros = emission_interval.as_nanos().div_ceil(1000).clamp(1, Self::MAX_INTERVAL.as_micros());
        let interval = Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX));
        let extra = u64::from(burst.max(1) - 1);
        let tol_micros = u128::from(extra).saturating_mul(micros).min(Self::MAX_TOLERANCE.as_micros());
        let tolerance = Duration::from_micros(u64::try_from(tol_micros).unwrap_or(u64::MAX));
        GcraParams { interval, tolerance }
    }
}

/// A TTL in whole milliseconds for Redis `PX`: rounded up (an entry never expires early) and at
/// least 1 (Redis rejects 0), at most ten years.
pub(crate) fn ttl_millis(ttl: Duration) -> u64 {
    const TEN_YEARS_MS: u128 = 10 * 365 * 24 * 3600 * 1000;
    let ms = ttl.as_nanos().div_ceil(1_000_000).clamp(1, TEN_YEARS_MS);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_safe_ids_are_kept_and_others_are_digested() {
        assert_eq!(normalize_id("abc-DEF_0.9:x"), "abc-DEF_0.9:x");
        let long = "a".repeat(MAX_ID_BYTES + 1);
        let d = normalize_id(&long);
        assert!(d.starts_with('~') && d.len() == 65);
        let spaced = normalize_id("a b");
        assert!(spaced.starts_with('~'));
        assert_ne!(normalize_id("a b"), normalize_id("a c"));
        assert_eq!(normalize_id(&long), normalize_id(&long));
    }

    #[test]
    fn gcra_params_clamp() {
        let p = GcraParams::new(Duration::from_millis(100), 5);
        assert_eq!(p.interval, Duration::from_millis(100));
        assert_eq!(p.tolerance, Duration::from_millis(400));
        let p = GcraParams::new(Duration::ZERO, 0);
        assert_eq!(p.interval, Duration::from_micros(1));
        assert_eq!(p.tolerance, Duration::ZERO);
        let p = GcraParams::new(Duration::from_nanos(1500), 1);
        assert_eq!(p.interval, Duration::from_micros(2));
        let p = GcraParams::new(Duration::MAX, u32::MAX);
        assert_eq!(p.interval, GcraParams::MAX_INTERVAL);
        assert_eq!(p.tolerance, GcraParams::MAX_TOLERANCE);
    }

    #[test]
    fn ttl_millis_rounds_up_and_is_positive() {
        assert_eq!(ttl_millis(Duration::ZERO), 1);
        assert_eq!(ttl_millis(Duration::from_micros(1)), 1);
        assert_eq!(ttl_millis(Duration::from_micros(1001)), 2);
        assert_eq!(ttl_millis(Duration::from_secs(3)), 3000);
        assert!(ttl_millis(Duration::MAX) > 0);
    }
}
