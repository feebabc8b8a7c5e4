//! How the client reacts to an overloaded or failing server: a scripted server stands in for the faults.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use synckit::keystore::MemoryKeyStore;
use synckit::{ErrorKind, Session, SyncKitClient, SyncKitConfig};
use synckit_protocol::paths;
use tokio::net::TcpListener;

/// Answers each request with the next scripted status (then 200), recording when each attempt arrived.
#[derive(Clone, Default)]
struct Script {
    statuses: Arc<Mutex<Vec<u16>>>,
    calls: Arc<AtomicUsize>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl Script {
    fn next(&self, ok: impl FnOnce() -> axum::response::Response) -> axum::response::Response {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.arrivals.lock().unwrap().push(Instant::now());
        let mut statuses = self.statuses.lock().unwrap();
        if statuses.is_empty() {
            return ok();
        }
        let status = StatusCode::from_u16(statuses.remove(0)).unwrap();
        let body = serde_json::json!({"error": {"code": "unavailable", "message": "scripted"}});
        (status, [("retry-after", "1")], axum::Json(body)).into_response()
    }
}

async fn client_for(script: &Script, statuses: &[u16]) -> SyncKitClient {
    *script.statuses.lock().unwrap() = statuses.to_vec();
    let (s1, s2) = (script.clone(), script.clone());
    let app = Router::new()
        .route(
            paths::STATUS,
            get(move || async move {
                s1.next(|| axum::Json(serde_json::json!({"change_count": 7, "cursor": 7})).into_response())
            }),
        )
        .route(paths::DEVICE, delete(move || async move { s2.next(|| StatusCode::NO_CONTENT.into_response()) }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = SyncKitClient::new(
        SyncKitConfig::new(url, "sk_test")
            .key_store(Arc::new(MemoryKeyStore::default()))
            .data_dir(tempfile::tempdir().unwrap().keep())
            .max_retries(2),
    );
    client.restore_session(Session {
        token: "token".into(),
        user_id: uuid::Uuid::now_v7(),
        app_id: uuid::Uuid::now_v7(),
        email: "a@example.com".into(),
        expires_at: time::OffsetDateTime::now_utc() + time::Duration::days(1),
        device_id: None,
    });
    client
}

#[tokio::test]
async fn unavailable_is_retried_after_the_servers_retry_after() {
    let script = Script::default();
    let client = client_for(&script, &[503, 429]).await;
    let status = client.status().await.unwrap();
    assert_eq!(status.change_count, 7);
    assert_eq!(script.calls.load(Ordering::SeqCst), 3);
    let arrivals = script.arrivals.lock().unwrap();
    for pair in arrivals.windows(2) {
        // Retry-After: 1 is honoured rather than the (much shorter) default back-off.
        assert!(pair[1] - pair[0] >= Duration::from_millis(900), "retried after {:?}", pair[1] - pair[0]);
    }
}

#[tokio::test]
async fn retries_are_bounded_and_the_error_says_why() {
    let script = Script::default();
    let client = client_for(&script, &[503, 503, 503, 503]).await;
    let err = client.status().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert!(err.is_retryable());
    assert_eq!(script.calls.load(Ordering::SeqCst), 3, "one attempt and max_retries = 2 retries");
}

#[tokio::test]
async fn failures_of_unsafe_requests_are_not_repeated() {
    // A 500 to a delete may have deleted: it is not sent again. A 503 says it was not processed: it is.
    let script = Script::default();
    let client = client_for(&script, &[500]).await;
    assert_eq!(client.delete_device(uuid::Uuid::now_v7()).await.unwrap_err().kind(), ErrorKind::Server);
    assert_eq!(script.calls.load(Ordering::SeqCst), 1);

    let script = Script::default();
    let client = client_for(&script, &[503]).await;
    client.delete_device(uuid::Uuid::now_v7()).await.unwrap();
    assert_eq!(script.calls.load(Ordering::SeqCst), 2);

    // An idempotent read is retried after a 500.
    let script = Script::default();
    let client = client_for(&script, &[500]).await;
    assert_eq!(client.status().await.unwrap().cursor, 7);
    assert_eq!(script.calls.load(Ordering::SeqCst), 2);
}
