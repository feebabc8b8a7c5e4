//! Users share the database fairly: one user's pushes, however many and however large, neither take every database
//! connection nor make another user's requests wait for them; token checks always find a connection; and a push
//! whose request timed out does not commit later.
//!
//! Abuse traffic stays on loopback and is bounded in count and time.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use synckit_store::StreamId;
use synckit_testkit::{Engine, TestServer, TestUser, b64, engine, entries, random_bytes};
use uuid::Uuid;

fn stream(user: &TestUser) -> StreamId {
    StreamId { app_id: user.app_id, user_id: user.user_id }
}

/// Pushes blocked on their streams' locks (held by another transaction, as another instance's pushes would) hold
/// database connections; another user's pulls and status, token check included, still answer at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_token_checks_answer_while_pushes_wait_on_locks() {
    const BLOCKED: usize = 6;
    let app = TestServer::start_with(engine::postgres(), |s| {
        // A small pool, fewer connections than blocked pushes.
        s.database.max_connections = 4;
        // The pushes stay blocked for as long as the test holds the locks.
        s.database.lock_timeout = Duration::from_secs(60);
        s.serve.request_timeout = Duration::from_secs(90);
    })
    .await;
    let app = Arc::new(app);
    let mut pushers = Vec::new();
    for _ in 0..BLOCKED {
        let user = app.user().await;
        assert_eq!(app.push(&user, &entries(1)).await.0, StatusCode::OK);
        pushers.push(user);
    }
    let reader = app.user().await;
    assert_eq!(app.push(&reader, &entries(2)).await.0, StatusCode::OK);

    let streams: Vec<_> = pushers.iter().map(|u| (u.app_id, u.user_id)).collect();
    let holder = synckit_testkit::postgres::hold_stream_locks(app.database_url().unwrap(), &streams).await.unwrap();
    let blocked: Vec<_> = pushers
        .iter()
        .map(|user| {
            let (app, user) = (app.clone(), user.clone());
            tokio::spawn(async move { app.push(&user, &entries(3)).await })
        })
        .collect();
    // Let the pushes reach the database and take what connections they may.
    tokio::time::sleep(Duration::from_millis(500)).await;

    for _ in 0..5 {
        let started = Instant::now();
        let (status, page) = app.post("/api/sync/pull", Some(&reader.token), json!({"cursor": 0})).await;
        assert_eq!(status, StatusCode::OK, "a pull while other users' pushes wait: {page}");
        assert_eq!(page["entries"].as_array().unwrap().len(), 2);
        let (status, body) = app.get("/api/sync/status", Some(&reader.token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // Well below the pool's 5 s wait for a connection, which is what a starved request would sit through.
        assert!(started.elapsed() < Duration::from_secs(3), "pull and status took {:?}", started.elapsed());
    }

    holder.batch_execute("ROLLBACK").await.unwrap();
    for push in join_all(blocked).await {
        let (status, body) = push.unwrap();
        assert_eq!(status, StatusCode::OK, "a blocked push goes through once the lock is free: {body}");
        assert_eq!(body["cursor"], 4);
    }
}

/// A push answered 408 by the request deadline while it waited for the embedded database's write lock is not
/// committed afterwards, when the lock comes free: its client was told it failed, and the stream's head stays put.
/// So is a push queued behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_answered_408_is_not_committed_afterwards() {
    let app = TestServer::start_with(engine::embedded(), |s| s.serve.request_timeout = Duration::from_secs(1)).await;
    let app = Arc::new(app);
    let (user, queued) = (app.user().await, app.user().await);
    assert_eq!(app.push(&user, &entries(1)).await.0, StatusCode::OK);

    // Another process's write transaction holds SQLite's write lock for longer than the request deadline, and less
    // than the server's busy timeout (5 s), so the server's push gets the lock in the end.
    let holder = rusqlite::Connection::open(app.data_dir.path().join("synckit.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let pushes: Vec<_> = [user.clone(), queued.clone()]
        .into_iter()
        .map(|u| {
            let app = app.clone();
            tokio::spawn(async move { app.push(&u, &entries(3)).await })
        })
        .collect();
    for push in join_all(pushes).await {
        let (status, body) = push.unwrap();
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{body}");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    holder.execute_batch("COMMIT").unwrap();
    // Time for an abandoned push to commit, if it were going to.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let log = &app.engines.changelog;
    assert_eq!(log.head(stream(&user)).await.unwrap(), 1, "a push answered 408 committed afterwards");
    assert_eq!(log.head(stream(&queued)).await.unwrap(), 0, "a push queued behind it committed afterwards");
    let (status, body) = app.push(&user, &entries(1)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["cursor"], 2);
}

/// Victim requests per phase, and the most a phase may take.
const SAMPLES: usize = 200;
const PHASE_LIMIT: Duration = Duration::from_secs(20);
/// Concurrent hammering pushes: twice the default pool's 16 connections.
const HAMMERS: usize = 32;
/// Each hammering push: the most entries a push may hold, 512 bytes each.
const HAMMER_ENTRIES: usize = 500;
const HAMMER_PAYLOAD: usize = 512;
/// Different hammering pushes, built beforehand and sent at most once each (and retried at most 50 times while turned
/// away): more than the hammering gets through while the victim's requests are measured, so that it lasts all along.
const HAMMER_BUDGET: usize = 1000;
/// What a two-core machine whose cores the hammering keeps busy (its client runs on them too) adds to a request now and
/// then, whatever the server does, a couple of scheduler time slices: the bound is five times the quiet p99, or this,
/// whichever is larger. The tests run alone (see .config/nextest.toml), so no other test's load counts.
const NOISE_FLOOR: Duration = Duration::from_millis(10);

#[derive(Default)]
struct Latencies {
    push: Vec<Duration>,
    pull: Vec<Duration>,
    /// Answers other than 200, by status.
    failures: Vec<StatusCode>,
}

fn p99(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let i = (sorted.len() * 99).div_ceil(100).saturating_sub(1);
    sorted.get(i).copied().unwrap_or_default()
}

/// The victim's pushes of one small entry, each followed by a pull of it, `SAMPLES` of each or `PHASE_LIMIT`.
async fn victim(app: &TestServer, user: &TestUser, cursor: &mut u64, samples: usize) -> Latencies {
    let mut out = Latencies::default();
    let deadline = Instant::now() + PHASE_LIMIT;
    for _ in 0..samples {
        let started = Instant::now();
        let (status, body) = app.push(user, &entries(1)).await;
        out.push.push(started.elapsed());
        if status == StatusCode::OK {
            *cursor = body["cursor"].as_u64().unwrap();
        } else {
            out.failures.push(status);
        }
        let started = Instant::now();
        let (status, _) = app.post("/api/sync/pull", Some(&user.token), json!({"cursor": *cursor - 1})).await;
        out.pull.push(started.elapsed());
        if status != StatusCode::OK {
            out.failures.push(status);
        }
        if Instant::now() > deadline {
            break;
        }
    }
    out
}

/// A hammering push: the most entries a push may hold, each new.
fn hammer_body(device_id: Uuid) -> Vec<u8> {
    let entries: Vec<_> = (0..HAMMER_ENTRIES)
        .map(|_| json!({"change_id": Uuid::now_v7(), "payload": b64(&random_bytes(HAMMER_PAYLOAD))}))
        .collect();
    serde_json::to_vec(&json!({"device_id": device_id, "entries": entries})).unwrap()
}

/// The hammering pushes, built before anything is measured: building one costs the test's client more CPU than the
/// server spends on it, and on this two-core machine a client building bodies while the victim is measured would
/// slow the victim's requests whatever the server does.
fn hammer_bodies(device_id: Uuid) -> Vec<Vec<u8>> {
    std::thread::scope(|scope| {
        let halves: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| (0..HAMMER_BUDGET / 2).map(|_| hammer_body(device_id)).collect::<Vec<_>>()))
            .collect();
        halves.into_iter().flat_map(|half| half.join().unwrap()).collect()
    })
}

/// One hammering client: large pushes of new entries to its own stream, back to back, until told to stop or the
/// shared pushes are spent. A push turned away with 429 is sent again a moment later, without waiting for
/// Retry-After.
async fn hammer(app: Arc<TestServer>, user: TestUser, stop: Arc<AtomicBool>, bodies: Arc<Mutex<Vec<Bytes>>>) -> usize {
    // Its own connections: another user's client never shares them.
    let http = reqwest::Client::new();
    let mut sent = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some(body) = bodies.lock().unwrap().pop() else { break };
        // The same push again while it is turned away, as a client retrying it would; at most a few seconds' worth.
        for _ in 0..50 {
            let answer = http
                .post(format!("{}/api/sync/push", app.url))
                .bearer_auth(&user.token)
                .header("content-type", "application/json")
                .body(body.clone())
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            sent += 1;
            if stop.load(Ordering::Relaxed) || !answer.is_ok_and(|r| r.status() == StatusCode::TOO_MANY_REQUESTS) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    sent
}

/// One user hammering their own stream with concurrent large pushes does not push another user's push or pull p99
/// over five times its quiet value, measured first in the same test.
async fn one_users_hammering_does_not_slow_another_user(engine: Engine) {
    let app = Arc::new(TestServer::start(engine).await);
    let (victim_user, hammer_user) = (app.user().await, app.user().await);
    let mut cursor = 0;
    // Warm up: connections made, statements prepared.
    victim(&app, &victim_user, &mut cursor, 20).await;
    let quiet = victim(&app, &victim_user, &mut cursor, SAMPLES).await;
    assert!(quiet.failures.is_empty(), "quiet: {:?}", quiet.failures);

    // One hammering push alone: on SQLite, which serialises every write, the victim's push may wait for the one write
    // ahead of it (by design), never for more.
    let mut one_write = Duration::ZERO;
    for _ in 0..3 {
        let body = hammer_body(hammer_user.device_id);
        let started = Instant::now();
        let resp = app
            .http
            .post(format!("{}/api/sync/push", app.url))
            .bearer_auth(&hammer_user.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        one_write = one_write.max(started.elapsed());
    }

    let device_id = hammer_user.device_id;
    let bodies: Vec<Bytes> = tokio::task::spawn_blocking(move || hammer_bodies(device_id))
        .await
        .unwrap()
        .into_iter()
        .map(Bytes::from)
        .collect();
    let (stop, bodies) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(bodies)));
    let mut hammers = Vec::new();
    for i in 0..HAMMERS {
        let mut device = hammer_user.clone();
        if i > 0 {
            // The same user on several devices, as a script with many tokens would be.
            device = app.other_device(&hammer_user, &format!("hammer-{i}")).await;
        }
        hammers.push(tokio::spawn(hammer(app.clone(), device, stop.clone(), bodies.clone())));
    }
    // Let the hammering get going: every client has a push in flight.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let loud = victim(&app, &victim_user, &mut cursor, SAMPLES).await;
    stop.store(true, Ordering::Relaxed);
    let left = bodies.lock().unwrap().len();
    let sent: usize = join_all(hammers).await.into_iter().map(Result::unwrap).sum();

    let bound = |quiet: Duration| (quiet * 5).max(NOISE_FLOOR);
    let (quiet_push, loud_push) = (p99(&quiet.push), p99(&loud.push));
    let (quiet_pull, loud_pull) = (p99(&quiet.pull), p99(&loud.pull));
    let push_bound = if engine.postgres { bound(quiet_push) } else { bound(quiet_push) + one_write };
    eprintln!(
        "{engine:?}: push p99 quiet {quiet_push:?}, hammered {loud_push:?} (bound {push_bound:?}, one hammering push \
         alone {one_write:?}); pull p99 quiet {quiet_pull:?}, hammered {loud_pull:?}; {} victim requests hammered, {} \
         failed; {sent} hammering pushes sent",
        loud.push.len() + loud.pull.len(),
        loud.failures.len()
    );
    assert!(sent > HAMMERS, "the hammering ran ({sent} pushes)");
    assert!(loud_push <= push_bound, "push p99 {loud_push:?} against {quiet_push:?} quiet");
    assert!(loud_pull <= bound(quiet_pull), "pull p99 {loud_pull:?} against {quiet_pull:?} quiet");
    // Checked after the bounds, which a hammering that stopped early could only have made easier to meet.
    assert!(left > 0, "the hammering's budget ran out before the victim's requests were all measured");
    assert!(loud.failures.is_empty(), "the victim's requests failed: {:?}", loud.failures);
    assert_eq!(loud.push.len(), SAMPLES, "the victim's phase ran out of time");
}

mod hammering {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fair_on_postgres() {
        one_users_hammering_does_not_slow_another_user(engine::postgres()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fair_on_embedded() {
        one_users_hammering_does_not_slow_another_user(engine::embedded()).await;
    }
}
