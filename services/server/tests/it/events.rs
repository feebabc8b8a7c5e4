//! `GET /api/sync/events` over real HTTP: what a raw client sees.

use std::time::Duration;

use reqwest::StatusCode;
use synckit_testkit::{TestServer, code, engine, entries, on_each_engine};

/// An open event stream and the text read from it so far.
pub(crate) struct EventStream {
    resp: reqwest::Response,
    pub(crate) text: String,
}

impl EventStream {
    pub(crate) async fn open(
        app: &TestServer,
        token: &str,
        last_event_id: Option<u64>,
    ) -> Result<Self, (StatusCode, serde_json::Value)> {
        let mut req = app.http.get(format!("{}/api/sync/events", app.url)).bearer_auth(token);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let resp = req.send().await.unwrap();
        if resp.status() != StatusCode::OK {
            let status = resp.status();
            return Err((status, resp.json().await.unwrap()));
        }
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Ok(Self { resp, text: String::new() })
    }

    /// Reads until the text contains `needle` (a guard keeps a broken server from hanging the test).
    pub(crate) async fn until(&mut self, needle: &str) -> &str {
        let guard = tokio::time::Instant::now() + Duration::from_secs(10);
        while !self.text.contains(needle) {
            match tokio::time::timeout_at(guard, self.resp.chunk()).await {
                Ok(Ok(Some(chunk))) => self.text.push_str(&String::from_utf8_lossy(&chunk)),
                other => panic!("stream ended or stalled before {needle:?}: {other:?}; got {:?}", self.text),
            }
        }
        &self.text
    }

    /// True when the server closes the stream (within the guard).
    pub(crate) async fn closes(&mut self) -> bool {
        let guard = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::time::timeout_at(guard, self.resp.chunk()).await {
                Ok(Ok(Some(_))) => continue,
                Ok(_) => return true,
                Err(_) => return false,
            }
        }
    }
}

on_each_engine!(hello_then_a_commit_after_each_push);

async fn hello_then_a_commit_after_each_push(app: TestServer) {
    let user = app.user().await;
    app.push(&user, &entries(2)).await;
    let mut events = EventStream::open(&app, &user.token, Some(1)).await.unwrap();
    // The hello gives the current cursor and, with Last-Event-ID 1, that the client missed something.
    events.until("event: hello\nid: 2\ndata: {\"cursor\":2,\"missed\":true}").await;
    app.push(&user, &entries(3)).await;
    let device = user.device_id;
    events.until(&format!("event: commit\nid: 5\ndata: {{\"cursor\":5,\"device_id\":\"{device}\"}}")).await;
    // Another user of the same app has a stream of their own.
    let other = app.user().await;
    let mut theirs = EventStream::open(&app, &other.token, None).await.unwrap();
    theirs.until("\"missed\":null").await;
    app.push(&user, &entries(1)).await;
    events.until("id: 6").await;
    assert!(!theirs.text.contains("commit"), "another user's stream hears nothing of this one");
}

#[tokio::test]
async fn connections_per_user_are_capped() {
    let app = TestServer::start_with(engine::embedded(), |s| s.events.max_connections_per_user = 2).await;
    let user = app.user().await;
    let _a = EventStream::open(&app, &user.token, None).await.unwrap();
    let b = EventStream::open(&app, &user.token, None).await.unwrap();
    let (status, body) = EventStream::open(&app, &user.token, None).await.err().expect("a third is refused");
    assert_eq!((status, code(&body)), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
    // Closing one frees its place.
    drop(b);
    let mut reopened = None;
    for _ in 0..50 {
        if let Ok(stream) = EventStream::open(&app, &user.token, None).await {
            reopened = Some(stream);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reopened.is_some(), "a closed stream gives its place back");
}

#[tokio::test]
async fn streams_end_at_their_lifetime_and_on_shutdown() {
    let app = TestServer::start_with(engine::embedded(), |s| s.events.max_lifetime = Duration::from_secs(1)).await;
    let user = app.user().await;
    let mut events = EventStream::open(&app, &user.token, None).await.unwrap();
    events.until("event: hello").await;
    assert!(events.closes().await, "the server closes a stream after its lifetime");

    let app = TestServer::start(engine::embedded()).await;
    let user = app.user().await;
    let mut events = EventStream::open(&app, &user.token, None).await.unwrap();
    events.until("event: hello").await;
    drop(app); // drops the shutdown sender: the server begins to shut down
    assert!(events.closes().await, "shutdown ends open event streams");
}

#[tokio::test]
async fn events_need_a_token() {
    let app = TestServer::start(engine::embedded()).await;
    let (status, body) = app.get("/api/sync/events", None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "missing_token"));
}

#[tokio::test]
async fn with_nats_down_pushes_succeed_and_streams_keep_their_heartbeats() {
    // Nothing listens on this port: NATS is down for the whole test.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead = format!("nats://127.0.0.1:{port}");
    let app = TestServer::start_with(engine::embedded(), |s| {
        s.nats_url = Some(dead);
        s.events.heartbeat = Duration::from_secs(1);
    })
    .await;
    let user = app.user().await;
    let mut events = EventStream::open(&app, &user.token, None).await.unwrap();
    events.until("event: hello").await;
    let (status, body) = app.push(&user, &entries(1)).await;
    assert_eq!((status, body["cursor"].as_u64()), (StatusCode::OK, Some(1)), "the push does not need the bus");
    // A heartbeat is an empty comment line; nothing else in the stream ends with ":\n\n".
    events.until(":\n\n").await;
    assert!(!events.text.contains("event: commit"), "no notice without the bus");
}
