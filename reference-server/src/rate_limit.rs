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
//! Memory is bounded: each of up to 64 shards (one lock each) holds a table of *sets* of 5
//! slots (128 bytes, two adjacent cache lines). A key has two candidate sets in its shard (two
//! choices, as in cuckoo hashing, so that sets fill evenly) and is in one of them or absent, so
//! a check reads at most two sets and the work is bounded whatever the keys. A slot only ever
//! changes by being overwritten in place: no tombstones, no rehash on eviction. An entry whose
//! TAT is `<= now` is indistinguishable from an absent key, so it can be overwritten at any
//! time without changing a decision. A new key takes an empty slot of one of its sets. When
//! neither has one, the shard's table grows by half if it is at least 3/4 full (so a growing
//! table is 1/2 to 3/4 full: at most about 51 bytes per tracked key, 25.6 once at its cap;
//! growing drops expired entries); otherwise, and always once at its cap, the key overwrites an
//! expired entry of its two sets if there is one, else moves one of their entries to its other
//! set if that has room (one cuckoo step), else overwrites the live key closest to expiry,
//! which forgives the least debt. The price of sets is that a key can be forgotten before
//! `max_keys` is reached (when its two sets hold ten live keys none of which can move: 3 of
//! 100,000 live keys in a limiter for 200,000, and 2.9% of 100,000 in one for exactly 100,000,
//! in the memory benchmark); which sets a key may use is decided by a keyed, per-process random
//! hash, so a client cannot aim its keys at another client's sets. Evicting a key forgets its
//! debt, but a flood of fresh keys (TAT `now + T`) never evicts a key that owes more than one
//! interval while a fresher key sits in its sets.
//!
//! An entry is 24 bytes: a 16-byte tag and the TAT. Keys of at most 15 bytes (every IPv4 key,
//! short principal ids) are stored *exactly* in the tag, so two of them never share a bucket.
//! Longer keys are stored as a 120-bit digest made of two independently, randomly keyed
//! SipHash values: two distinct long keys share a bucket only if both collide, which an attacker
//! who does not know the per-process keys cannot arrange, and which by chance happens with
//! probability about `n / 2^120`. The tag's last byte tells the two forms apart, so a short key
//! can never share a bucket with a long one. The placement hash (which shard and sets) is a
//! cheap keyed multiply-fold, not a PRF: it decides only where a key is looked for, never
//! whether two keys are the same.
//!
//! Time is read from a TSC clock ([`quanta`], as governor does, about 8 ns under KVM against
//! about 20 ns for `Instant::now()`), calibrated against the monotonic clock at start-up, at
//! full nanosecond resolution: GCRA stays exact. See [`KeyedLimiter::check_now`].

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use spin::RelaxStrategy;
use spin::mutex::SpinMutex;

use crate::config::{Quota, RateLimitConfig};
use crate::store::{GcraDecision, SharedStore, StoreError};

/// Slots per set: five 24-byte entries, padded to 128 bytes (two adjacent cache lines, which
/// the hardware fetches together).
const WAYS: usize = 5;

/// Most shards (each has its own lock and its own table).
const MAX_SHARDS: usize = 64;

/// A shard's table grows (by half) only once at least 3/4 of its slots hold entries, so that a
/// growing table stays about 1/2 to 3/4 full: at most about 51 bytes per tracked key.
const GROW_AT: (usize, usize) = (3, 4);

/// Longest key stored verbatim in a [`Tag`]; longer keys are digested.
const INLINE_KEY_BYTES: usize = 15;

/// Marker in a tag's last byte for a digested (long) key. Inline keys put `len + 1` (1..=16)
/// there, and an empty slot has 0, so the three kinds never compare equal.
const DIGEST_MARKER: u64 = 0xFF << 56;

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

/// A key as stored: the key's bytes and `len + 1` for keys of at most [`INLINE_KEY_BYTES`]
/// bytes, else a keyed 120-bit digest with [`DIGEST_MARKER`] (see the module docs). Two `u64`s
/// rather than a `u128`, so that an entry is 24 bytes (a `u128` would align it to 32).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tag(u64, u64);

/// One slot. `tat == 0` is an empty slot (every stored TAT is at least `T >= 1`); an expired
/// entry (`tat <= now`) stays until its slot is needed, which changes no decision.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    tag: Tag,
    tat: u64,
}

/// [`WAYS`] slots, aligned so that a set spans exactly two cache lines.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(128))]
struct Set([Entry; WAYS]);

/// Where a key may live: its shard, and a second hash that picks its two candidate sets.
#[derive(Debug, Clone, Copy)]
struct Place {
    shard: usize,
    sets: u64,
}

/// One shard's table: sets of [`WAYS`] slots. Each key has two candidate sets (two choices,
/// as in cuckoo hashing, so sets fill evenly) and is in one of them or absent. The table
/// grows by half, up to `max_sets`, when a new key finds no empty slot in its sets and the
/// table is at least 3/4 full; it never shrinks and never holds tombstones: a slot only ever
/// changes by being overwritten in place (or emptied by `purge_expired`).
#[derive(Debug)]
struct Table {
    sets: Vec<Set>,
    /// Slots holding an entry (live or expired).
    used: usize,
    /// Most sets this shard may have, and the usable slots in the last of them (1..=WAYS), so
    /// that the shards' capacities sum to `max_keys` exactly.
    max_sets: usize,
    last_ways: usize,
}

/// A shard, aligned so that two shards' locks never share a cache line.
///
/// The lock is a spin lock: its release is a plain store, where `parking_lot`'s (and std's)
/// is a second atomic read-modify-write, and on this path the two atomic instructions were
/// most of the time of a check (each waits for all earlier memory accesses). It is held for
/// a lookup and an update of at most two sets (tens of nanoseconds), or while a shard's table
/// grows (at most `max_keys / 64` entries rehashed, about once per 50% growth), so waiters
/// spin briefly and then yield their time slice (see [`SpinThenYield`]).
#[derive(Debug)]
#[repr(align(64))]
struct Shard(SpinMutex<Table, SpinThenYield>);

/// Contention strategy of the shard locks: spin with the CPU's pause hint, and every 64th
/// time yield to the scheduler, so that a waiter never burns a whole time slice while the
/// lock holder is descheduled.
struct SpinThenYield;

impl RelaxStrategy for SpinThenYield {
    fn relax() {
        thread_local! {
            static SPINS: Cell<u32> = const { Cell::new(0) };
        }
        let spins = SPINS.with(|c| {
            let n = c.get().wrapping_add(1);
            c.set(n);
            n
        });
        if spins.is_multiple_of(64) {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

impl Table {
    fn new(cap: usize) -> Self {
        let max_sets = cap.div_ceil(WAYS).max(1);
        let last_ways = cap.saturating_sub((max_sets - 1) * WAYS).clamp(1, WAYS);
        Self { sets: vec![Set::default(); max_sets.min(2)], used: 0, max_sets, last_ways }
    }

    fn capacity(&self) -> usize {
        if self.sets.len() == self.max_sets {
            (self.max_sets - 1) * WAYS + self.last_ways
        } else {
            self.sets.len() * WAYS
        }
    }

    /// The two candidate sets (equal when there is one set) and their usable slot counts.
    fn candidates(&self, sets: u64) -> [(usize, usize); 2] {
        let n = self.sets.len() as u64;
        // Multiply-shift of each 32-bit half onto 0..n (n < 2^32: at most `max_keys / 5` sets).
        let a = (((sets & 0xFFFF_FFFF) * n) >> 32) as usize;
        let b = (((sets >> 32) * n) >> 32) as usize;
        let ways = |i: usize| if i + 1 == self.max_sets { self.last_ways } else { WAYS };
        [(a, ways(a)), (b, ways(b))]
    }

    /// The entry for `tag`, if present.
    fn find(&mut self, tag: Tag, sets: u64) -> Option<&mut Entry> {
        let [(a, wa), (b, wb)] = self.candidates(sets);
        let in_a = self.sets[a].0[..wa].iter().position(|e| e.tag == tag);
        match in_a {
            Some(i) => Some(&mut self.sets[a].0[i]),
            None if a != b => self.sets[b].0[..wb].iter_mut().find(|e| e.tag == tag),
            None => None,
        }
    }

    /// Stores a key known to be absent. It takes an empty slot of whichever candidate set has
    /// more of them. With no empty slot in either set, the table grows if it is at least 3/4
    /// full and may still grow (dropping expired entries); otherwise the key overwrites an
    /// expired entry of the two sets if there is one (which changes no decision), else moves
    /// one of their entries to an empty slot of that entry's other set (one cuckoo step), else
    /// overwrites the live key closest to expiry (the least debt forgiven).
    fn insert(&mut self, tag: Tag, sets: u64, tat: u64, now: u64, seed: &[u64; 3]) {
        let [(a, wa), (b, wb)] = self.candidates(sets);
        let (ia, ta, ea) = scan(&self.sets[a].0[..wa]);
        let (ib, tb, eb) = if a == b { (ia, ta, 0) } else { scan(&self.sets[b].0[..wb]) };
        let full = ea + eb == 0;
        if full && self.sets.len() < self.max_sets && self.used * GROW_AT.1 >= self.capacity() * GROW_AT.0 {
            self.grow(now, seed);
            return self.insert(tag, sets, tat, now, seed);
        }
        let (set, i, old) = if eb > ea || (full && tb < ta) { (b, ib, tb) } else { (a, ia, ta) };
        // A move needs an empty slot somewhere: none once every slot is used (a flood at the cap).
        let movable = full && old > now && self.used < self.capacity();
        if movable && self.relocate_into(a, wa, tag, tat, seed) {
            return;
        }
        if movable && a != b && self.relocate_into(b, wb, tag, tat, seed) {
            return;
        }
        if old == 0 {
            self.used += 1;
        }
        self.sets[set].0[i] = Entry { tag, tat };
    }

    /// Moves an entry of set `s` to an empty slot of its other candidate set, if one has room,
    /// and puts the new entry in its place.
    fn relocate_into(&mut self, s: usize, ways: usize, tag: Tag, tat: u64, seed: &[u64; 3]) -> bool {
        for i in 0..ways {
            let entry = self.sets[s].0[i];
            let [(x, wx), (y, wy)] = self.candidates(placement(entry.tag, seed).1);
            let (alt, alt_ways) = if x == s { (y, wy) } else { (x, wx) };
            if alt == s {
                continue;
            }
            if let Some(j) = self.sets[alt].0[..alt_ways].iter().position(|e| e.tat == 0) {
                self.sets[alt].0[j] = entry;
                self.sets[s].0[i] = Entry { tag, tat };
                self.used += 1;
                return true;
            }
        }
        false
    }

    /// Rebuilds the table half as large again (at most `max_sets`), keeping only live entries.
    fn grow(&mut self, now: u64, seed: &[u64; 3]) {
        let n = self.sets.len();
        let target = (n + n / 2).max(n + 1).min(self.max_sets);
        let old = std::mem::replace(&mut self.sets, vec![Set::default(); target]);
        self.used = 0;
        for entry in old.iter().flat_map(|s| s.0.iter()).filter(|e| e.tat > now) {
            self.insert(entry.tag, placement(entry.tag, seed).1, entry.tat, now, seed);
        }
    }
}

/// The index and TAT of the slot with the lowest TAT (empty, else expired, else closest to
/// expiry; the first of equals), and how many slots are empty.
fn scan(slots: &[Entry]) -> (usize, u64, usize) {
    let mut best = (0, u64::MAX, 0);
    for (i, e) in slots.iter().enumerate() {
        if e.tat < best.1 {
            (best.0, best.1) = (i, e.tat);
        }
        best.2 += usize::from(e.tat == 0);
    }
    best
}

/// GCRA limiter over many keys, holding at most `max_keys` keys (see the module docs).
///
/// Times are kept as `u64` nanoseconds since the limiter's creation (`epoch`), so an entry is
/// a tag plus 8 bytes. Instants before the epoch are treated as the epoch.
pub struct KeyedLimiter {
    /// Emission interval `T` in nanoseconds (> 0).
    interval: u64,
    /// Burst tolerance `tau = T * (burst - 1)` in nanoseconds.
    tolerance: u64,
    /// `check`'s time base: `std` instants are measured from here.
    epoch: Instant,
    /// `check_now`'s time base: the TSC clock and its reading at `epoch` (the same moment to
    /// within nanoseconds; both run on the monotonic clock's time base).
    clock: quanta::Clock,
    raw_epoch: u64,
    shards: Box<[Shard]>,
    /// Per-process random key of the placement hash: a client must not be able to choose which
    /// shard and sets its keys share with another client's.
    placement_seed: [u64; 3],
    /// Two independently, randomly keyed SipHash instances for the digest of long keys.
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
        let per_minute = u64::from(quota.per_minute.max(1));
        let burst = u64::from(quota.burst.max(1));
        let interval = (60_000_000_000 / per_minute).max(1);
        let tolerance = interval.saturating_mul(burst - 1);
        let max_keys = max_keys.max(1);
        // At least 16 sets' worth of keys per shard, so small limiters stay one table.
        let n = (max_keys / (16 * WAYS)).clamp(1, MAX_SHARDS);
        let shards = (0..n).map(|i| Shard(SpinMutex::new(Table::new(max_keys / n + usize::from(i < max_keys % n)))));
        let clock = quanta::Clock::new();
        let (epoch, raw_epoch) = (Instant::now(), clock.raw());
        let mut placement_seed: [u64; 3] = rand::random();
        // Never zero: the second hash multiplies by it.
        placement_seed[2] |= 1;
        Self {
            interval,
            tolerance,
            epoch,
            clock,
            raw_epoch,
            shards: shards.collect(),
            placement_seed,
            hashers: [RandomState::new(), RandomState::new()],
        }
    }

    /// The emission interval `T`: the steady-state spacing between admitted requests.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval)
    }

    /// Most keys tracked at once.
    pub fn max_keys(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let t = s.0.lock();
                (t.max_sets - 1) * WAYS + t.last_ways
            })
            .sum()
    }

    /// Keys currently tracked (including expired ones not yet overwritten).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.0.lock().used).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks and, when admitted, counts one request for `key` at the current time.
    ///
    /// The time comes from the limiter's TSC clock (a counter read and a multiply, where
    /// `Instant::now()` is a `clock_gettime` call); where the CPU has no invariant TSC, quanta
    /// falls back to the monotonic clock. Both run on the monotonic clock's time base, so
    /// mixing `check_now` and [`check`](Self::check) on one limiter agrees up to the
    /// calibration error (nanoseconds); and since GCRA takes `max(TAT, now)`, a reading a
    /// little behind an earlier one is never more permissive than the earlier one was.
    pub fn check_now(&self, key: &str) -> Decision {
        let now = self.clock.delta_as_nanos(self.raw_epoch, self.clock.raw());
        self.check_at(key, now)
    }

    /// Checks and, when admitted, counts one request for `key` at `now`.
    pub fn check(&self, key: &str, now: Instant) -> Decision {
        self.check_at(key, self.nanos(now))
    }

    fn check_at(&self, key: &str, now: u64) -> Decision {
        let tag = self.tag(key);
        let place = self.place(tag);
        let mut table = self.shards[place.shard].0.lock();
        if let Some(entry) = table.find(tag, place.sets) {
            let tat = entry.tat.max(now);
            let earliest = tat.saturating_sub(self.tolerance);
            if earliest > now {
                return Decision::Deny { retry_after: Duration::from_nanos(earliest - now) };
            }
            entry.tat = tat.saturating_add(self.interval);
            return Decision::Allow;
        }
        // An absent key behaves as TAT = now, which is always admitted.
        table.insert(tag, place.sets, now.saturating_add(self.interval), now, &self.placement_seed);
        Decision::Allow
    }

    /// Gives back one request admitted earlier for `key`: used when a later layer denies, so
    /// that the denied request does not consume this layer's quota. For a sequential caller the
    /// state afterwards is equivalent to never having counted the request; under concurrency
    /// the interim is only stricter, never more permissive.
    pub fn refund(&self, key: &str) {
        let tag = self.tag(key);
        let place = self.place(tag);
        if let Some(entry) = self.shards[place.shard].0.lock().find(tag, place.sets) {
            // Not below 1: 0 marks an empty slot (and any TAT <= now means the same anyway).
            entry.tat = entry.tat.saturating_sub(self.interval).max(1);
        }
    }

    /// Empties every slot whose entry no longer affects a decision. Optional housekeeping: the
    /// tables do not shrink, and inserts overwrite expired entries anyway; it only makes
    /// [`len`](Self::len) count live keys.
    pub fn purge_expired(&self, now: Instant) {
        let now = self.nanos(now);
        for shard in self.shards.iter() {
            let mut table = shard.0.lock();
            let mut emptied = 0;
            for entry in table.sets.iter_mut().flat_map(|s| s.0.iter_mut()).filter(|e| e.tat != 0 && e.tat <= now) {
                *entry = Entry::default();
                emptied += 1;
            }
            table.used -= emptied;
        }
    }

    #[cfg(test)]
    fn contains(&self, key: &str) -> bool {
        let tag = self.tag(key);
        let place = self.place(tag);
        self.shards[place.shard].0.lock().find(tag, place.sets).is_some_and(|e| e.tat != 0)
    }

    fn nanos(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The stored form of `key` (see [`Tag`]). Long keys are normalized as [`normalize_key`]
    /// says before digesting, which bounds the hashing work for huge keys.
    fn tag(&self, key: &str) -> Tag {
        let bytes = key.as_bytes();
        let n = bytes.len();
        if n <= INLINE_KEY_BYTES {
            // Read directly rather than through a zeroed buffer (a copy into the stack and
            // wider reads back stalled store-to-load forwarding). Lossless: n + 1 <= 16.
            let (lo, hi) = if n > 8 { (le_bytes(&bytes[..8]), le_bytes(&bytes[8..])) } else { (le_bytes(bytes), 0) };
            return Tag(lo, hi | (n as u64 + 1) << 56);
        }
        let key = normalize_key(key);
        let a = self.hashers[0].hash_one(&*key);
        let b = self.hashers[1].hash_one(&*key);
        Tag(a, (b & !DIGEST_MARKER) | DIGEST_MARKER)
    }

    fn place(&self, tag: Tag) -> Place {
        let (h, sets) = placement(tag, &self.placement_seed);
        // The high half of a 64x64 product by the shard count is below the shard count.
        let shard = ((u128::from(h) * self.shards.len() as u128) >> 64) as usize;
        Place { shard, sets }
    }
}

/// A keyed multiply-fold of the tag (its high bits pick the shard) and a second hash of that
/// (its two 32-bit halves pick the two candidate sets within the shard's table).
fn placement(tag: Tag, seed: &[u64; 3]) -> (u64, u64) {
    let h = fold_mul(tag.0 ^ seed[0], tag.1 ^ seed[1]);
    (h, fold_mul(h, seed[2]))
}

/// Up to 8 bytes as a little-endian integer (missing high bytes zero), by at most two
/// overlapping reads: the overlapping bytes land on the same positions, so OR is exact.
fn le_bytes(b: &[u8]) -> u64 {
    let n = b.len();
    if n >= 4 {
        let lo = u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let hi = u64::from(u32::from_le_bytes([b[n - 4], b[n - 3], b[n - 2], b[n - 1]]));
        lo | hi << (8 * (n - 4))
    } else if n > 0 {
        u64::from(b[0]) | u64::from(b[n / 2]) << (8 * (n / 2)) | u64::from(b[n - 1]) << (8 * (n - 1))
    } else {
        0
    }
}

/// The 128-bit product of `a` and `b`, its halves XORed: every output bit depends on every
/// input bit of both factors (the folded multiply of foldhash and wyhash).
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
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
        // One set of 4 slots, so that placement is deterministic. T = 60 s, burst 1.
        let l = KeyedLimiter::new(quota(1, 1), 4);
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
    fn tables_grow_to_keep_live_keys() {
        // 5,000 live keys (burst 1, T = 1 s) in a limiter for 10,000: the tables grow from two
        // sets per shard and keep (nearly) every key; a key still tracked is denied.
        let l = KeyedLimiter::new(quota(60, 1), 10_000);
        let t0 = Instant::now();
        for i in 0..5_000 {
            assert!(l.check(&format!("k{i}"), t0).is_allowed());
        }
        let denied = (0..5_000).filter(|i| !l.check(&format!("k{i}"), t0).is_allowed()).count();
        assert!(denied >= 4_990, "only {denied} of 5000 live keys still tracked");
        assert!(l.len() <= l.max_keys());
    }

    #[test]
    fn a_flood_of_fresh_keys_does_not_evict_a_key_in_debt() {
        let l = KeyedLimiter::new(quota(60, 5), 1_000);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(l.check("victim", t0).is_allowed());
        }
        // Twenty times the capacity in fresh keys (TAT t0 + 1 s, below the victim's t0 + 5 s).
        for i in 0..20_000 {
            assert!(l.check(&format!("flood-{i}"), t0).is_allowed());
        }
        assert!(l.len() <= 1_000);
        assert!(!l.check("victim", t0).is_allowed());
        assert!(l.check("victim", t0 + Duration::from_secs(1)).is_allowed());
    }

    #[test]
    fn concurrent_checks_of_one_key_admit_exactly_the_burst() {
        let l = KeyedLimiter::new(quota(1, 1_000), 100);
        let t0 = Instant::now();
        let admitted = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1_000 {
                        if l.check("shared", t0).is_allowed() {
                            admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(admitted.into_inner(), 1_000);
    }

    #[test]
    fn inline_tags_are_the_key_bytes_and_length() {
        let l = KeyedLimiter::new(quota(60, 1), 10);
        let key = "0123456789abcde";
        for n in 0..=INLINE_KEY_BYTES {
            let mut want = [0u8; 16];
            want[..n].copy_from_slice(&key.as_bytes()[..n]);
            want[15] = n as u8 + 1;
            let tag = l.tag(&key[..n]);
            let mut got = [0u8; 16];
            got[..8].copy_from_slice(&tag.0.to_le_bytes());
            got[8..].copy_from_slice(&tag.1.to_le_bytes());
            assert_eq!(got, want, "length {n}");
        }
        assert_eq!(l.tag(&"x".repeat(16)).1 >> 56, 0xFF);
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
