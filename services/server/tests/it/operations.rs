//! Operating behaviour: settings that change policy, slow clients, and the binary as an operator runs it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use synckit_server::settings::ServeSettings;
use synckit_testkit::{TestServer, b64, code, engine, random_bytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn closed_registration_refuses_sign_up() {
    let app = TestServer::start_with(engine::embedded(), |s| s.open_registration = false).await;
    let (status, body) = app
        .post(
            "/api/accounts/register",
            None,
            json!({"email": "a@example.com", "salt": b64(&[1; 32]), "login_key": b64(&[2; 32])}),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "registration_closed"));
}

/// Sign-up, pre-login and sign-in need no token, so they take small bodies only: a stranger cannot make the server
/// buffer megabytes, and the error says what was wrong.
#[tokio::test]
async fn public_endpoints_take_small_bodies() {
    let app = TestServer::start(engine::embedded()).await;
    let padding = "x".repeat(20 * 1024);
    for path in ["/api/accounts/register", "/api/accounts/prelogin", "/api/sync/auth", "/api/accounts/console-auth"] {
        let (status, body) = app.post(path, None, json!({"email": "a@example.com", "padding": padding})).await;
        assert_eq!((status, code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"), "{path}: {body}");
    }
    // A real one is well within it.
    let (status, body) = app.post("/api/accounts/prelogin", None, json!({"email": "a@example.com"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Long enough for a loaded machine to act on a 1 s setting, and shorter than either default, so that a server
/// which ignored the setting fails the test.
const WELL_WITHIN: Duration = Duration::from_secs(5);

#[tokio::test]
async fn slow_request_heads_are_cut_off() {
    assert!(WELL_WITHIN < ServeSettings::default().header_read_timeout);
    let app =
        TestServer::start_with(engine::embedded(), |s| s.serve.header_read_timeout = Duration::from_secs(1)).await;
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap(); // never finishes its head
    let mut buf = Vec::new();
    let read = tokio::time::timeout(WELL_WITHIN, conn.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server must close a connection whose head is not done after the 1 s it was given");
    let text = String::from_utf8_lossy(&buf);
    assert!(buf.is_empty() || text.starts_with("HTTP/1.1 408"), "unexpected answer: {text}");
}

#[tokio::test]
async fn slow_request_bodies_time_out_with_a_protocol_error() {
    assert!(WELL_WITHIN < ServeSettings::default().request_timeout);
    let app = TestServer::start_with(engine::embedded(), |s| s.serve.request_timeout = Duration::from_secs(1)).await;
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    let head = "POST /api/accounts/prelogin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":";
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(WELL_WITHIN, conn.read(&mut buf)).await.expect("an answer").unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
}

fn server_command(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_synckit-server"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SYNCKIT_DATA_DIR", data_dir)
        .env("SYNCKIT_LOG_FORMAT", "json");
    cmd
}

/// Runs `synckit-server admin ARGS` on `data_dir` and returns the one JSON object it printed.
fn admin(data_dir: &std::path::Path, args: &[&str]) -> Value {
    let out = server_command(data_dir).arg("admin").args(args).output().unwrap();
    assert!(out.status.success(), "admin {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is exactly one JSON object")
}

/// The README's first command, as a user runs it: the binary with no configuration but a data directory; and the
/// operator's app commands before it.
#[tokio::test]
async fn the_binary_serves_on_the_embedded_default_and_manages_apps() {
    let dir = tempfile::tempdir().unwrap();

    let uris = ["com.example.notes:/callback", "http://127.0.0.1/callback"];
    let created =
        admin(dir.path(), &["create-app", "--name", "Notes", "--redirect-uri", uris[0], "--redirect-uri", uris[1]]);
    let keys: Vec<&String> = created.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["api_key", "app_id", "client_id"]);
    let first_key = created["api_key"].as_str().unwrap().to_owned();
    let out = server_command(dir.path())
        .args(["admin", "create-app", "--name", "Bad", "--redirect-uri", "http://example.com/cb"])
        .output()
        .unwrap();
    assert!(!out.status.success() && out.stdout.is_empty(), "a bad redirect URI makes no app");
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"), "and says why");

    let listed = admin(dir.path(), &["list-apps"]);
    let app = json!({"app_id": created["app_id"], "client_id": created["client_id"], "name": "Notes",
                     "owner_id": null, "redirect_uris": uris, "created_at": listed["apps"][0]["created_at"]});
    assert_eq!(listed, json!({"apps": [app]}), "every app, without secrets");
    let rotated = admin(dir.path(), &["rotate-key", created["app_id"].as_str().unwrap()]);
    assert_eq!(rotated["app_id"], created["app_id"]);
    let api_key = rotated["api_key"].as_str().unwrap().to_owned();
    assert_ne!(api_key, first_key);

    let mut child =
        server_command(dir.path()).env("SYNCKIT_LISTEN", "127.0.0.1:0").stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut warnings = Vec::new();
    let addr = loop {
        let line = lines.next().expect("the server logs where it listens").unwrap();
        let log: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if log["message"] == "synckit-server listening" {
            break log["addr"].as_str().unwrap().to_owned();
        }
        if log["level"] == "WARN" {
            warnings.push(log["message"].as_str().unwrap_or_default().to_owned());
        }
    };
    // Secrets kept in the database are said out loud, with what to set instead.
    for var in ["TOKEN", "URL", "PRELOGIN"] {
        let set = format!("set SYNCKIT_{var}_SECRET or SYNCKIT_{var}_SECRET_FILE");
        assert!(warnings.iter().any(|w| w.contains(&set)), "no warning says to {set}: {warnings:?}");
    }
    std::thread::spawn(move || lines.for_each(drop)); // keep draining stderr

    let url = format!("http://{addr}");
    let http = reqwest::Client::new();
    let login_key = random_bytes(32);
    let resp = http
        .post(format!("{url}/api/accounts/register"))
        .json(&json!({"email": "cli@example.com", "salt": b64(&[3; 32]), "login_key": b64(&login_key)}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let sign_in = |api_key: String| {
        let body = json!({"email": "cli@example.com", "login_key": b64(&login_key), "api_key": api_key});
        http.post(format!("{url}/api/sync/auth")).json(&body).send()
    };
    let resp = sign_in(api_key).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "the app created by the admin command works with the server");
    let resp = sign_in(first_key).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "the key before the rotation does not");

    // SIGTERM: a graceful, successful exit.
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(dir.path().join("synckit.db").exists(), "state lives in the data directory");
}

#[tokio::test]
async fn migrate_prepares_a_postgres_database() {
    let url = synckit_testkit::fresh_database().await.unwrap();
    // The test server trusts local connections, so a password in the URL is accepted and ignored: it must
    // still never be printed.
    let with_password = url.replacen("://postgres@", "://postgres:hunter2-secret@", 1);
    assert_ne!(with_password, url);
    let dir = tempfile::tempdir().unwrap();
    let out = server_command(dir.path()).env("SYNCKIT_DATABASE_URL", &with_password).arg("migrate").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("hunter2"), "credentials leaked into the logs: {stderr}");

    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let row = client.query_one("SELECT count(*) FROM streams", &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 0);

    let out = server_command(dir.path())
        .env("SYNCKIT_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("SYNCKIT_DB_STARTUP_RETRY_SECS", "0")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success(), "an unreachable database is a loud failure");
    assert!(String::from_utf8_lossy(&out.stderr).contains("storage unavailable"), "and says why");
}

/// A push's request as raw HTTP/1.1: its head and the first half of its body, and the rest of the body.
fn push_in_two_halves(app: &TestServer, user: &synckit_testkit::TestUser) -> (Vec<u8>, Vec<u8>) {
    let body = serde_json::to_vec(&json!({
        "device_id": user.device_id,
        "entries": [{"change_id": uuid::Uuid::now_v7(), "payload": b64(&random_bytes(64))}],
    }))
    .unwrap();
    let head = format!(
        "POST /api/sync/push HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        app.addr,
        user.token,
        body.len()
    );
    let (first, rest) = body.split_at(body.len() / 2);
    ([head.as_bytes(), first].concat(), rest.to_vec())
}

/// On shutdown the server stops accepting at once, ends event streams, and gives requests in flight the grace period
/// to finish: a push whose body is still arriving is answered and committed, and one still unfinished when the grace
/// ends has its connection closed, committed nothing.
#[tokio::test]
async fn shutdown_drains_within_the_grace_period() {
    const GRACE: Duration = Duration::from_secs(2);
    assert!(GRACE * 2 < ServeSettings::default().shutdown_grace, "a server ignoring the setting would fail this");
    let mut app = TestServer::start_with(engine::embedded(), |s| s.serve.shutdown_grace = GRACE).await;
    let (finishing, stalled) = (app.user().await, app.user().await);
    let mut events = crate::events::EventStream::open(&app, &finishing.token, None).await.unwrap();
    events.until("event: hello").await;
    let mut in_flight = Vec::new();
    for user in [&finishing, &stalled] {
        let (started, rest) = push_in_two_halves(&app, user);
        let mut conn = TcpStream::connect(app.addr).await.unwrap();
        conn.write_all(&started).await.unwrap();
        in_flight.push((conn, rest));
    }
    // Both requests are in: the server is reading their bodies.
    tokio::time::sleep(Duration::from_millis(300)).await;

    app.shutdown.take().unwrap().send(()).unwrap();
    assert!(events.closes().await, "shutdown ends open event streams");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(TcpStream::connect(app.addr).await.is_err(), "a server shutting down accepts no new connection");

    let (mut stalled_conn, _) = in_flight.pop().unwrap();
    let (mut finishing_conn, rest) = in_flight.pop().unwrap();
    finishing_conn.write_all(&rest).await.unwrap();
    let mut answer = vec![0; 4096];
    let n = tokio::time::timeout(GRACE, finishing_conn.read(&mut answer)).await.expect("an answer").unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 200"), "a push finishing within the grace is answered: {answer}");

    let started = std::time::Instant::now();
    let mut cut = Vec::new();
    let closed = tokio::time::timeout(GRACE * 2, stalled_conn.read_to_end(&mut cut)).await;
    assert!(closed.is_ok(), "a request unfinished at the end of the grace has its connection closed");
    assert!(started.elapsed() < GRACE + Duration::from_millis(500));
    assert!(!String::from_utf8_lossy(&cut).contains(" 200 "), "{}", String::from_utf8_lossy(&cut));

    let head = |user: &synckit_testkit::TestUser| {
        app.engines.changelog.head(synckit_store::StreamId { app_id: user.app_id, user_id: user.user_id })
    };
    assert_eq!(head(&finishing).await.unwrap(), 1, "the answered push is committed");
    assert_eq!(head(&stalled).await.unwrap(), 0, "the cut push committed nothing");
}
