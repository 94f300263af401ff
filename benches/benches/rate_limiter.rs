//! Keyed rate limiting: mcproof's `KeyedLimiter` against `governor`'s keyed limiter (default
//! DashMap state store), side by side in each group; then the Redis backend's round trip.
//!
//! Both limiters read their own clock on every call (both a quanta TSC clock: mcproof's
//! `check_now` reads the counter and scales it, governor its default clock), as they do in a
//! server. The quota is the same for
//! both: 10^9 per minute (one cell every 60 ns) with a burst of 10^6, so that the allow path
//! (which writes the state) is what runs; `new_key/*_ip_default` uses the server's default IP
//! quota (3000/min, burst 300) instead, where every key stays live for 20 ms.

use std::hint::black_box;
use std::net::TcpListener;
use std::num::NonZeroU32;
use std::process::{Child, Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota as GQuota, RateLimiter};
use mcproof_benches::{MEASUREMENT, SAMPLES, WARM_UP, ip_like_key};
use mcproof_server::config::Quota;
use mcproof_server::rate_limit::KeyedLimiter;
use mcproof_server::store::{MemoryStore, RedisStore, SharedStore};

const GENEROUS: Quota = Quota { per_minute: 1_000_000_000, burst: 1_000_000 };
const IP_DEFAULT: Quota = Quota { per_minute: 3_000, burst: 300 };
/// The server's default `rate_limits.max_keys`.
const SERVER_MAX_KEYS: usize = 100_000;

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

fn governor_quota(q: Quota) -> GQuota {
    GQuota::per_minute(nz(q.per_minute)).allow_burst(nz(q.burst))
}

fn governor(q: Quota) -> DefaultKeyedRateLimiter<String> {
    RateLimiter::keyed(governor_quota(q))
}

fn keys(n: u32) -> Vec<String> {
    let mut buf = String::new();
    (0..n)
        .map(|i| {
            ip_like_key(i, &mut buf);
            buf.clone()
        })
        .collect()
}

/// Round-robin over `keys` after inserting every one of them into both limiters.
fn round_robin(group: &mut BenchmarkGroup<'_, WallTime>, keys: &[String], max_keys: usize) {
    let ours = KeyedLimiter::new(GENEROUS, max_keys);
    let theirs = governor(GENEROUS);
    for k in keys {
        ours.check_now(k);
        let _ = theirs.check_key(k);
    }
    let mut i = 0usize;
    group.bench_function("mcproof", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(ours.check_now(black_box(&keys[i])))
        })
    });
    // The same check with the time passed in (advancing 60 ns a call): the table alone,
    // without the clock read that `check_now` adds.
    let mut i = 0usize;
    let t0 = Instant::now();
    let mut ticks = 0u64;
    group.bench_function("mcproof_time_given", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            ticks += 60;
            black_box(ours.check(black_box(&keys[i]), t0 + Duration::from_nanos(ticks)))
        })
    });
    let mut i = 0usize;
    group.bench_function("governor", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(theirs.check_key(black_box(&keys[i])).is_ok())
        })
    });
}

fn fast<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.warm_up_time(WARM_UP).measurement_time(MEASUREMENT).sample_size(SAMPLES);
    group
}

/// What a clock read costs: `std::time::Instant::now()` (a vDSO `clock_gettime`; mcproof's
/// limiter used it until it moved to a TSC clock) against governor's default clock (quanta).
fn clocks(c: &mut Criterion) {
    let mut group = fast(c, "rate_limiter/clock");
    group.bench_function("std_instant_now", |b| b.iter(Instant::now));
    let clock = DefaultClock::default();
    group.bench_function("governor_default_clock", |b| b.iter(|| clock.now()));
    group.finish();
}

fn single_thread(c: &mut Criterion) {
    let mut group = fast(c, "rate_limiter/1_key");
    round_robin(&mut group, &keys(1), SERVER_MAX_KEYS);
    group.finish();

    let mut group = fast(c, "rate_limiter/10k_keys");
    round_robin(&mut group, &keys(10_000), SERVER_MAX_KEYS);
    group.finish();

    // mcproof is bounded by max_keys: raise it so that all 1M keys are tracked, as governor does.
    let mut group = fast(c, "rate_limiter/1m_keys");
    round_robin(&mut group, &keys(1_000_000), 2_000_000);
    group.finish();
}

/// A key never seen before on every call (a flood of spoofed sources). mcproof keeps at most
/// the server default of 100k keys and evicts; governor keeps every key it has seen.
fn new_key(c: &mut Criterion) {
    let mut group = fast(c, "rate_limiter/new_key");
    for (label, quota) in [("generous", GENEROUS), ("ip_default", IP_DEFAULT)] {
        let ours = KeyedLimiter::new(quota, SERVER_MAX_KEYS);
        let mut n = 0u32;
        let mut buf = String::new();
        group.bench_function(format!("mcproof/{label}"), |b| {
            b.iter(|| {
                n = n.wrapping_add(1);
                ip_like_key(n, &mut buf);
                black_box(ours.check_now(&buf))
            })
        });
        let tracked = ours.len();
        let theirs = governor(quota);
        let mut n = 0u32;
        group.bench_function(format!("governor/{label}"), |b| {
            b.iter(|| {
                n = n.wrapping_add(1);
                ip_like_key(n, &mut buf);
                black_box(theirs.check_key(&buf).is_ok())
            })
        });
        println!(
            "rate_limiter/new_key/{label}: keys tracked after the run: mcproof {tracked} (cap {SERVER_MAX_KEYS}), \
             governor {} (no cap)",
            theirs.len()
        );
    }
    group.finish();
}

/// Two threads calling at once; the time reported is wall time per call per thread.
fn contended<F: Fn(usize, u64) + Sync>(iters: u64, work: &F) -> Duration {
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    work(t, iters);
                    start.elapsed()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_default()).max().unwrap_or_default()
    })
}

fn two_threads(c: &mut Criterion) {
    for (name, n) in [("rate_limiter/2_threads_1_key", 1u32), ("rate_limiter/2_threads_10k_keys", 10_000)] {
        let keys = keys(n);
        let ours = KeyedLimiter::new(GENEROUS, SERVER_MAX_KEYS);
        let theirs = governor(GENEROUS);
        for k in &keys {
            ours.check_now(k);
            let _ = theirs.check_key(k);
        }
        let len = keys.len();
        let mut group = fast(c, name);
        group.bench_function("mcproof", |b| {
            b.iter_custom(|iters| {
                contended(iters, &|t, iters| {
                    let mut i = t * len / 2;
                    for _ in 0..iters {
                        i = (i + 1) % len;
                        black_box(ours.check_now(&keys[i]));
                    }
                })
            })
        });
        group.bench_function("governor", |b| {
            b.iter_custom(|iters| {
                contended(iters, &|t, iters| {
                    let mut i = t * len / 2;
                    for _ in 0..iters {
                        i = (i + 1) % len;
                        black_box(theirs.check_key(&keys[i]).is_ok());
                    }
                })
            })
        });
        group.finish();
    }
}

/// A `redis-server` on a free loopback port, stopped when dropped.
struct LocalRedis {
    child: Child,
    port: u16,
}

impl LocalRedis {
    fn start() -> Option<LocalRedis> {
        let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let redis = LocalRedis { child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(redis);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shared-store GCRA step (`SharedStore::gcra`): Redis over loopback (one Lua script call)
/// against the in-memory store behind the same trait, and the in-process limiter.
fn redis_round_trip(c: &mut Criterion) {
    let Some(redis) = LocalRedis::start() else {
        println!("rate_limiter/redis: SKIPPED (redis-server not found or did not start)");
        return;
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            println!("rate_limiter/redis: SKIPPED (no tokio runtime: {e})");
            return;
        }
    };
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let store = match rt.block_on(RedisStore::connect(&url)) {
        Ok(s) => s,
        Err(e) => {
            println!("rate_limiter/redis: SKIPPED (cannot connect: {e})");
            return;
        }
    };
    let memory = MemoryStore::default();
    let interval = Duration::from_nanos(60);
    let mut group = fast(c, "rate_limiter/shared_gcra");
    group.bench_function("redis_loopback", |b| {
        b.iter(|| rt.block_on(async { black_box(store.gcra("ip:10.0.0.1", interval, 1_000_000).await) }))
    });
    group.bench_function("memory_store", |b| {
        b.iter(|| rt.block_on(async { black_box(memory.gcra("ip:10.0.0.1", interval, 1_000_000).await) }))
    });
    let ours = KeyedLimiter::new(GENEROUS, SERVER_MAX_KEYS);
    group.bench_function("in_process", |b| b.iter(|| black_box(ours.check_now(black_box("ip:10.0.0.1")))));
    group.finish();
    drop(redis);
}

criterion_group!(benches, clocks, single_thread, new_key, two_threads, redis_round_trip);
criterion_main!(benches);
