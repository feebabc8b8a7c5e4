//! Many writers push to one stream while readers pull in a loop. A reader must end with every committed entry
//! exactly once, in sequence order: if commits could become visible out of sequence order, a reader that moved its
//! cursor past a gap would never see the entry that filled it, and this test would catch it.
//!
//! And the bound on one stream's pushes in progress: past it, 429 with Retry-After, before the body is read.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use synckit_testkit::{Engine, TestServer, b64, code, entries, on_each_engine};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

const WRITERS: usize = 8;
const PUSHES_PER_WRITER: usize = 25;
const ENTRIES_PER_PUSH: usize = 20;
const READERS: usize = 4;

on_each_engine!(
    readers_see_every_entry_once_in_order_while_writers_push,
    a_streams_pushes_in_progress_are_bounded_and_others_go_on
);

async fn readers_see_every_entry_once_in_order_while_writers_push(app: TestServer) {
    let app = Arc::new(app);
    let user = app.user().await;
    let done = Arc::new(AtomicBool::new(false));

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (app, mut device) = (app.clone(), user.clone());
        (device.device_id, device.token) = app.device(&user.sign_in_token, &format!("writer-{w}")).await;
        writers.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for i in 0..PUSHES_PER_WRITER {
                let batch = entries(ENTRIES_PER_PUSH);
                let (status, body) = app.push(&device, &batch).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                if i % 5 == 0 {
                    // A retry racing the other writers stores nothing.
                    let (_, body) = app.push(&device, &batch).await;
                    assert_eq!(body["accepted"], 0);
                }
                sent.extend(batch.into_iter().map(|(id, _)| id));
            }
            sent
        }));
    }

    let mut readers = Vec::new();
    for _ in 0..READERS {
        let (app, token, done) = (app.clone(), user.token.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let mut seen: Vec<Uuid> = Vec::new();
            let mut cursor = 0u64;
            loop {
                // Read the flag before pulling: a pull that starts after the writers finished sees everything.
                let finished = done.load(Ordering::SeqCst);
                let (status, page) =
                    app.post("/api/sync/pull", Some(&token), json!({"cursor": cursor, "limit": 97})).await;
                assert_eq!(status, StatusCode::OK, "{page}");
                for e in page["entries"].as_array().unwrap() {
                    let seq = e["seq"].as_u64().unwrap();
                    assert_eq!(seq, cursor + 1, "a reader at cursor {cursor} was handed seq {seq}: a gap");
                    cursor = seq;
                    seen.push(e["change_id"].as_str().unwrap().parse().unwrap());
                }
                assert_eq!(page["cursor"].as_u64().unwrap(), cursor);
                if finished && !page["has_more"].as_bool().unwrap() {
                    return seen;
                }
            }
        }));
    }

    let mut sent = HashSet::new();
    for w in writers {
        sent.extend(w.await.unwrap());
    }
    done.store(true, Ordering::SeqCst);
    assert_eq!(sent.len(), WRITERS * PUSHES_PER_WRITER * ENTRIES_PER_PUSH);

    for r in readers {
        let seen = r.await.unwrap();
        assert_eq!(seen.len(), sent.len(), "every committed entry, once");
        assert_eq!(seen.iter().copied().collect::<HashSet<_>>(), sent);
    }
    let (_, status) = app.get("/api/sync/status", Some(&user.token)).await;
    assert_eq!(status["change_count"].as_u64().unwrap() as usize, sent.len());
}

/// With one push of a stream in progress (its body still arriving) and a bound of one, the next push to that stream
/// is turned away at once with 429 and Retry-After, while another user's push goes through; once the first push is
/// done the stream takes pushes again.
async fn a_streams_pushes_in_progress_are_bounded_and_others_go_on(engine: Engine) {
    let app = TestServer::start_with(engine, |s| s.push.max_queued_per_stream = 1).await;
    let (user, other) = (app.user().await, app.user().await);

    // A push whose body arrives slowly: half now, the rest later.
    let pushed = entries(3);
    let body = json!({
        "device_id": user.device_id,
        "entries": pushed.iter().map(|(id, p)| json!({"change_id": id, "payload": b64(p)})).collect::<Vec<_>>(),
    })
    .to_string();
    let head = format!(
        "POST /api/sync/push HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        app.addr,
        user.token,
        body.len()
    );
    let (first, rest) = body.split_at(body.len() / 2);
    let probe = || {
        app.http
            .post(format!("{}/api/sync/push", app.url))
            .bearer_auth(&user.token)
            .json(&json!({"device_id": user.device_id, "entries": []}))
            .send()
    };
    // The slow push holds the stream's one place once the server has read its head; a probe that comes first takes
    // the place itself, and the slow push may be the one turned away. Then both go, and the next attempt starts over.
    let mut admitted = None;
    for _ in 0..20 {
        let mut slow = TcpStream::connect(app.addr).await.unwrap();
        slow.write_all(head.as_bytes()).await.unwrap();
        slow.write_all(first.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let resp = probe().await.unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            admitted = Some((slow, resp));
            break;
        }
        let status = resp.status();
        assert_eq!(status, StatusCode::OK, "{}", resp.text().await.unwrap_or_default());
    }
    let (mut slow, refused) = admitted.expect("a second push to the stream while one is in progress is answered 429");
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=5).contains(&retry_after), "Retry-After: {retry_after}");
    assert_eq!(code(&refused.json().await.unwrap()), "rate_limited");

    // Another stream is not held up.
    let (status, body) = app.push(&other, &entries(2)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    slow.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), slow.read_to_string(&mut answer)).await.unwrap().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (status, body) = app.push(&user, &entries(1)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["cursor"], 4);
}
