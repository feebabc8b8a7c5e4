//! `/readyz` per role: each role answers 503 naming the engine it needs that is down, and only those it needs; the
//! answer is bounded in time; and readiness comes back by itself with the engine.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use synckit_server::Role;
use synckit_testkit::{TestServer, engine};

/// A loopback address nothing listens on (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn readyz(app: &TestServer) -> (StatusCode, Value, Option<String>) {
    let resp = app.http.get(format!("{}/readyz", app.url)).send().await.unwrap();
    let status = resp.status();
    let retry_after = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (status, resp.json().await.unwrap(), retry_after)
}

/// Polls `/readyz` until it answers `status`, for up to `within`.
async fn until_readyz(app: &TestServer, status: StatusCode, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (got, body, _) = readyz(app).await;
        if got == status {
            return body;
        }
        assert!(Instant::now() < deadline, "/readyz still answers {got} {body} after {within:?}, not {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_is_ready_on_the_production_engines() {
    let first = TestServer::start(engine::production()).await;
    for role in [Role::All, Role::Auth, Role::Ingest, Role::Query, Role::Blob] {
        let app = TestServer::launch(
            synckit_server::Settings { role, ..first.settings.clone() },
            tempfile::tempdir().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
            Some((first.app_id, first.api_key.clone())),
        )
        .await;
        // NATS connects in the background: allow it a moment.
        let body = until_readyz(&app, StatusCode::OK, Duration::from_secs(5)).await;
        assert_eq!(body, json!({"status": "ready"}), "{role:?}");
    }
}

/// Query and ingest need the commit bus: with NATS down they start (and connect once it is up), but are not ready,
/// and say that NATS is what is missing. Auth and blob do not use the bus and stay ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_makes_ingest_and_query_unready_and_no_one_else() {
    let port = closed_port();
    let nats_url = format!("nats://127.0.0.1:{port}");
    let mut servers = Vec::new();
    for role in [Role::Query, Role::Ingest, Role::All, Role::Auth, Role::Blob] {
        let url = nats_url.clone();
        let app = TestServer::start_with(engine::postgres(), move |s| {
            s.role = role;
            s.nats_url = Some(url);
        })
        .await;
        let started = Instant::now();
        let (status, body, retry_after) = readyz(&app).await;
        assert!(started.elapsed() < Duration::from_secs(4), "/readyz took {:?}", started.elapsed());
        let healthz = app.http.get(format!("{}/healthz", app.url)).send().await.unwrap().status();
        assert_eq!(healthz, StatusCode::OK, "{role:?}: the process itself is alive");
        if matches!(role, Role::Auth | Role::Blob) {
            assert_eq!((status, body), (StatusCode::OK, json!({"status": "ready"})), "{role:?}");
        } else {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{role:?}: {body}");
            assert_eq!(body["status"], "unavailable", "{role:?}: {body}");
            assert_eq!(body["down"], json!(["nats"]), "{role:?}: {body}");
            assert_eq!(body["error"]["code"], "unavailable", "{role:?}: {body}");
            assert!(body["reasons"]["nats"].as_str().unwrap().contains("not connected"), "{body}");
            assert_eq!(retry_after.as_deref(), Some("1"), "{role:?}");
        }
        servers.push((role, app));
    }

    // NATS comes up on that port: the waiting roles connect by themselves and turn ready, without a restart.
    let mut nats = NatsServer::start(port);
    for (role, app) in &servers {
        let body = until_readyz(app, StatusCode::OK, Duration::from_secs(15)).await;
        assert_eq!(body, json!({"status": "ready"}), "{role:?}");
    }
    nats.stop();
}

/// Blob needs the object store: an S3 endpoint that refuses connections makes blob (and all) unready, naming it;
/// query does not use the store and stays ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_down_makes_blob_unready_and_no_one_else() {
    let s3 = synckit_testkit::garage().await.unwrap();
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    for role in [Role::Blob, Role::All, Role::Query] {
        let (s3, endpoint) = (s3.clone(), endpoint.clone());
        let app = TestServer::start_with(engine::postgres(), move |s| {
            s.role = role;
            s.s3 = Some(synckit_blob::S3Config { endpoint, ..s3 });
        })
        .await;
        let (status, body, _) = readyz(&app).await;
        if role == Role::Query {
            assert_eq!((status, body), (StatusCode::OK, json!({"status": "ready"})));
        } else {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{role:?}: {body}");
            assert_eq!(body["down"], json!(["object_store"]), "{role:?}: {body}");
        }
    }
    // A bucket that does not exist is no more usable than a store that is down.
    let app = TestServer::start_with(engine::postgres(), move |s| {
        s.role = Role::Blob;
        s.s3 = Some(synckit_blob::S3Config { bucket: "synckit-no-such-bucket".into(), ..s3 });
    })
    .await;
    let (status, body, _) = readyz(&app).await;
    assert_eq!((status, &body["down"]), (StatusCode::SERVICE_UNAVAILABLE, &json!(["object_store"])), "{body}");
}

/// A store that takes the connection and never answers: `/readyz` still answers, within its bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_object_store_cannot_hold_readyz() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    let s3 = synckit_testkit::garage().await.unwrap();
    let app = TestServer::start_with(engine::postgres(), move |s| {
        s.role = Role::Blob;
        s.s3 = Some(synckit_blob::S3Config { endpoint, ..s3 });
    })
    .await;
    let started = Instant::now();
    let (status, body, _) = readyz(&app).await;
    let took = started.elapsed();
    assert_eq!((status, &body["down"]), (StatusCode::SERVICE_UNAVAILABLE, &json!(["object_store"])), "{body}");
    assert!(took < Duration::from_secs(4), "/readyz took {took:?}");
    silent.abort();
}

/// A `nats-server` of the test's own on `port`, stopped by PID (under `timeout`, so it goes by itself anyway).
struct NatsServer(Option<Child>);

impl NatsServer {
    fn start(port: u16) -> Self {
        let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("nats-server is not installed (ops/ensure-nats installs it)");
        let mut child = Command::new("timeout")
            .args(["-s", "KILL", "120", bin, "-a", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("timeout runs nats-server");
        for _ in 0..250 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self(Some(child));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SIGTERM to `timeout` reaches nats-server too.
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let _ = child.wait();
        panic!("nats-server did not start on {port}");
    }

    /// SIGTERM to `timeout`, which passes it on to nats-server.
    fn stop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
