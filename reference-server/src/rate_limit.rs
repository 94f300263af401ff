//! Layered, keyed rate limits (IP, session, principal, tool) with GCRA semantics.
//!
//! GCRA (the generic cell rate algorithm) keeps one number per key, the *theoretical arrival
//! time* (TAT): when the key would be back to a full burst allowance. With emission interval
//! `T = 60 s / per_minute` and burst tolerance `tau = T * (burst - 1)`, a request at `now` is
//! admitted when `max(TAT, now) - now <= tau`, and then `TAT = max(TAT, now) + T`. This admits
//! exactly `burst` back-to-back requests, `per_minute` requests per minute sustained, and never
//! more than `burst + W / T` requests in any window of length `W`. A denial carries the exact
//! time until the key is admitted again, so `Retry-After` is honest.
//!
//! Memory is bounded: an entry whose TAT is `<= now` is indistinguishable from an absent key,
//! so expired entries can be dropped at any time without changing a decision. Eviction of a
//! still-live entry (only when the table is full of live keys) forgets that key's debt; it picks
//! the entry closest to expiry, which forgives the least.
//!
//! An entry is 24 bytes with no allocation of its own: the key is stored as a 128-bit digest
//! made of two independently, randomly keyed SipHash values (so the table costs at most about
//! 57 bytes per tracked key at hashbrown's lowest load factor). Two distinct keys share a bucket
//! only if both 64-bit halves collide, which an attacker who does not know the per-process keys
//! cannot arrange, and which by chance happens with probability about `n / 2^128`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::config::{Quota, RateLimitConfig};
use crate::store::{GcraDecision, SharedStore, StoreError};

/// Default number of shards: enough to keep lock contention low on a small server.
const SHARDS: usize = 16;

/// Keys longer than this are replaced by a digest (see [`normalize_key`]).
pub const MAX_KEY_BYTES: usize = 64;

/// The outcome of one rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// `retry_after` is exactly the time until this key would be admitted again.
    Deny {
        retry_after: Duration,
    },
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// Whole seconds for the HTTP `Retry-After` header: rounded up (a client that waits the
/// advertised time must be admitted) and at least 1 (0 would invite an immediate retry loop).
pub fn retry_after_secs(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

/// Bounds the length of attacker-influenced keys. Keys up to [`MAX_KEY_BYTES`] bytes are kept
/// verbatim; longer keys become `~` followed by the hex SHA-256 of the key (65 bytes). The
/// digest is not truncated and the marked form is longer than any verbatim key, so a chosen
/// short key can never share a bucket with a long one.
pub fn normalize_key(key: &str) -> Cow<'_, str> {
    if key.len() <= MAX_KEY_BYTES {
        return Cow::Borrowed(key);
    }
    let digest = Sha256::digest(key.as_bytes());
    Cow::Owned(format!("~{}", hex::encode(digest)))
}

/// A key's 128-bit digest: two 64-bit halves from two independently keyed hashers. Two `u64`s
/// rather than a `u128`, so that an entry is 24 bytes (a `u128` would align it to 32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyDigest(u64, u64);

impl std::hash::Hash for KeyDigest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The second half is already a keyed, uniformly distributed hash (the first picks the
        // shard): hand it to the table as is.
        state.write_u64(self.1);
    }
}

/// Passes a [`KeyDigest`]'s hash through: hashing it again would only cost time.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (by `KeyDigest::hash`); fold anything else in, for completeness.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
}

type Shard = Mutex<HashMap<KeyDigest, u64, BuildHasherDefault<DigestHasher>>>;

/// GCRA limiter over many keys, sharded, holding at most `max_keys` keys.
///
/// Times are kept as `u64` nanoseconds since the limiter's creation (`epoch`), so an entry is
/// a short key plus 8 bytes. Instants before the epoch are treated as the epoch.
pub struct KeyedLimiter {
    /// Emission interval `T` in nanoseconds (> 0).
    interval: u64,
    /// Burst tolerance `tau = T * (burst - 1)` in nanoseconds.
    tolerance: u64,
    epoch: Instant,
    shards: Box<[Shard]>,
    /// Capacity of each shard; the capacities sum to `max_keys` exactly.
    caps: Box<[usize]>,
    /// Two independently, randomly keyed SipHash instances: keys are attacker-influenced, so
    /// neither the shard nor the bucket of a key may be predictable, and the pair makes the
    /// 128-bit [`KeyDigest`] stored in place of the key.
    hashers: [RandomState; 2],
}

impl std::fmt::Debug for KeyedLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedLimiter")
            .field("interval_ns", &self.interval)
            .field("tolerance_ns", &self.tolerance)
            .field("shards", &self.shards.len())
            .field("max_keys", &self.max_keys())
            .finish_non_exhaustive()
    }
}

impl KeyedLimiter {
    /// A limiter for `quota` tracking at most `max_keys` keys. Zero values (rejected by config
    /// validation) are raised to 1 rather than dividing by zero.
    pub fn new(quota: Quota, max_keys: usize) -> Self {
        Self::with_shards(quota, max_keys, SHARDS)
    }

    /// As [`new`](Self::new) with an explicit shard count (tests use 1 for determinism).
    pub fn with_shards(quota: Quota, max_keys: usize, shards: usize) -> Self {
        let per_minute = u64::from(quota.per_minute.max(1));
        let burst = u64::from(quota.burst.max(1));
        let interval = (60_000_000_000 / per_minute).max(1);
        let tolerance = interval.saturating_mul(burst - 1);
        let max_keys = max_keys.max(1);
        let n = shards.clamp(1, max_keys);
        let caps = (0..n).map(|i| max_keys / n + usize::from(i < max_keys % n)).collect();
        let shards = (0..n).map(|_| Mutex::new(HashMap::default())).collect();
        let hashers = [RandomState::new(), RandomState::new()];
        Self { interval, tolerance, epoch: Instant::now(), shards, caps, hashers }
    }

    /// The emission interval `T`: the steady-state spacing between admitted requests.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval)
    }

    /// Most keys tracked at once.
    pub fn max_keys(&self) -> usize {
        self.caps.iter().sum()
    }

    /// Keys currently tracked (including expired ones not yet dropped).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks and, when admitted, counts one request for `key` at the current time.
    pub fn check_now(&self, key: &str) -> Decision {
        self.check(key, Instant::now())
    }

    /// Checks and, when admitted, counts one request for `key` at `now`.
    pub fn check(&self, key: &str, now: Instant) -> Decision {
        let (idx, digest) = self.locate(key);
        let now = self.nanos(now);
        let mut map = self.shards[idx].lock();
        if let Some(slot) = map.get_mut(&digest) {
            let tat = (*slot).max(now);
            let earliest = tat.saturating_sub(self.tolerance);
            if earliest > now {
                return Decision::Deny { retry_after: Duration::from_nanos(earliest - now) };
            }
            *slot = tat.saturating_add(self.interval);
            return Decision::Allow;
        }
        // An absent key behaves as TAT = now, which is always admitted.
        make_room(&mut map, self.caps[idx], now);
        map.insert(digest, now.saturating_add(self.interval));
        Decision::Allow
    }

    /// Gives back one request admitted earlier for `key`: used when a later layer denies, so
    /// that the denied request does not consume this layer's quota. For a sequential caller the
    /// state afterwards is equivalent to never having counted the request; under concurrency
    /// the interim is only stricter, never more permissive.
    pub fn refund(&self, key: &str) {
        let (idx, digest) = self.locate(key);
        if let Some(tat) = self.shards[idx].lock().get_mut(&digest) {
            *tat = tat.saturating_sub(self.interval);
        }
    }

    /// Drops every entry that no longer affects a decision. Optional housekeeping: inserts at
    /// capacity do this on demand anyway.
    pub fn purge_expired(&self, now: Instant) {
        let now = self.nanos(now);
        for shard in self.shards.iter() {
            shard.lock().retain(|_, tat| *tat > now);
        }
    }

    #[cfg(test)]
    fn contains(&self, key: &str) -> bool {
        let (idx, digest) = self.locate(key);
        self.shards[idx].lock().contains_key(&digest)
    }

    fn nanos(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The shard and the digest of `key` (normalized as [`normalize_key`] says, so that keys
    /// keep the same identities as when they were stored verbatim).
    fn locate(&self, key: &str) -> (usize, KeyDigest) {
        let key = normalize_key(key);
        let a = self.hashers[0].hash_one(&*key);
        let b = self.hashers[1].hash_one(&*key);
        // Truncating the hash is fine: only its distribution matters.
        let idx = (a as usize) % self.shards.len();
        (idx, KeyDigest(a, b))
    }
}

/// Ensures one free slot in a shard at capacity: drop expired entries (free: they change no
/// decision) and, only if the shard is all live keys, evict the one closest to expiry. One pass
/// over the shard, and only when it is full.
fn make_room(map: &mut HashMap<KeyDigest, u64, BuildHasherDefault<DigestHasher>>, cap: usize, now: u64) {
    if map.len() < cap {
        return;
    }
    let mut oldest: Option<(u64, KeyDigest)> = None;
    map.retain(|k, tat| {
        if *tat <= now {
            return false;
        }
        if oldest.is_none_or(|(t, _)| *tat < t) {
            oldest = Some((*tat, *k));
        }
        true
    });
    if map.len() >= cap
        && let Some((_, k)) = oldest
    {
        map.remove(&k);
    }
}

/// A rate-limit layer, for errors, metrics and the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    Ip,
    Session,
    Principal,
    Tool,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Ip => "ip",
            Layer::Session => "session",
            Layer::Principal => "principal",
            Layer::Tool => "tool",
        }
    }
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request refused by one layer; `retry_after` is that layer's honest wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limited by the {layer} limit; retry after {retry_after:?}")]
pub struct Limited {
    pub layer: Layer,
    pub retry_after: Duration,
}

impl Limited {
    /// The value for the HTTP `Retry-After` header.
    pub fn retry_after_secs(&self) -> u64 {
        retry_after_secs(self.retry_after)
    }
}

/// All rate-limit layers, built from [`RateLimitConfig`]. Each layer holds at most
/// `max_keys` keys (each per-tool override is a layer of its own for this bound).
///
/// The methods are independent: the caller applies `check_ip` at the edge (so every request,
/// even one later refused, counts against its IP), then `check_session`, then `check_call` on
/// `tools/call`. Within `check_call`, a request the tool layer denies is refunded to the
/// principal layer.
///
/// Built [`with_store`](Self::with_store) on a shared backend (Redis), the async `admit_*`
/// methods keep every layer in the store, so that replicas share one budget; on the memory
/// backend they use the in-process limiters (no store round trip). The sync `check_*` methods
/// are always in-process.
pub struct RateLimits {
    ip: KeyedLimiter,
    session: KeyedLimiter,
    principal: KeyedLimiter,
    tool: KeyedLimiter,
    per_tool: BTreeMap<String, KeyedLimiter>,
    /// Quotas kept for the shared path (the limiters hold them in their own units).
    quotas: RateLimitConfig,
    /// `Some` when the backend is shared by several replicas.
    shared: Option<Arc<dyn SharedStore>>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("ip", &self.ip)
            .field("shared", &self.shared.as_ref().map(|s| s.backend()))
            .finish_non_exhaustive()
    }
}

/// Why a shared rate check could not admit a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    /// A layer refused: answer 429 with `Retry-After`.
    #[error(transparent)]
    Limited(#[from] Limited),
    /// The shared store could not decide: the request is refused (fail closed, 503).
    #[error("rate limit state unavailable: {0}")]
    Unavailable(#[from] StoreError),
}

impl RateLimits {
    /// In-process limits only (one server).
    pub fn new(config: &RateLimitConfig) -> Self {
        let max = config.max_keys;
        Self {
            ip: KeyedLimiter::new(config.ip, max),
            session: KeyedLimiter::new(config.session, max),
            principal: KeyedLimiter::new(config.principal, max),
            tool: KeyedLimiter::new(config.tool, max),
            per_tool: config.per_tool.iter().map(|(name, q)| (name.clone(), KeyedLimiter::new(*q, max))).collect(),
            quotas: config.clone(),
            shared: None,
        }
    }

    /// Limits whose `admit_*` checks go through `store` when it is shared between replicas
    /// (any backend but `"memory"`); with the memory store this is [`new`](Self::new).
    pub fn with_store(config: &RateLimitConfig, store: Arc<dyn SharedStore>) -> Self {
        let mut limits = Self::new(config);
        if store.backend() != "memory" {
            limits.shared = Some(store);
        }
        limits
    }

    /// Whether the `admit_*` checks use the shared store.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// The IP layer (see [`check_ip_at`](Self::check_ip_at) for the key), shared when built so.
    pub async fn admit_ip(&self, ip: IpAddr) -> Result<(), RateError> {
        match &self.shared {
            None => Ok(self.check_ip(ip)?),
            Some(store) => shared_check(&**store, Layer::Ip, &format!("ip:{}", ip_key(ip)), self.quotas.ip).await,
        }
    }

    /// The session layer, keyed in the store by a digest of the id (ids are bearer secrets).
    pub async fn admit_session(&self, session_id: &str) -> Result<(), RateError> {
        match &self.shared {
            None => Ok(self.check_session(session_id)?),
            Some(store) => {
                let key = format!("session:{}", hex::encode(Sha256::digest(session_id.as_bytes())));
                shared_check(&**store, Layer::Session, &key, self.quotas.session).await
            }
        }
    }

    /// The principal and tool layers of a `tools/call`.
    ///
    /// Shared, the store has no refund, so the tool layer is checked first: a tool denial then
    /// costs the principal layer nothing, and a principal denial spends a cell of the same
    /// principal's own tool quota (never anyone else's).
    pub async fn admit_call(&self, principal: &str, tool: &str) -> Result<(), RateError> {
        let Some(store) = &self.shared else { return Ok(self.check_call(principal, tool)?) };
        let quota = self.quotas.per_tool.get(tool).copied().unwrap_or(self.quotas.tool);
        shared_check(&**store, Layer::Tool, &format!("tool:{}", tool_key(principal, tool)), quota).await?;
        shared_check(&**store, Layer::Principal, &format!("principal:{principal}"), self.quotas.principal).await
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Limited> {
        self.check_ip_at(ip, Instant::now())
    }

    /// IPv6 clients are keyed by their /64 prefix (one subscriber usually owns a whole /64, so
    /// per-address limits would be trivially evaded); IPv4-mapped addresses count as IPv4.
    pub fn check_ip_at(&self, ip: IpAddr, now: Instant) -> Result<(), Limited> {
        let key = ip_key(ip);
        to_result(Layer::Ip, self.ip.check(&key, now))
    }

    pub fn check_session(&self, session_id: &str) -> Result<(), Limited> {
        self.check_session_at(session_id, Instant::now())
    }

    pub fn check_session_at(&self, session_id: &str, now: Instant) -> Result<(), Limited> {
        to_result(Layer::Session, self.session.check(session_id, now))
    }

    /// Checks the principal layer, then the tool layer (the tool's override if configured,
    /// else the default keyed by principal and tool).
    pub fn check_call(&self, principal: &str, tool: &str) -> Result<(), Limited> {
        self.check_call_at(principal, tool, Instant::now())
    }

    pub fn check_call_at(&self, principal: &str, tool: &str, now: Instant) -> Result<(), Limited> {
        to_result(Layer::Principal, self.principal.check(principal, now))?;
        let decision = match self.per_tool.get(tool) {
            Some(limiter) => limiter.check(principal, now),
            None => self.tool.check(&tool_key(principal, tool), now),
        };
        let result = to_result(Layer::Tool, decision);
        if result.is_err() {
            self.principal.refund(principal);
        }
        result
    }

    /// Drops expired entries in every layer (optional periodic housekeeping).
    pub fn purge_expired(&self, now: Instant) {
        for l in [&self.ip, &self.session, &self.principal, &self.tool] {
            l.purge_expired(now);
        }
        for l in self.per_tool.values() {
            l.purge_expired(now);
        }
    }
}

/// The GCRA emission interval of a quota: `60 s / per_minute` (zero raised to 1, as the
/// in-process limiter does).
pub fn emission_interval(quota: Quota) -> Duration {
    Duration::from_nanos((60_000_000_000 / u64::from(quota.per_minute.max(1))).max(1))
}

/// One layer checked in the shared store. Keys are namespaced by layer; the store bounds their
/// length and alphabet.
async fn shared_check(store: &dyn SharedStore, layer: Layer, key: &str, quota: Quota) -> Result<(), RateError> {
    match store.gcra(key, emission_interval(quota), quota.burst.max(1)).await? {
        GcraDecision::Allow => Ok(()),
        GcraDecision::Deny { retry_after } => Err(RateError::Limited(Limited { layer, retry_after })),
    }
}

fn to_result(layer: Layer, d: Decision) -> Result<(), Limited> {
    match d {
        Decision::Allow => Ok(()),
        Decision::Deny { retry_after } => Err(Limited { layer, retry_after }),
    }
}

/// The key of the default tool layer. The principal's length prefix makes the pair
/// unambiguous even if a principal id contains `|`.
fn tool_key(principal: &str, tool: &str) -> String {
    format!("{}:{principal}|{tool}", principal.len())
}

/// The IP layer's key: IPv4 address, or the /64 prefix of an IPv6 address.
pub fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(per_minute: u32, burst: u32) -> Quota {
        Quota { per_minute, burst }
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn exactly_burst_then_deny_with_interval() {
        let l = KeyedLimiter::new(quota(60, 5), 100);
        let t0 = Instant::now();
        for i in 0..5 {
            assert_eq!(l.check("k", t0), Decision::Allow, "request {i}");
        }
        assert_eq!(l.check("k", t0), Decision::Deny { retry_after: Duration::from_secs(1) });
        // Honest: admitted exactly at retry_after, not a nanosecond before.
        assert!(!l.check("k", t0 + Duration::from_nanos(999_999_999)).is_allowed());
        assert_eq!(l.check("k", t0 + Duration::from_secs(1)), Decision::Allow);
        // Other keys are unaffected.
        assert_eq!(l.check("other", t0), Decision::Allow);
    }

    #[test]
    fn retry_after_is_honest_after_partial_recovery() {
        let l = KeyedLimiter::new(quota(120, 2), 100); // T = 0.5 s
        let t0 = Instant::now();
        assert!(l.check("k", t0).is_allowed());
        assert!(l.check("k", t0).is_allowed());
        let now = t0 + secs(0.2);
        let Decision::Deny { retry_after } = l.check("k", now) else {
            panic!("expected a denial");
        };
        assert_eq!(retry_after, secs(0.3));
        assert!(l.check("k", now + retry_after).is_allowed());
    }

    #[test]
    fn steady_rate_is_admitted_for_a_minute() {
        let l = KeyedLimiter::new(quota(60, 1), 100);
        let t0 = Instant::now();
        for k in 0..60u64 {
            assert!(l.check("k", t0 + Duration::from_secs(k)).is_allowed(), "at {k}s");
        }
        // Twice the rate: about half is admitted, never more than burst + rate.
        let l = KeyedLimiter::new(quota(60, 10), 100);
        let admitted = (0..120u64).filter(|k| l.check("k", t0 + Duration::from_millis(500 * k)).is_allowed()).count();
        assert!((60..=70).contains(&admitted), "admitted {admitted}");
    }

    /// Reference model: in every window `[t_i, t_i + W]` starting at an admitted request, the
    /// number admitted is at most `burst + floor(W / T)`.
    #[test]
    fn never_more_than_burst_plus_rate_in_any_window() {
        let (per_minute, burst) = (120u32, 7u32);
        let l = KeyedLimiter::new(quota(per_minute, burst), 100);
        let t_ns = l.interval().as_nanos() as u64;
        let t0 = Instant::now();
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut at = 0u64;
        let mut admitted = Vec::new();
        for _ in 0..20_000 {
            // Bursty arrivals: mostly tight clusters, sometimes long pauses.
            at += match next() % 10 {
                0 => next() % 5_000_000_000,
                _ => next() % 200_000_000,
            };
            if l.check("k", t0 + Duration::from_nanos(at)).is_allowed() {
                admitted.push(at);
            }
        }
        assert!(admitted.len() > 1_000);
        for window in [0, t_ns / 3, t_ns, 5 * t_ns, 60_000_000_000, 600_000_000_000] {
            let bound = u64::from(burst) + window / t_ns;
            let mut j = 0;
            for i in 0..admitted.len() {
                while j < admitted.len() && admitted[j] <= admitted[i] + window {
                    j += 1;
                }
                let n = (j - i) as u64;
                assert!(n <= bound, "window {window}ns from {}: {n} > {bound}", admitted[i]);
            }
        }
    }

    #[test]
    fn flood_of_distinct_keys_stays_bounded() {
        let l = KeyedLimiter::new(quota(60, 3), 1_000);
        assert_eq!(l.max_keys(), 1_000);
        let t0 = Instant::now();
        for i in 0..50_000u64 {
            let now = t0 + Duration::from_millis(i / 100);
            assert!(l.check(&format!("key-{i}"), now).is_allowed());
            if i.is_multiple_of(997) {
                assert!(l.len() <= 1_000);
            }
        }
        assert!(l.len() <= 1_000);
        assert!(l.len() > 500);
    }

    #[test]
    fn capacity_split_across_shards_is_exact() {
        for max in [1, 5, 15, 16, 17, 100, 1_000] {
            let l = KeyedLimiter::new(quota(60, 1), max);
            assert_eq!(l.max_keys(), max);
            let t0 = Instant::now();
            for i in 0..max * 20 {
                l.check(&i.to_string(), t0);
            }
            assert!(l.len() <= max, "max {max}: len {}", l.len());
        }
    }

    #[test]
    fn eviction_drops_expired_before_live_keys() {
        // One shard of 4 so that placement is deterministic. T = 60 s, burst 1.
        let l = KeyedLimiter::with_shards(quota(1, 1), 4, 1);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        for k in ["a", "b", "c"] {
            assert!(l.check(k, at(0)).is_allowed()); // TAT 60 s
        }
        assert!(l.check("victim", at(100)).is_allowed()); // TAT 160 s
        assert!(!l.check("victim", at(100)).is_allowed());
        assert_eq!(l.len(), 4);
        // Full, but a, b, c are expired: they go, the victim stays limited.
        for k in ["d", "e", "f"] {
            assert!(l.check(k, at(101)).is_allowed()); // TAT 161 s
            assert!(!l.check("victim", at(101)).is_allowed());
        }
        assert_eq!(l.len(), 4);
        // All live now: the entry closest to expiry (the victim) is the one evicted.
        assert!(l.check("g", at(102)).is_allowed());
        assert_eq!(l.len(), 4);
        assert!(l.check("victim", at(102)).is_allowed());
        // Re-inserting the victim evicted one of d, e, f (TAT 161, tied), never g (162).
        assert!(l.contains("g"));
        let kept = ["d", "e", "f"].iter().filter(|k| l.contains(k)).count();
        assert_eq!(kept, 2);
    }

    #[test]
    fn long_keys_are_hashed_and_do_not_collide_with_short_ones() {
        let long = "x".repeat(1_000);
        let n = normalize_key(&long);
        assert_eq!(n.len(), MAX_KEY_BYTES + 1);
        assert!(n.starts_with('~'));
        assert!(matches!(normalize_key("short"), Cow::Borrowed("short")));
        let exact = "y".repeat(MAX_KEY_BYTES);
        assert_eq!(normalize_key(&exact), exact);

        let l = KeyedLimiter::new(quota(60, 1), 10);
        let t0 = Instant::now();
        assert!(l.check(&long, t0).is_allowed());
        assert!(!l.check(&long, t0).is_allowed());
        // A short key spelled like the digest is a different bucket.
        assert!(l.check(&n[1..], t0).is_allowed());
    }

    #[test]
    fn retry_after_secs_rounds_up_with_minimum_one() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_nanos(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1_001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(59)), 59);
        assert_eq!(retry_after_secs(secs(59.5)), 60);
    }

    fn config() -> RateLimitConfig {
        RateLimitConfig {
            ip: quota(60, 2),
            session: quota(60, 2),
            principal: quota(60, 3),
            tool: quota(60, 2),
            per_tool: [("slow".to_string(), quota(1, 1))].into_iter().collect(),
            max_keys: 100,
        }
    }

    #[test]
    fn layers_report_which_limit_refused() {
        let rl = RateLimits::new(&config());
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        assert!(rl.check_ip_at(ip, t0).is_ok());
        assert!(rl.check_ip_at(ip, t0).is_ok());
        let e = rl.check_ip_at(ip, t0).expect_err("third is over burst");
        assert_eq!(e.layer, Layer::Ip);
        assert_eq!(e.retry_after, Duration::from_secs(1));
        assert_eq!(e.retry_after_secs(), 1);

        assert!(rl.check_session_at("s1", t0).is_ok());
        assert!(rl.check_session_at("s1", t0).is_ok());
        assert_eq!(rl.check_session_at("s1", t0).map_err(|e| e.layer), Err(Layer::Session));
        assert!(rl.check_session_at("s2", t0).is_ok());
    }

    #[test]
    fn tool_denial_does_not_consume_principal_quota() {
        let rl = RateLimits::new(&config());
        let t0 = Instant::now();
        // Default tool layer: 2 per (principal, tool); principal: 3.
        assert!(rl.check_call_at("alice", "echo", t0).is_ok());
        assert!(rl.check_call_at("alice", "echo", t0).is_ok());
        for _ in 0..5 {
            let e = rl.check_call_at("alice", "echo", t0).expect_err("tool burst spent");
            assert_eq!(e.layer, Layer::Tool);
        }
        // The five tool denials were refunded: one principal request is left.
        assert!(rl.check_call_at("alice", "other", t0).is_ok());
        let e = rl.check_call_at("alice", "third", t0).expect_err("principal burst spent");
        assert_eq!(e.layer, Layer::Principal);
        // Other principals are independent.
        assert!(rl.check_call_at("bob", "echo", t0).is_ok());
    }

    #[test]
    fn per_tool_override_applies_per_principal() {
        let rl = RateLimits::new(&config());
        let t0 = Instant::now();
        assert!(rl.check_call_at("alice", "slow", t0).is_ok());
        let e = rl.check_call_at("alice", "slow", t0).expect_err("override: burst 1");
        assert_eq!(e.layer, Layer::Tool);
        assert_eq!(e.retry_after, Duration::from_secs(60));
        assert!(rl.check_call_at("bob", "slow", t0).is_ok());
        assert!(rl.check_call_at("alice", "echo", t0).is_ok());
    }

    /// A memory store that claims to be shared (so the `admit_*` path goes through it) and can
    /// be switched off.
    struct FakeShared {
        inner: crate::store::MemoryStore,
        down: std::sync::atomic::AtomicBool,
    }

    impl FakeShared {
        fn check(&self) -> Result<(), StoreError> {
            if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(StoreError::Unavailable("test: down".into()));
            }
            Ok(())
        }
    }

    impl SharedStore for FakeShared {
        fn backend(&self) -> &'static str {
            "fake"
        }
        fn ping(&self) -> crate::store::StoreFuture<'_, ()> {
            self.inner.ping()
        }
        fn gcra<'a>(&'a self, key: &'a str, i: Duration, burst: u32) -> crate::store::StoreFuture<'a, GcraDecision> {
            match self.check() {
                Ok(()) => self.inner.gcra(key, i, burst),
                Err(e) => Box::pin(async move { Err(e) }),
            }
        }
        fn put_code<'a>(&'a self, h: &'a str, r: &'a [u8], t: Duration) -> crate::store::StoreFuture<'a, ()> {
            self.inner.put_code(h, r, t)
        }
        fn take_code<'a>(&'a self, h: &'a str) -> crate::store::StoreFuture<'a, Option<Vec<u8>>> {
            self.inner.take_code(h)
        }
        fn put_session<'a>(&'a self, h: &'a str, r: &'a [u8], t: Duration) -> crate::store::StoreFuture<'a, ()> {
            self.inner.put_session(h, r, t)
        }
        fn get_session<'a>(&'a self, h: &'a str) -> crate::store::StoreFuture<'a, Option<Vec<u8>>> {
            self.inner.get_session(h)
        }
        fn delete_session<'a>(&'a self, h: &'a str) -> crate::store::StoreFuture<'a, bool> {
            self.inner.delete_session(h)
        }
        fn put_refresh<'a>(
            &'a self,
            h: &'a str,
            f: &'a str,
            r: &'a [u8],
            t: Duration,
        ) -> crate::store::StoreFuture<'a, ()> {
            self.inner.put_refresh(h, f, r, t)
        }
        fn take_refresh<'a>(&'a self, h: &'a str) -> crate::store::StoreFuture<'a, Option<(String, Vec<u8>)>> {
            self.inner.take_refresh(h)
        }
        fn revoke_family<'a>(&'a self, f: &'a str, t: Duration) -> crate::store::StoreFuture<'a, ()> {
            self.inner.revoke_family(f, t)
        }
        fn family_revoked<'a>(&'a self, f: &'a str) -> crate::store::StoreFuture<'a, bool> {
            self.inner.family_revoked(f)
        }
        fn revoke_jti<'a>(&'a self, j: &'a str, u: std::time::SystemTime) -> crate::store::StoreFuture<'a, ()> {
            self.inner.revoke_jti(j, u)
        }
        fn jti_revoked<'a>(&'a self, j: &'a str) -> crate::store::StoreFuture<'a, bool> {
            self.inner.jti_revoked(j)
        }
    }

    #[test]
    fn emission_interval_matches_the_in_process_limiter() {
        for q in [quota(60, 1), quota(7, 3), quota(3_000, 300), quota(0, 0)] {
            assert_eq!(emission_interval(q), KeyedLimiter::new(q, 1).interval());
        }
    }

    #[tokio::test]
    async fn shared_limits_share_one_budget_and_fail_closed() {
        let store = Arc::new(FakeShared { inner: Default::default(), down: Default::default() });
        // Two replicas: two `RateLimits` over one store.
        let a = RateLimits::with_store(&config(), store.clone());
        let b = RateLimits::with_store(&config(), store.clone());
        assert!(a.is_shared());
        assert!(!RateLimits::with_store(&config(), Arc::new(crate::store::MemoryStore::default())).is_shared());
        let ip: IpAddr = "192.0.2.9".parse().expect("ip");
        assert_eq!(a.admit_ip(ip).await, Ok(()));
        assert_eq!(b.admit_ip(ip).await, Ok(()));
        let Err(RateError::Limited(l)) = a.admit_ip(ip).await else { panic!("ip burst of 2 is spent") };
        assert_eq!(l.layer, Layer::Ip);
        assert!(l.retry_after > Duration::ZERO);
        // The in-process limiter was not used.
        assert!(a.check_ip(ip).is_ok());

        assert_eq!(a.admit_session("s").await, Ok(()));
        assert_eq!(b.admit_session("s").await, Ok(()));
        assert!(matches!(a.admit_session("s").await, Err(RateError::Limited(Limited { layer: Layer::Session, .. }))));

        // Tool first: tool denials do not spend the principal budget (3).
        assert_eq!(a.admit_call("alice", "echo").await, Ok(()));
        assert_eq!(b.admit_call("alice", "echo").await, Ok(()));
        for _ in 0..3 {
            let r = a.admit_call("alice", "echo").await;
            assert!(matches!(r, Err(RateError::Limited(Limited { layer: Layer::Tool, .. }))), "{r:?}");
        }
        assert_eq!(b.admit_call("alice", "other").await, Ok(()));
        let r = a.admit_call("alice", "third").await;
        assert!(matches!(r, Err(RateError::Limited(Limited { layer: Layer::Principal, .. }))), "{r:?}");
        // Per-tool overrides apply in the store too.
        assert_eq!(a.admit_call("bob", "slow").await, Ok(()));
        assert!(matches!(b.admit_call("bob", "slow").await, Err(RateError::Limited(_))));

        store.down.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(matches!(a.admit_ip("198.51.100.1".parse().expect("ip")).await, Err(RateError::Unavailable(_))));
        assert!(matches!(b.admit_session("fresh").await, Err(RateError::Unavailable(_))));
        assert!(matches!(a.admit_call("carol", "echo").await, Err(RateError::Unavailable(_))));
        store.down.store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(a.admit_call("carol", "echo").await, Ok(()));
    }

    #[tokio::test]
    async fn memory_backed_limits_stay_in_process() {
        let a = RateLimits::with_store(&config(), Arc::new(crate::store::MemoryStore::default()));
        let ip: IpAddr = "192.0.2.10".parse().expect("ip");
        assert_eq!(a.admit_ip(ip).await, Ok(()));
        assert!(a.check_ip(ip).is_ok());
        assert!(matches!(a.admit_ip(ip).await, Err(RateError::Limited(_))));
    }

    #[test]
    fn tool_keys_are_unambiguous() {
        assert_ne!(tool_key("a|b", "c"), tool_key("a", "b|c"));
    }

    #[test]
    fn ipv6_is_keyed_by_prefix_and_mapped_v4_as_v4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(ip_key(mapped), "192.0.2.7");
    }
}
