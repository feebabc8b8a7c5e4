//! Our reaction to the database going away: 503 with Retry-After while it is gone, nothing lost, and recovery
//! without a restart when it returns. A TCP proxy in front of the real Postgres stands in for the outage.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{TestApp, entries};
use reqwest::StatusCode;
use secrecy::SecretString;
use synckit_server::Settings;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards to Postgres while up; when cut, drops every open connection and refuses new ones.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Proxy {
    async fn start(target: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, _) = watch::channel(0u64);
        let (up2, cut2) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            loop {
                let (mut client, _) = listener.accept().await.unwrap();
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is closed at once
                }
                let mut cut_rx = cut2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Self { port, up, cut }
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            self.cut.send_modify(|generation| *generation += 1);
        }
    }
}

#[tokio::test]
async fn database_outage_answers_503_and_recovers_without_restart() {
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let direct = synckit_testkit::fresh_database().await.unwrap();
    let proxied = direct.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    assert_ne!(proxied, direct, "the test database URL names 127.0.0.1:5432");
    let app = TestApp::start(|s| Settings { database_url: Some(SecretString::from(proxied)), ..s }).await;
    let user = app.user().await;
    let (status, _) = app.push(&user, &entries(3)).await;
    assert_eq!(status, StatusCode::OK);

    proxy.set_up(false);
    for _ in 0..2 {
        let resp = app.http.get(format!("{}/api/sync/status", app.url)).bearer_auth(&user.token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(resp.headers().get("retry-after").is_some(), "503 carries Retry-After");
        assert_eq!(common::code(&resp.json().await.unwrap()), "unavailable");
    }
    let (status, body) = app.push(&user, &entries(2)).await;
    assert_eq!((status, common::code(&body)), (StatusCode::SERVICE_UNAVAILABLE, "unavailable"));
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
