//! In-process [`SharedStore`]: the default when one server holds all state.
//!
//! Every table is bounded. Each keeps its entries in a hash map plus an index ordered by
//! deadline, so expired entries are swept in `O(log n)` each on every write and are never
//! returned by a read (expired is indistinguishable from absent). When a table is full of live
//! entries, tables whose loss fails closed (rate-limit state forgives a little debt; a lost code,
//! session or refresh token makes its holder start again) evict the entry closest to expiry;
//! revocation tables refuse the write with [`StoreError::Unavailable`] instead, because
//! forgetting a revocation would fail open.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::FutureExt;
use parking_lot::Mutex;

use super::{GcraDecision, GcraParams, Kind, SharedStore, StoreError, StoreFuture, normalize_id};

/// Upper bounds on the number of live entries per table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    pub rate_keys: usize,
    pub codes: usize,
    pub sessions: usize,
    pub refresh_tokens: usize,
    pub revoked_families: usize,
    pub revoked_jtis: usize,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        MemoryLimits {
            rate_keys: 100_000,
            codes: 10_000,
            sessions: 100_000,
            refresh_tokens: 100_000,
            revoked_families: 100_000,
            revoked_jtis: 100_000,
        }
    }
}

/// No entry lives longer than this, which also keeps `Instant` arithmetic from overflowing.
const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// What a full table does with one more entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WhenFull {
    EvictSoonest,
    Refuse,
}

struct Entry<V> {
    value: V,
    deadline: Instant,
    seq: u64,
}

/// A bounded map whose entries expire at their deadline.
struct TtlMap<V> {
    kind: Kind,
    entries: HashMap<Box<str>, Entry<V>>,
    /// `(deadline, seq)` → key; `seq` makes equal deadlines distinct.
    by_deadline: BTreeMap<(Instant, u64), Box<str>>,
    next_seq: u64,
    cap: usize,
    when_full: WhenFull,
}

impl<V> TtlMap<V> {
    fn new(kind: Kind, cap: usize, when_full: WhenFull) -> Self {
        TtlMap { kind, entries: HashMap::new(), by_deadline: BTreeMap::new(), next_seq: 0, cap: cap.max(1), when_full }
    }

    /// Drops every entry whose deadline is `<= now`.
    fn sweep(&mut self, now: Instant) {
        while let Some(entry) = self.by_deadline.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.entries.remove(&key);
        }
    }

    /// The live entry for `key`, if any.
    fn get_mut(&mut self, key: &str, now: Instant) -> Option<&mut Entry<V>> {
        let expired = self.entries.get(key).is_some_and(|e| e.deadline <= now);
        if expired {
            self.remove_any(key);
            return None;
        }
        self.entries.get_mut(key)
    }

    /// Removes `key` whether or not it has expired.
    fn remove_any(&mut self, key: &str) -> Option<Entry<V>> {
        let entry = self.entries.remove(key)?;
        self.by_deadline.remove(&(entry.deadline, entry.seq));
        Some(entry)
    }

    /// Removes and returns the live value for `key`.
    fn take(&mut self, key: &str, now: Instant) -> Option<V> {
        let entry = self.remove_any(key)?;
        (entry.deadline > now).then_some(entry.value)
    }

    /// Moves a live entry's deadline.
    fn set_deadline(&mut self, key: &str, deadline: Instant) {
        let seq = self.next_seq;
        let Some(entry) = self.entries.get_mut(key) else { return };
        self.next_seq += 1;
        if let Some(k) = self.by_deadline.remove(&(entry.deadline, entry.seq)) {
            self.by_deadline.insert((deadline, seq), k);
        }
        entry.deadline = deadline;
        entry.seq = seq;
    }

    /// Inserts or replaces `key`, making room as [`WhenFull`] says.
    fn insert(&mut self, key: &str, value: V, deadline: Instant, now: Instant) -> Result<(), StoreError> {
        self.remove_any(key);
        self.sweep(now);
        if self.entries.len() >= self.cap {
            match self.when_full {
                WhenFull::Refuse => {
                    return Err(StoreError::Unavailable(format!("{} table is full", self.kind.as_str())));
                }
                WhenFull::EvictSoonest => {
                    if let Some((_, victim)) = self.by_deadline.pop_first() {
                        self.entries.remove(&victim);
                    }
                }
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let key: Box<str> = key.into();
        self.by_deadline.insert((deadline, seq), key.clone());
        self.entries.insert(key, Entry { value, deadline, seq });
        Ok(())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The in-memory [`SharedStore`]. Cheap to share behind an `Arc`; each table has its own lock
/// and no lock is held across an `.await`.
pub struct MemoryStore {
    rate: Mutex<TtlMap<()>>,
    codes: Mutex<TtlMap<Vec<u8>>>,
    sessions: Mutex<TtlMap<(Vec<u8>, Duration)>>,
    refresh: Mutex<TtlMap<(String, Vec<u8>)>>,
    families: Mutex<TtlMap<()>>,
    jtis: Mutex<TtlMap<()>>,
    /// Added to the monotonic clock; moved forward only by unit tests.
    skew_nanos: AtomicU64,
}

impl std::fmt::Debug for MemoryStore {
    /// Counts only: the tables hold hashes and records that stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("rate_keys", &self.rate.lock().entries.len())
            .field("codes", &self.codes.lock().entries.len())
            .field("sessions", &self.sessions.lock().entries.len())
            .field("refresh_tokens", &self.refresh.lock().entries.len())
            .field("revoked_families", &self.families.lock().entries.len())
            .field("revoked_jtis", &self.jtis.lock().entries.len())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(MemoryLimits::default())
    }
}

impl MemoryStore {
    pub fn new(limits: MemoryLimits) -> Self {
        use WhenFull::{EvictSoonest, Refuse};
        MemoryStore {
            rate: Mutex::new(TtlMap::new(Kind::Rate, limits.rate_keys, EvictSoonest)),
            codes: Mutex::new(TtlMap::new(Kind::Code, limits.codes, EvictSoonest)),
            sessions: Mutex::new(TtlMap::new(Kind::Session, limits.sessions, EvictSoonest)),
            refresh: Mutex::new(TtlMap::new(Kind::Refresh, limits.refresh_tokens, EvictSoonest)),
            families: Mutex::new(TtlMap::new(Kind::Family, limits.revoked_families, Refuse)),
            jtis: Mutex::new(TtlMap::new(Kind::Jti, limits.revoked_jtis, Refuse)),
            skew_nanos: AtomicU64::new(0),
        }
    }

    fn now(&self) -> Instant {
        Instant::now() + Duration::from_nanos(self.skew_nanos.load(Ordering::Relaxed))
    }

    #[cfg(test)]
    fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.skew_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn gcra_now(&self, key: &str, emission_interval: Duration, burst: u32) -> Result<GcraDecision, StoreError> {
        let p = GcraParams::new(emission_interval, burst);
        let key = normalize_id(key);
        let now = self.now();
        let mut map = self.rate.lock();
        // The deadline of a rate entry is its TAT: once it passes, the key is back to a full
        // burst, exactly as if it were absent.
        let tat = map.get_mut(&key, now).map_or(now, |e| e.deadline).max(now);
        let ahead = tat - now;
        if ahead > p.tolerance {
            return Ok(GcraDecision::Deny { retry_after: ahead - p.tolerance });
        }
        map.insert(&key, (), tat + p.interval, now)?;
        Ok(GcraDecision::Allow)
    }

    fn put_session_now(&self, id_hash: &str, record: &[u8], idle_ttl: Duration) -> Result<(), StoreError> {
        let now = self.now();
        let idle_ttl = idle_ttl.min(MAX_TTL);
        self.sessions.lock().insert(&normalize_id(id_hash), (record.to_vec(), idle_ttl), now + idle_ttl, now)
    }

    fn get_session_now(&self, id_hash: &str) -> Option<Vec<u8>> {
        let key = normalize_id(id_hash);
        let now = self.now();
        let mut map = self.sessions.lock();
        let (record, idle_ttl) = map.get_mut(&key, now).map(|e| e.value.clone())?;
        map.set_deadline(&key, now + idle_ttl);
        Some(record)
    }

    fn revoke_jti_now(&self, jti: &str, until: SystemTime) -> Result<(), StoreError> {
        let Ok(remaining) = until.duration_since(SystemTime::now()) else { return Ok(()) };
        if remaining.is_zero() {
            return Ok(());
        }
        let now = self.now();
        self.jtis.lock().insert(&normalize_id(jti), (), now + remaining.min(MAX_TTL), now)
    }
}

/// Runs `op` when the future is first polled, like an `async fn`: building a future and dropping
/// it unpolled has no effect (no code taken, no rate-limit cell spent). The op never waits.
fn lazy<'a, T: Send + 'a>(op: impl FnOnce() -> Result<T, StoreError> + Send + 'a) -> StoreFuture<'a, T> {
    async move { op() }.boxed()
}

impl SharedStore for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        lazy(|| Ok(()))
    }

    fn gcra<'a>(&'a self, key: &'a str, emission_interval: Duration, burst: u32) -> StoreFuture<'a, GcraDecision> {
        lazy(move || self.gcra_now(key, emission_interval, burst))
    }

    fn put_code<'a>(&'a self, code_hash: &'a str, record: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()> {
        lazy(move || {
            let now = self.now();
            self.codes.lock().insert(&normalize_id(code_hash), record.to_vec(), now + ttl.min(MAX_TTL), now)
        })
    }

    fn take_code<'a>(&'a self, code_hash: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        lazy(move || Ok(self.codes.lock().take(&normalize_id(code_hash), self.now())))
    }

    fn put_session<'a>(&'a self, id_hash: &'a str, record: &'a [u8], idle_ttl: Duration) -> StoreFuture<'a, ()> {
        lazy(move || self.put_session_now(id_hash, record, idle_ttl))
    }

    fn get_session<'a>(&'a self, id_hash: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        lazy(move || Ok(self.get_session_now(id_hash)))
    }

    fn delete_session<'a>(&'a self, id_hash: &'a str) -> StoreFuture<'a, bool> {
        lazy(move || Ok(self.sessions.lock().take(&normalize_id(id_hash), self.now()).is_some()))
    }

    fn put_refresh<'a>(
        &'a self,
        token_hash: &'a str,
        family_id: &'a str,
        record: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        lazy(move || {
            let now = self.now();
            let value = (family_id.to_owned(), record.to_vec());
            self.refresh.lock().insert(&normalize_id(token_hash), value, now + ttl.min(MAX_TTL), now)
        })
    }

    fn take_refresh<'a>(&'a self, token_hash: &'a str) -> StoreFuture<'a, Option<(String, Vec<u8>)>> {
        lazy(move || Ok(self.refresh.lock().take(&normalize_id(token_hash), self.now())))
    }

    fn revoke_family<'a>(&'a self, family_id: &'a str, ttl: Duration) -> StoreFuture<'a, ()> {
        lazy(move || {
            let now = self.now();
            self.families.lock().insert(&normalize_id(family_id), (), now + ttl.min(MAX_TTL), now)
        })
    }

    fn family_revoked<'a>(&'a self, family_id: &'a str) -> StoreFuture<'a, bool> {
        lazy(move || Ok(self.families.lock().get_mut(&normalize_id(family_id), self.now()).is_some()))
    }

    fn revoke_jti<'a>(&'a self, jti: &'a str, until: SystemTime) -> StoreFuture<'a, ()> {
        lazy(move || self.revoke_jti_now(jti, until))
    }

    fn jti_revoked<'a>(&'a self, jti: &'a str) -> StoreFuture<'a, bool> {
        lazy(move || Ok(self.jtis.lock().get_mut(&normalize_id(jti), self.now()).is_some()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory futures are ready at once; polling them once avoids needing a runtime.
    fn now<T>(f: StoreFuture<'_, T>) -> Result<T, StoreError> {
        match f.now_or_never() {
            Some(r) => r,
            None => Err(StoreError::Unavailable("memory future was not ready".into())),
        }
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn gcra_admits_burst_then_denies_with_exact_retry_after() -> Result<(), StoreError> {
        let s = MemoryStore::default();
        for _ in 0..3 {
            assert_eq!(now(s.gcra("k", 100 * MS, 3))?, GcraDecision::Allow);
        }
        let GcraDecision::Deny { retry_after } = now(s.gcra("k", 100 * MS, 3))? else {
            panic!("fourth request must be denied")
        };
        assert!(retry_after <= 100 * MS && retry_after > 90 * MS, "{retry_after:?}");
        // A denial does not consume: waiting exactly retry_after admits one more, and only one.
        s.advance(retry_after);
        assert_eq!(now(s.gcra("k", 100 * MS, 3))?, GcraDecision::Allow);
        assert!(!now(s.gcra("k", 100 * MS, 3))?.is_allowed());
        // Other keys are independent.
        assert!(now(s.gcra("other", 100 * MS, 3))?.is_allowed());
        Ok(())
    }

    #[test]
    fn gcra_entries_vanish_when_their_tat_passes() -> Result<(), StoreError> {
        let s = MemoryStore::default();
        now(s.gcra("k", 10 * MS, 2))?;
        now(s.gcra("k2", 10 * MS, 2))?;
        assert_eq!(s.rate.lock().len(), 2);
        s.advance(11 * MS);
        now(s.gcra("k3", 10 * MS, 2))?;
        assert_eq!(s.rate.lock().len(), 1, "the sweep on write drops expired keys");
        Ok(())
    }

    #[test]
    fn full_rate_table_evicts_the_entry_closest_to_expiry() -> Result<(), StoreError> {
        let limits = MemoryLimits { rate_keys: 2, ..MemoryLimits::default() };
        let s = MemoryStore::new(limits);
        now(s.gcra("short", 10 * MS, 1))?;
        now(s.gcra("long", 1000 * MS, 1))?;
        now(s.gcra("new", 1000 * MS, 1))?;
        assert_eq!(s.rate.lock().len(), 2);
        assert!(now(s.gcra("short", 10 * MS, 1))?.is_allowed(), "short was evicted");
        assert!(!now(s.gcra("new", 1000 * MS, 1))?.is_allowed());
        Ok(())
    }

    #[test]
    fn codes_are_single_use_and_expire() -> Result<(), StoreError> {
        let s = MemoryStore::default();
        now(s.put_code("c1", b"rec", 50 * MS))?;
        assert_eq!(now(s.take_code("c1"))?, Some(b"rec".to_vec()));
        assert_eq!(now(s.take_code("c1"))?, None);
        now(s.put_code("c2", b"rec", 50 * MS))?;
        s.advance(50 * MS);
        assert_eq!(now(s.take_code("c2"))?, None, "expired equals absent");
        Ok(())
    }

    #[test]
    fn sessions_slide_their_idle_ttl() -> Result<(), StoreError> {
        let s = MemoryStore::default();
        now(s.put_session("s", b"meta", 100 * MS))?;
        for _ in 0..5 {
            s.advance(60 * MS);
            assert_eq!(now(s.get_session("s"))?, Some(b"meta".to_vec()), "each read restarts the timer");
        }
        s.advance(101 * MS);
        assert_eq!(now(s.get_session("s"))?, None);
        assert!(!now(s.delete_session("s"))?);
        now(s.put_session("s", b"meta", 100 * MS))?;
        assert!(now(s.delete_session("s"))?);
        assert_eq!(now(s.get_session("s"))?, None);
        Ok(())
    }

    #[test]
    fn refresh_tokens_rotate_once_and_families_revoke() -> Result<(), StoreError> {
        let s = MemoryStore::default();
        now(s.put_refresh("t1", "fam", b"r1", 1000 * MS))?;
        assert_eq!(now(s.take_refresh("t1"))?, Some(("fam".to_owned(), b"r1".to_vec())));
        assert_eq!(now(s.take_refresh("t1"))?, None);
        assert!(!now(s.family_revoked("fam"))?);
        now(s.revoke_family("fam", 100 * MS))?;
        assert!(now(s.family_revoked("fam"))?);
        s.advance(100 * MS);
        assert!(!now(s.family_revoked("fam"))?);
        Ok(())
    }

    #[test]
    fn jti_revocations_last_until_the_given_time() -> Result<(), StoreError> {
        let s = MemoryStore::default();
        now(s.revoke_jti("j", SystemTime::now() + Duration::from_secs(60)))?;
        assert!(now(s.jti_revoked("j"))?);
        assert!(!now(s.jti_revoked("other"))?);
        now(s.revoke_jti("past", SystemTime::now() - Duration::from_secs(1)))?;
        assert!(!now(s.jti_revoked("past"))?);
        s.advance(Duration::from_secs(61));
        assert!(!now(s.jti_revoked("j"))?);
        Ok(())
    }

    #[test]
    fn a_full_revocation_table_refuses_rather_than_forgets() -> Result<(), StoreError> {
        let limits = MemoryLimits { revoked_jtis: 1, revoked_families: 1, ..MemoryLimits::default() };
        let s = MemoryStore::new(limits);
        let until = SystemTime::now() + Duration::from_secs(60);
        now(s.revoke_jti("a", until))?;
        assert!(matches!(now(s.revoke_jti("b", until)), Err(StoreError::Unavailable(_))));
        assert!(now(s.jti_revoked("a"))?, "the earlier revocation is kept");
        now(s.revoke_family("f", Duration::from_secs(1)))?;
        assert!(matches!(now(s.revoke_family("g", Duration::from_secs(1))), Err(StoreError::Unavailable(_))));
        // Once the old entry expires there is room again.
        s.advance(Duration::from_secs(2));
        now(s.revoke_family("g", Duration::from_secs(1)))?;
        Ok(())
    }

    #[test]
    fn long_or_odd_ids_are_bounded() -> Result<(), StoreError> {
        let s = MemoryStore::default();
        let long = "x".repeat(10_000);
        now(s.put_code(&long, b"r", Duration::from_secs(1)))?;
        assert!(s.codes.lock().entries.keys().all(|k| k.len() <= 96));
        assert_eq!(now(s.take_code(&long))?, Some(b"r".to_vec()));
        Ok(())
    }

    #[test]
    fn a_future_dropped_unpolled_has_no_effect() -> Result<(), StoreError> {
        let s = MemoryStore::default();
        now(s.put_code("c", b"r", Duration::from_secs(1)))?;
        drop(s.take_code("c"));
        drop(s.gcra("k", Duration::from_secs(1), 1));
        assert_eq!(now(s.take_code("c"))?, Some(b"r".to_vec()));
        assert!(now(s.gcra("k", Duration::from_secs(1), 1))?.is_allowed());
        Ok(())
    }

    #[test]
    fn debug_output_has_no_keys_or_records() -> Result<(), StoreError> {
        let s = MemoryStore::default();
        now(s.put_code("secret-code-hash", b"secret-record", Duration::from_secs(1)))?;
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("secret"), "{dbg}");
        assert!(dbg.contains("codes: 1"));
        Ok(())
    }
}
