//! Memory per tracked key: mcproof's `KeyedLimiter` against `governor`'s keyed limiter.
//!
//! Each measurement runs in a fresh child process (this binary, re-executed), which inserts `N`
//! distinct IP-like keys and reports the growth of its resident set size. RSS is what the
//! operator pays: it includes hash-table slack and allocator overhead. The quota (60/min,
//! burst 10) keeps every key live during the run, so nothing may be dropped as expired.
//!
//! Writes `target/criterion/limiter_memory.json` for `scripts/bench-chart.py`.
//! Under `cargo bench -- --test` (smoke run) it measures 10k keys only.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::process::Command;

use governor::{DefaultKeyedRateLimiter, Quota as GQuota, RateLimiter};
use mcproof_benches::{ip_like_key, rss_bytes};
use mcproof_server::config::Quota;
use mcproof_server::rate_limit::KeyedLimiter;

const CHILD_ENV: &str = "MCPROOF_LIMITER_MEMORY_CHILD";
const QUOTA: Quota = Quota { per_minute: 60, burst: 10 };
const SERVER_MAX_KEYS: usize = 100_000;

/// Child: `impl:N`; prints `tracked rss_delta_bytes`.
fn child(spec: &str) -> Option<()> {
    let (which, n) = spec.split_once(':')?;
    let n: u32 = n.parse().ok()?;
    let mut buf = String::new();
    let before = rss_bytes()?;
    let (tracked, after) = match which {
        "mcproof_uncapped" | "mcproof_capped" => {
            // Uncapped: room for every key even in the fullest of the 64 shards.
            let cap = if which == "mcproof_capped" { SERVER_MAX_KEYS } else { 2 * n as usize };
            let l = KeyedLimiter::new(QUOTA, cap);
            for i in 0..n {
                ip_like_key(i, &mut buf);
                black_box(l.check_now(&buf));
            }
            // Read RSS while the limiter is still alive.
            (black_box(&l).len(), rss_bytes()?)
        }
        "governor" => {
            let nz = |v: u32| NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN);
            let l: DefaultKeyedRateLimiter<String> =
                RateLimiter::keyed(GQuota::per_minute(nz(QUOTA.per_minute)).allow_burst(nz(QUOTA.burst)));
            for i in 0..n {
                ip_like_key(i, &mut buf);
                black_box(l.check_key(&buf).is_ok());
            }
            (black_box(&l).len(), rss_bytes()?)
        }
        _ => return None,
    };
    println!("{tracked} {}", after.saturating_sub(before));
    Some(())
}

fn run(which: &str, n: u32) -> Option<(usize, u64)> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new(exe).env(CHILD_ENV, format!("{which}:{n}")).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        if child(&spec).is_none() {
            std::process::exit(2);
        }
        return;
    }
    let smoke = std::env::args().any(|a| a == "--test");
    let sizes: &[u32] = if smoke { &[10_000] } else { &[100_000, 1_000_000, 4_000_000] };
    let mut rows = Vec::new();
    println!("limiter_memory: RSS growth after inserting N distinct live keys (fresh process each)");
    println!("{:<18} {:>10} {:>10} {:>14} {:>16}", "limiter", "N", "tracked", "RSS delta", "bytes/tracked");
    for &n in sizes {
        for which in ["mcproof_uncapped", "mcproof_capped", "governor"] {
            // The uncapped mcproof run is the per-key cost; skip its largest size to save time.
            if which == "mcproof_uncapped" && n > 1_000_000 {
                continue;
            }
            let Some((tracked, delta)) = run(which, n) else {
                println!("{which:<18} {n:>10}  (measurement failed)");
                continue;
            };
            let per_key = delta as f64 / tracked.max(1) as f64;
            println!("{which:<18} {n:>10} {tracked:>10} {:>11.1} MiB {per_key:>16.1}", delta as f64 / 1048576.0);
            rows.push(serde_json::json!({
                "limiter": which, "inserted": n, "tracked": tracked, "rss_delta_bytes": delta,
                "bytes_per_tracked_key": per_key,
            }));
        }
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion");
    if !smoke && std::fs::create_dir_all(&dir).is_ok() {
        let doc = serde_json::json!({ "quota": "60/min burst 10", "server_max_keys": SERVER_MAX_KEYS, "rows": rows });
        let _ = std::fs::write(dir.join("limiter_memory.json"), doc.to_string());
    }
}
