//! Many writers push to one stream while readers pull in a loop. A reader must end with every committed entry
//! exactly once, in sequence order: if commits could become visible out of sequence order, a reader that moved its
//! cursor past a gap would never see the entry that filled it, and this test would catch it.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::StatusCode;
use serde_json::json;
use synckit_testkit::{TestServer, entries, on_each_engine};
use uuid::Uuid;

const WRITERS: usize = 8;
const PUSHES_PER_WRITER: usize = 25;
const ENTRIES_PER_PUSH: usize = 20;
const READERS: usize = 4;

on_each_engine!(readers_see_every_entry_once_in_order_while_writers_push);

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
