//! The shared-state contract, run unchanged against [`MemoryStore`] and against [`RedisStore`]
//! on a real `redis-server` started on a free loopback port. For Redis the suite is driven
//! through two independent clients, which is what two replicas of one deployment are: limits,
//! one-time codes, sessions, refresh rotation and revocations must hold across them. Then Redis
//! is killed mid-run (every call must fail closed, promptly) and restarted (calls must succeed
//! again without reconnecting by hand).
//!
//! `redis-server` comes from `scripts/redis.sh`. Without it these tests fail, unless
//! `MCPROOF_SKIP_REDIS` is set, in which case the Redis tests print SKIPPED and pass.

#![allow(clippy::unwrap_used)] // reason: tests; a panic is the failure report

use std::time::{Duration, Instant, SystemTime};

mod redis_server;

use futures_util::future::join_all;
use mcproof_server::store::{GcraDecision, MemoryStore, RedisStore, SharedStore, StoreError};
use redis_server::RedisServer;

async fn connect(server: &RedisServer) -> RedisStore {
    RedisStore::connect(&server.url()).await.unwrap()
}

// ---------------------------------------------------------------------------------------------
// The behavioural suite. `a` and `b` are two views of one backend (two replicas); for memory
// both are the same store.

/// Ids unique to this run, so suites never see each other's state.
fn ids() -> String {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
    format!("t{nanos:x}-{:x}", rand::random::<u32>())
}

const MS: Duration = Duration::from_millis(1);

async fn suite(a: &dyn SharedStore, b: &dyn SharedStore) {
    let run = ids();
    gcra_admits_exactly_burst(a, b, &run).await;
    gcra_retry_after_is_honest(a, b, &run).await;
    codes_are_single_use_across_replicas(a, b, &run).await;
    sessions_are_shared_and_slide(a, b, &run).await;
    refresh_tokens_rotate_once(a, b, &run).await;
    revocations_are_shared(a, b, &run).await;
    ids_and_records_of_any_shape(a, b, &run).await;
    a.ping().await.unwrap();
    b.ping().await.unwrap();
}

async fn gcra_admits_exactly_burst(a: &dyn SharedStore, b: &dyn SharedStore, run: &str) {
    // Sequential, alternating replicas: the total admitted is the burst, not twice it.
    let key = format!("{run}-seq");
    let mut admitted = 0;
    let mut first_denial = None;
    for i in 0..12 {
        let store = if i % 2 == 0 { a } else { b };
        match store.gcra(&key, Duration::from_secs(10), 5).await.unwrap() {
            GcraDecision::Allow => admitted += 1,
            GcraDecision::Deny { retry_after } => {
                first_denial.get_or_insert(retry_after);
            }
        }
    }
    assert_eq!(admitted, 5, "{} admitted {admitted} of a burst of 5", a.backend());
    let retry_after = first_denial.unwrap();
    assert!(
        retry_after <= Duration::from_secs(10) && retry_after > Duration::from_secs(9),
        "retry_after {retry_after:?} should be just under the 10 s emission interval"
    );

    // Concurrent, both replicas at once: still exactly the burst (the step is atomic).
    let key = format!("{run}-conc");
    let calls = (0..40).map(|i| {
        let store = if i % 2 == 0 { a } else { b };
        let key = key.clone();
        async move { store.gcra(&key, Duration::from_secs(10), 10).await.unwrap() }
    });
    let admitted = join_all(calls).await.into_iter().filter(|d| d.is_allowed()).count();
    assert_eq!(admitted, 10, "{}: concurrent calls admitted {admitted} of a burst of 10", a.backend());
}

async fn gcra_retry_after_is_honest(a: &dyn SharedStore, b: &dyn SharedStore, run: &str) {
    let key = format!("{run}-honest");
    // Long enough that the checks right after a sleep land within one interval on a busy machine.
    let t = 250 * MS;
    assert!(a.gcra(&key, t, 2).await.unwrap().is_allowed());
    assert!(b.gcra(&key, t, 2).await.unwrap().is_allowed());
    let GcraDecision::Deny { retry_after } = a.gcra(&key, t, 2).await.unwrap() else {
        panic!("{}: third call within the interval must be denied", a.backend())
    };
    assert!(retry_after > Duration::ZERO && retry_after <= t, "{retry_after:?}");
    // A denial consumed nothing: waiting the advertised time admits exactly one more.
    tokio::time::sleep(retry_after + MS).await;
    assert!(b.gcra(&key, t, 2).await.unwrap().is_allowed(), "{}: retry_after was not honest", a.backend());
    assert!(!a.gcra(&key, t, 2).await.unwrap().is_allowed());
    // Idle keys recover a full burst once their TAT passes.
    tokio::time::sleep(2 * t + 10 * MS).await;
    assert!(a.gcra(&key, t, 2).await.unwrap().is_allowed());
    assert!(b.gcra(&key, t, 2).await.unwrap().is_allowed());
    assert!(!a.gcra(&key, t, 2).await.unwrap().is_allowed());
}

async fn codes_are_single_use_across_replicas(a: &dyn SharedStore, b: &dyn SharedStore, run: &str) {
    let code = format!("{run}-code");
    a.put_code(&code, b"grant", Duration::from_secs(60)).await.unwrap();
    assert_eq!(b.take_code(&code).await.unwrap(), Some(b"grant".to_vec()));
    assert_eq!(a.take_code(&code).await.unwrap(), None, "redeemed on one replica, gone on the other");
    assert_eq!(b.take_code(&code).await.unwrap(), None);

    // Racing redemptions: exactly one wins.
    let code = format!("{run}-race");
    b.put_code(&code, b"grant", Duration::from_secs(60)).await.unwrap();
    let takes = (0..20).map(|i| {
        let store = if i % 2 == 0 { a } else { b };
        let code = code.clone();
        async move { store.take_code(&code).await.unwrap() }
    });
    let winners = join_all(takes).await.into_iter().flatten().count();
    assert_eq!(winners, 1, "{}: a code was redeemed {winners} times", a.backend());

    // Expired is absent.
    let code = format!("{run}-short");
    a.put_code(&code, b"grant", 50 * MS).await.unwrap();
    tokio::time::sleep(80 * MS).await;
    assert_eq!(b.take_code(&code).await.unwrap(), None);
}

async fn sessions_are_shared_and_slide(a: &dyn SharedStore, b: &dyn SharedStore, run: &str) {
    let id = format!("{run}-sess");
    a.put_session(&id, b"principal=alice", 500 * MS).await.unwrap();
    assert_eq!(b.get_session(&id).await.unwrap(), Some(b"principal=alice".to_vec()));
    // Each read restarts the idle timer, on whichever replica it happens.
    for store in [a, b, a] {
        tokio::time::sleep(250 * MS).await;
        assert_eq!(store.get_session(&id).await.unwrap(), Some(b"principal=alice".to_vec()));
    }
    assert!(b.delete_session(&id).await.unwrap());
    assert_eq!(a.get_session(&id).await.unwrap(), None, "deleted on one replica, gone on the other");
    assert!(!a.delete_session(&id).await.unwrap());

    // Idle sessions expire; expired is absent.
    let id = format!("{run}-idle");
    b.put_session(&id, b"x", 60 * MS).await.unwrap();
    tokio::time::sleep(100 * MS).await;
    assert_eq!(a.get_session(&id).await.unwrap(), None);
    assert!(!b.delete_session(&id).await.unwrap());

    // A second put replaces the record and its idle TTL.
    let id = format!("{run}-replace");
    a.put_session(&id, b"v1", 60 * MS).await.unwrap();
    b.put_session(&id, b"v2", Duration::from_secs(60)).await.unwrap();
    tokio::time::sleep(100 * MS).await;
    assert_eq!(a.get_session(&id).await.unwrap(), Some(b"v2".to_vec()));
}

async fn refresh_tokens_rotate_once(a: &dyn SharedStore, b: &dyn SharedStore, run: &str) {
    let token = format!("{run}-rt");
    let family = format!("{run}-fam");
    a.put_refresh(&token, &family, b"client=c1", Duration::from_secs(60)).await.unwrap();
    let takes = (0..10).map(|i| {
        let store = if i % 2 == 0 { a } else { b };
        let token = token.clone();
        async move { store.take_refresh(&token).await.unwrap() }
    });
    let taken: Vec<_> = join_all(takes).await.into_iter().flatten().collect();
    assert_eq!(taken, vec![(family.clone(), b"client=c1".to_vec())], "{}: rotated more than once", a.backend());
    assert_eq!(b.take_refresh(&token).await.unwrap(), None);

    let token = format!("{run}-rt-short");
    b.put_refresh(&token, &family, b"x", 50 * MS).await.unwrap();
    tokio::time::sleep(80 * MS).await;
    assert_eq!(a.take_refresh(&token).await.unwrap(), None);
}

async fn revocations_are_shared(a: &dyn SharedStore, b: &dyn SharedStore, run: &str) {
    let family = format!("{run}-fam");
    assert!(!b.family_revoked(&family).await.unwrap());
    a.revoke_family(&family, Duration::from_secs(60)).await.unwrap();
    assert!(b.family_revoked(&family).await.unwrap(), "family revoked on one replica, live on the other");
    assert!(!b.family_revoked(&format!("{run}-other-fam")).await.unwrap());

    let short = format!("{run}-fam-short");
    a.revoke_family(&short, 50 * MS).await.unwrap();
    tokio::time::sleep(80 * MS).await;
    assert!(!b.family_revoked(&short).await.unwrap());

    let jti = format!("{run}-jti");
    assert!(!a.jti_revoked(&jti).await.unwrap());
    b.revoke_jti(&jti, SystemTime::now() + Duration::from_secs(60)).await.unwrap();
    assert!(a.jti_revoked(&jti).await.unwrap(), "jti revoked on one replica, accepted on the other");
    assert!(!a.jti_revoked(&format!("{run}-other-jti")).await.unwrap());

    let past = format!("{run}-jti-past");
    b.revoke_jti(&past, SystemTime::now() - Duration::from_secs(1)).await.unwrap();
    assert!(!a.jti_revoked(&past).await.unwrap(), "an already-expired token needs no revocation entry");

    let short = format!("{run}-jti-short");
    b.revoke_jti(&short, SystemTime::now() + 200 * MS).await.unwrap();
    assert!(a.jti_revoked(&short).await.unwrap());
    tokio::time::sleep(250 * MS).await;
    assert!(!a.jti_revoked(&short).await.unwrap());
}

async fn ids_and_records_of_any_shape(a: &dyn SharedStore, b: &dyn SharedStore, run: &str) {
    // Long ids and ids outside the key alphabet are digested, consistently on every replica.
    let long = format!("{run}-{}", "x".repeat(5000));
    let odd = format!("{run} with spaces/\u{e9}\n*");
    let binary: Vec<u8> = (0..=255u8).chain([0, 0, 13, 10]).collect();
    for id in [&long, &odd] {
        a.put_code(id, &binary, Duration::from_secs(60)).await.unwrap();
        assert_eq!(b.take_code(id).await.unwrap(), Some(binary.clone()));
        b.put_session(id, &binary, Duration::from_secs(60)).await.unwrap();
        assert_eq!(a.get_session(id).await.unwrap(), Some(binary.clone()));
        a.put_refresh(id, id, &binary, Duration::from_secs(60)).await.unwrap();
        assert_eq!(b.take_refresh(id).await.unwrap(), Some((id.clone(), binary.clone())));
    }
    // An empty record is a record, not an absence.
    let empty = format!("{run}-empty");
    a.put_code(&empty, b"", Duration::from_secs(60)).await.unwrap();
    assert_eq!(b.take_code(&empty).await.unwrap(), Some(Vec::new()));
    // Distinct ids never share state.
    assert_ne!(long, format!("{long}y"));
    a.put_code(&long, b"1", Duration::from_secs(60)).await.unwrap();
    assert_eq!(b.take_code(&format!("{long}y")).await.unwrap(), None);
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn memory_store_passes_the_suite() {
    let store = MemoryStore::default();
    assert_eq!(store.backend(), "memory");
    suite(&store, &store).await;
}

#[tokio::test]
async fn redis_store_passes_the_suite_across_two_replicas() {
    let Some(server) = RedisServer::start_or_skip("redis_store_passes_the_suite_across_two_replicas") else {
        return;
    };
    let a = connect(&server).await;
    let b = connect(&server).await;
    assert_eq!(a.backend(), "redis");
    suite(&a, &b).await;
}

#[tokio::test]
async fn redis_state_this_code_never_writes_is_reported_corrupt() {
    let Some(server) = RedisServer::start_or_skip("redis_state_this_code_never_writes_is_reported_corrupt") else {
        return;
    };
    let store = connect(&server).await;
    let mut raw = server.raw().await;
    let plant = |cmd: &mut redis::Cmd| cmd.to_owned();
    for cmd in [
        plant(redis::cmd("SET").arg("mcproof:rl:bad").arg("not a number")),
        plant(redis::cmd("HSET").arg("mcproof:rl:wrongtype").arg("a").arg("b")),
        plant(redis::cmd("HSET").arg("mcproof:code:bad").arg("a").arg("b")),
        plant(redis::cmd("SET").arg("mcproof:sess:bad").arg("a string, not a hash")),
        plant(redis::cmd("HSET").arg("mcproof:sess:nottl").arg("r").arg("rec")),
        plant(redis::cmd("HSET").arg("mcproof:rt:norecord").arg("f").arg("fam")),
    ] {
        cmd.query_async::<()>(&mut raw).await.unwrap();
    }
    let corrupt = |r: Result<(), StoreError>, what: &str| {
        assert!(matches!(r, Err(StoreError::Corrupt(_))), "{what}: {r:?}");
    };
    corrupt(store.gcra("bad", Duration::from_secs(1), 1).await.map(drop), "non-numeric TAT");
    corrupt(store.gcra("wrongtype", Duration::from_secs(1), 1).await.map(drop), "TAT of the wrong type");
    corrupt(store.take_code("bad").await.map(drop), "code of the wrong type");
    corrupt(store.get_session("bad").await.map(drop), "session of the wrong type");
    corrupt(store.get_session("nottl").await.map(drop), "session without its idle TTL");
    corrupt(store.take_refresh("norecord").await.map(drop), "refresh token without a record");
    // No error message quotes a key or a value.
    let msg = store.get_session("bad").await.unwrap_err().to_string();
    assert!(!msg.contains("a string") && !msg.contains("mcproof:sess"), "{msg}");
}

/// Every operation, for the fail-closed checks: `Ok` means the backend answered.
async fn every_call(store: &dyn SharedStore) -> Vec<(&'static str, Result<(), StoreError>)> {
    let until = SystemTime::now() + Duration::from_secs(60);
    vec![
        ("ping", store.ping().await),
        ("gcra", store.gcra("fc", Duration::from_secs(1), 1000).await.map(drop)),
        ("put_code", store.put_code("fc", b"r", Duration::from_secs(60)).await),
        ("take_code", store.take_code("fc").await.map(drop)),
        ("put_session", store.put_session("fc", b"r", Duration::from_secs(60)).await),
        ("get_session", store.get_session("fc").await.map(drop)),
        ("delete_session", store.delete_session("fc").await.map(drop)),
        ("put_refresh", store.put_refresh("fc", "fam", b"r", Duration::from_secs(60)).await),
        ("take_refresh", store.take_refresh("fc").await.map(drop)),
        ("revoke_family", store.revoke_family("fc", Duration::from_secs(60)).await),
        ("family_revoked", store.family_revoked("fc").await.map(drop)),
        ("revoke_jti", store.revoke_jti("fc", until).await),
        ("jti_revoked", store.jti_revoked("fc").await.map(drop)),
    ]
}

#[tokio::test]
async fn redis_down_fails_closed_promptly_and_recovers() {
    let Some(mut server) = RedisServer::start_or_skip("redis_down_fails_closed_promptly_and_recovers") else {
        return;
    };
    let a = connect(&server).await;
    let b = connect(&server).await;
    for (name, r) in every_call(&a).await.into_iter().chain(every_call(&b).await) {
        assert!(r.is_ok(), "{name} with Redis up: {r:?}");
    }
    a.revoke_jti("revoked-before-crash", SystemTime::now() + Duration::from_secs(60)).await.unwrap();

    // Hung: the connection stays open but nothing answers. Each call gives up on its own.
    server.signal("-STOP");
    for (what, r) in [
        ("gcra", a.gcra("hung", Duration::from_secs(1), 1000).await.map(drop)),
        ("jti_revoked", b.jti_revoked("revoked-before-crash").await.map(drop)),
        ("take_code", a.take_code("hung").await.map(drop)),
    ] {
        assert!(matches!(r, Err(StoreError::Unavailable(_))), "{what} with Redis hung: {r:?}");
    }
    let started = Instant::now();
    assert!(matches!(b.ping().await, Err(StoreError::Unavailable(_))));
    assert!(started.elapsed() < Duration::from_secs(2), "a call to a hung Redis took {:?}", started.elapsed());
    server.signal("-CONT");
    let deadline = Instant::now() + Duration::from_secs(5);
    while a.ping().await.is_err() || b.ping().await.is_err() {
        assert!(Instant::now() < deadline, "the store did not recover within 5 s of Redis resuming");
        tokio::time::sleep(20 * MS).await;
    }
    assert!(b.jti_revoked("revoked-before-crash").await.unwrap());

    // Dead: connections refused.
    server.kill();
    for _round in 0..3 {
        for store in [&a, &b] {
            let started = Instant::now();
            let results = every_call(store).await;
            for (name, r) in &results {
                assert!(matches!(r, Err(StoreError::Unavailable(_))), "{name} with Redis down: {r:?}");
            }
            let elapsed = started.elapsed();
            assert!(elapsed < Duration::from_secs(2), "{} calls took {elapsed:?} with Redis down", results.len());
        }
    }
    // The decisions that matter fail closed: no admission and no "not revoked".
    assert!(a.gcra("fresh-key", Duration::from_secs(1), 1000).await.is_err());
    assert!(b.jti_revoked("revoked-before-crash").await.is_err());
    // A fresh replica cannot start against a dead Redis.
    let started = Instant::now();
    assert!(matches!(RedisStore::connect(&server.url()).await, Err(StoreError::Unavailable(_))));
    assert!(started.elapsed() < Duration::from_secs(3));

    server.restart();
    for store in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(5);
        while store.ping().await.is_err() {
            assert!(Instant::now() < deadline, "the store did not reconnect within 5 s of Redis returning");
            tokio::time::sleep(20 * MS).await;
        }
        for (name, r) in every_call(store).await {
            assert!(r.is_ok(), "{name} after Redis returned: {r:?}");
        }
    }
    // Scripts were lost with the old server; they are reloaded transparently.
    a.put_code("after", b"r", Duration::from_secs(60)).await.unwrap();
    assert_eq!(b.take_code("after").await.unwrap(), Some(b"r".to_vec()));
    assert!(a.gcra("after", Duration::from_secs(10), 1).await.unwrap().is_allowed());
    assert!(!b.gcra("after", Duration::from_secs(10), 1).await.unwrap().is_allowed());
}
