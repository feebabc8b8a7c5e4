//! A push whose answer is lost is retried with the identical request, and every change is stored exactly once.
//! A proxy between client and server stands in for the network fault.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{TestServer, email};
use serde_json::json;
use synckit::ChangeEntry;
use synckit::keystore::MemoryKeyStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Forwards to `target`, except that the first push's answer is swallowed and its connection cut, after the
/// server has handled it.
async fn lossy_proxy(target: std::net::SocketAddr) -> (String, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    tokio::spawn(async move {
        loop {
            let (client, _) = listener.accept().await.unwrap();
            let flag = flag.clone();
            tokio::spawn(async move {
                let server = TcpStream::connect(target).await.unwrap();
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let swallow = Arc::new(AtomicBool::new(false));
                let swallow_up = swallow.clone();
                let up = tokio::spawn(async move {
                    let mut buf = vec![0; 64 * 1024];
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if contains(&buf[..n], b"POST /api/sync/push") && !flag.swap(true, Ordering::SeqCst) {
                            swallow_up.store(true, Ordering::SeqCst);
                        }
                        if sw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
                let mut buf = vec![0; 64 * 1024];
                loop {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if swallow.load(Ordering::SeqCst) {
                        // The server answered; the client never hears it.
                        break;
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                up.abort();
            });
        }
    });
    (url, dropped)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

on_both_engines!(a_push_whose_answer_is_lost_stores_each_change_once);

async fn a_push_whose_answer_is_lost_stores_each_change_once(server: TestServer) {
    let (proxy_url, dropped) = lossy_proxy(server.addr).await;
    let email = email();
    let client = server.client_with(&proxy_url, Arc::new(MemoryKeyStore::default()));
    client.register(&email, "pw").await.unwrap();
    client.authenticate(&email, "pw").await.unwrap();
    client.setup_encryption_new("pw").await.unwrap();
    let device = client.register_device("laptop", "linux").await.unwrap();

    let changes: Vec<ChangeEntry> = (0..5).map(|i| ChangeEntry::insert("t", format!("r{i}"), json!(i))).collect();
    let cursor = client.push(device.id, changes.clone()).await.expect("the retry succeeds");
    assert!(dropped.load(Ordering::SeqCst), "the first answer was really lost");
    assert_eq!(cursor, 5);
    assert_eq!(client.status().await.unwrap().change_count, 5, "stored once, not twice");

    let reader = server.client();
    reader.authenticate(&email, "pw").await.unwrap();
    reader.setup_encryption_existing("pw").await.unwrap();
    let other = reader.register_device("phone", "ios").await.unwrap();
    let (seen, _, _) = reader.pull(other.id, 0).await.unwrap();
    assert_eq!(seen, changes);
}
