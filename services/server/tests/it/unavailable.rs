//! Our reaction to the database going away: 503 with Retry-After while it is gone, nothing lost, and recovery
//! without a restart when it returns. A TCP proxy in front of the real Postgres stands in for the outage.

use std::time::Duration;

use reqwest::StatusCode;
use synckit_testkit::{FaultProxy, TestServer, code, engine, entries};

#[tokio::test]
async fn database_outage_answers_503_and_recovers_without_restart() {
    let proxy = FaultProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let direct = synckit_testkit::fresh_database().await.unwrap();
    let proxied = direct.replace("127.0.0.1:5432", &proxy.addr.to_string());
    assert_ne!(proxied, direct, "the test database URL names 127.0.0.1:5432");
    let app = TestServer::start_with(engine::embedded(), |s| s.database.url = Some(proxied.into())).await;
    let user = app.user().await;
    let (status, _) = app.push(&user, &entries(3)).await;
    assert_eq!(status, StatusCode::OK);

    proxy.set_up(false);
    for _ in 0..2 {
        let resp = app.http.get(format!("{}/api/sync/status", app.url)).bearer_auth(&user.token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(resp.headers().get("retry-after").is_some(), "503 carries Retry-After");
        assert_eq!(code(&resp.json().await.unwrap()), "unavailable");
    }
    let (status, body) = app.push(&user, &entries(2)).await;
    assert_eq!((status, code(&body)), (StatusCode::SERVICE_UNAVAILABLE, "unavailable"));
    assert_eq!(app.get("/readyz", None).await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.get("/healthz", None).await.0, StatusCode::OK, "the process itself is alive");

    proxy.set_up(true);
    // The pool reconnects on demand; allow it a few attempts, without restarting anything.
    let mut ready = false;
    for _ in 0..50 {
        if app.get("/readyz", None).await.0 == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "ready again once the database is back");
    let (status, body) = app.push(&user, &entries(2)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["cursor"], 5, "the push refused during the outage stored nothing");
    assert_eq!(app.pull_all(&user.token, 0).await.len(), 5);
}

/// A push whose stream's head row is locked elsewhere (another instance's push, an operator's transaction) gives up
/// after `SYNCKIT_DB_LOCK_TIMEOUT_SECS` with 503 and Retry-After, instead of holding its connection until the request
/// deadline; it stores nothing, and the stream takes pushes again once the lock is gone.
#[tokio::test]
async fn a_push_waiting_on_a_locked_stream_gives_up_with_503() {
    let app = TestServer::start_with(engine::postgres(), |s| {
        s.database.lock_timeout = Duration::from_secs(1);
        s.serve.request_timeout = Duration::from_secs(15);
    })
    .await;
    let user = app.user().await;
    assert_eq!(app.push(&user, &entries(2)).await.0, StatusCode::OK);

    let holder =
        synckit_testkit::postgres::hold_stream_locks(app.database_url().unwrap(), &[(user.app_id, user.user_id)])
            .await
            .unwrap();

    let started = std::time::Instant::now();
    let (status, body) = app.push(&user, &entries(3)).await;
    let waited = started.elapsed();
    assert_eq!((status, code(&body)), (StatusCode::SERVICE_UNAVAILABLE, "unavailable"), "{body}");
    // The request deadline (15 s) would have answered 408; the lock timeout (1 s) answers first.
    assert!(waited < Duration::from_secs(10), "answered after {waited:?}");
    let resp = app
        .http
        .post(format!("{}/api/sync/push", app.url))
        .bearer_auth(&user.token)
        .json(&serde_json::json!({"device_id": user.device_id, "entries": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().get("retry-after").is_some(), "503 carries Retry-After");

    holder.batch_execute("ROLLBACK").await.unwrap();
    let (status, body) = app.push(&user, &entries(1)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["cursor"], 3, "the refused push stored nothing");
}
