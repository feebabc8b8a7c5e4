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
