//! The memory budget and the body deadlines: requests that would make the server hold much (a pull of a page of
//! 500 × 64 KiB entries, a push of the same) reserve it first, over-budget ones are refused with `Retry-After`, and
//! bodies that stop moving, either way, are cut.
//!
//! The abuse tests run the `synckit-server` binary as a child process on the embedded default, so that the peak
//! resident memory in `/proc/<pid>/status` is the server's alone, and hold it to its baseline plus the budget plus
//! [`SLACK_MIB`]. All their traffic is on loopback, and bounded in count and time.

use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures::future::join_all;
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use synckit_protocol::limits::{MAX_ENTRY_BYTES, MAX_PUSH_ENTRIES};
use synckit_testkit::{TestServer, b64, engine, random_bytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use uuid::Uuid;

use crate::events::EventStream;

/// Long enough for a loaded machine to act on the short deadlines set below.
const WELL_WITHIN: Duration = Duration::from_secs(10);

/// The budget the abuse tests give the server: the smallest whose quarter (a user's share) holds the largest push.
const BUDGET_MIB: u64 = 400;

/// What the server holds beside the budget's reservations: the HTTP buffers of each connection (a write buffer on
/// HTTP/1, two 64 KiB pieces per stream on HTTP/2), SQLite's page caches, and what the allocator keeps of freed pages.
const SLACK_MIB: u64 = 160;

/// A request body that stalls halfway is answered 408 and its connection closed, instead of holding the connection
/// for the embedded store's one-hour transfer deadline.
#[tokio::test]
async fn memory_a_blob_upload_that_stalls_gets_408_and_its_connection_closed() {
    let app = TestServer::start_with(engine::embedded(), |s| s.serve.body_read_timeout = Duration::from_secs(1)).await;
    let user = app.user().await;
    let bytes = random_bytes(1 << 20);
    let (status, begun) = app
        .post(
            "/api/sync/blobs/upload",
            Some(&user.token),
            json!({"hash": hex::encode(random_bytes(32)), "size": bytes.len(), "checksum_sha256": b64(&Sha256::digest(&bytes))}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{begun}");
    let url = begun["upload_url"].as_str().expect("an upload URL");
    assert!(url.starts_with('/'), "the embedded store serves its own uploads: {url}");

    // All the declared length, half of it sent, then nothing.
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    let head = format!("PUT {url} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", bytes.len());
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&bytes[..bytes.len() / 2]).await.unwrap();

    let mut answer = Vec::new();
    let read = timeout(WELL_WITHIN, conn.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(read.is_ok(), "a body silent for its 1 s must be answered and its connection closed; got {answer:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
}

/// Pulls whose answers nobody reads hold their pages, until their user is over its share; once the answers have made
/// no progress for the write deadline, their connections are closed and the pages given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_an_unread_response_is_cut_and_its_memory_given_back() {
    let app = TestServer::start_with(engine::embedded(), |s| {
        s.serve.memory_budget_mib = BUDGET_MIB;
        s.serve.write_timeout = Duration::from_secs(3);
    })
    .await;
    let user = app.user().await;
    let full: Vec<(Uuid, Vec<u8>)> =
        (0..MAX_PUSH_ENTRIES).map(|_| (Uuid::now_v7(), random_bytes(MAX_ENTRY_BYTES))).collect();
    let (status, body) = app.push(&user, &full).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    drop(full);

    // Pages are capped at 4 MiB of payloads, so one unread page holds a fraction of the user's share: the user keeps
    // pages unread on connections of their own until the next pull is refused.
    let pull = r#"{"cursor":0}"#;
    let request = format!(
        "POST /api/sync/pull HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{pull}",
        user.token,
        pull.len()
    );
    let mut unread = Vec::new();
    let refused = loop {
        assert!(unread.len() < 64, "64 unread pages never filled a user's share of {BUDGET_MIB} / 4 MiB");
        let mut conn = TcpStream::connect(app.addr).await.unwrap();
        conn.write_all(request.as_bytes()).await.unwrap();
        let mut head = [0; 12];
        conn.read_exact(&mut head).await.unwrap();
        match &head {
            b"HTTP/1.1 200" => unread.push(conn),
            b"HTTP/1.1 429" => break conn,
            other => panic!("a pull answered {}", String::from_utf8_lossy(other)),
        }
    };
    drop(refused);
    assert!(unread.len() >= 2, "one user holds several pages before its share is used up: {}", unread.len());

    let pull_now =
        || app.http.post(format!("{}/api/sync/pull", app.url)).bearer_auth(&user.token).json(&json!({"cursor": 0}));
    let refused = pull_now().send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS, "the unread pages hold the user's share");
    assert!(refused.headers().contains_key(RETRY_AFTER));

    let mut served = None;
    for attempt in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let resp = pull_now().send().await.unwrap();
        if resp.status() == StatusCode::OK {
            served = Some(attempt);
            break;
        }
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    assert!(served.is_some(), "the unread pages must be given back once they have made no progress for 3 s");
    // A page small enough to sit whole in the sockets' buffers was handed over and is not stalled; the others are,
    // and their connections were closed.
    let closed = join_all(unread.into_iter().map(|mut conn| async move {
        let mut rest = Vec::new();
        timeout(WELL_WITHIN, conn.read_to_end(&mut rest)).await.is_ok()
    }))
    .await;
    assert!(closed.contains(&true), "the stalled responses' connections must be closed: {closed:?}");
}

/// An event stream is long-lived and mostly quiet: it is not stalled for having nothing to send.
#[tokio::test]
async fn memory_a_quiet_event_stream_outlives_the_write_deadline() {
    let app = TestServer::start_with(engine::embedded(), |s| s.serve.write_timeout = Duration::from_secs(1)).await;
    let user = app.user().await;
    let mut events = EventStream::open(&app, &user.token, None).await.unwrap();
    events.until("event: hello").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, _) = app.push(&user, &synckit_testkit::entries(1)).await;
    assert_eq!(status, StatusCode::OK);
    events.until("event: commit").await;
}

/// Many pulls of full pages (4 MiB of payloads each, the cap), none of them read: six HTTP/2 connections of 32
/// streams and 8 HTTP/1 connections from eight users. Without a budget each holds its 5.5 MB of JSON until its reader
/// reads: about 1.1 GB in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_pull_amplification_stays_within_the_budget() {
    const H2_CONNECTIONS: usize = 6;
    const STREAMS: usize = 32;
    const H1_CONNECTIONS: usize = 8;
    let server = ServerProcess::start(&[("SYNCKIT_SERVE_MEMORY_BUDGET_MIB", &BUDGET_MIB.to_string())]).await;
    let mut users = Vec::new();
    for _ in 0..8 {
        let user = server.user().await;
        let (status, _, body) = server.push(&user, max_push_body(&user)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        users.push(user);
    }
    let baseline = server.reset_peak();

    let h1 = || reqwest::Client::builder().http1_only().pool_max_idle_per_host(0).build().unwrap();
    let h2: Vec<reqwest::Client> =
        (0..H2_CONNECTIONS).map(|_| reqwest::Client::builder().http2_prior_knowledge().build().unwrap()).collect();
    let mut pulls = Vec::new();
    for i in 0..H2_CONNECTIONS * STREAMS + H1_CONNECTIONS {
        let token = &users[i % users.len()].token;
        let client = if i < H2_CONNECTIONS * STREAMS { h2[i / STREAMS].clone() } else { h1() };
        pulls.push(client.post(server.path("/api/sync/pull")).bearer_auth(token).json(&json!({"cursor": 0})).send());
    }
    let answers: Vec<reqwest::Response> = join_all(pulls).await.into_iter().map(|r| r.unwrap()).collect();
    let peak = server.peak();
    let statuses: Vec<StatusCode> = answers.iter().map(|r| r.status()).collect();
    for answer in &answers {
        if answer.status() != StatusCode::OK {
            assert!(answer.headers().contains_key(RETRY_AFTER), "a refusal says when to retry: {answer:?}");
        }
    }
    let count = |s: StatusCode| statuses.iter().filter(|&&x| x == s).count();
    let (ok, over_share, full) =
        (count(StatusCode::OK), count(StatusCode::TOO_MANY_REQUESTS), count(StatusCode::SERVICE_UNAVAILABLE));
    eprintln!(
        "pull flood: baseline {baseline} KiB, peak {peak} KiB (+{} MiB); 200: {ok}, 429: {over_share}, 503: {full}",
        (peak - baseline) / 1024,
    );
    assert_within_budget(baseline, peak);
    assert_eq!(ok + over_share + full, answers.len(), "only 200, 429 or 503: {statuses:?}");
    assert!(ok > 0, "pulls under the budget are answered: {statuses:?}");
    assert!(over_share + full > 0, "the budget turns the rest away: {statuses:?}");

    // The attackers go; everyone is served again.
    drop(answers);
    let normal = server.user().await;
    server.served_afterwards(&normal).await;
}

/// Many pushes of 500 × 64 KiB at once, three from each of six users: without a budget each holds ~90 MB while it
/// is buffered and parsed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_maximal_pushes_stay_within_the_budget() {
    let server = ServerProcess::start(&[("SYNCKIT_SERVE_MEMORY_BUDGET_MIB", &BUDGET_MIB.to_string())]).await;
    let mut users = Vec::new();
    for _ in 0..6 {
        let user = server.user().await;
        let body = max_push_body(&user);
        users.push((user, body));
    }
    let baseline = server.reset_peak();

    let process = &server;
    let pushes = users.iter().flat_map(|(user, body)| (0..3).map(move |_| process.push(user, body.clone())));
    let answers = join_all(pushes).await;
    let peak = server.peak();
    let count = |s: StatusCode| answers.iter().filter(|(x, _, _)| *x == s).count();
    eprintln!(
        "push flood: baseline {baseline} KiB, peak {peak} KiB (+{} MiB); 200: {}, 429: {}, 503: {}",
        (peak - baseline) / 1024,
        count(StatusCode::OK),
        count(StatusCode::TOO_MANY_REQUESTS),
        count(StatusCode::SERVICE_UNAVAILABLE)
    );
    for (status, retry_after, body) in &answers {
        assert!(
            [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS, StatusCode::SERVICE_UNAVAILABLE].contains(status),
            "{status}: {body}"
        );
        assert!(*status == StatusCode::OK || *retry_after, "a refusal says when to retry: {status} {body}");
    }
    assert_within_budget(baseline, peak);
    assert!(count(StatusCode::OK) >= 1, "some pushes are taken");
    // A user's later pushes are over its share while its first is in flight (429); one that waited for room with
    // the first may get in after it, or hear 503 at the end of its wait.
    let refused = count(StatusCode::TOO_MANY_REQUESTS) + count(StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        refused >= 6 && count(StatusCode::TOO_MANY_REQUESTS) >= 1,
        "three pushes at once per user: {refused} refused"
    );

    drop(users);
    let normal = server.user().await;
    server.served_afterwards(&normal).await;
}

fn assert_within_budget(baseline_kib: u64, peak_kib: u64) {
    let bound = baseline_kib + (BUDGET_MIB + SLACK_MIB) * 1024;
    assert!(
        peak_kib <= bound,
        "peak RSS {peak_kib} KiB is over baseline {baseline_kib} KiB + budget {BUDGET_MIB} MiB + slack {SLACK_MIB} MiB \
         ({bound} KiB)"
    );
}

/// A push of the most entries of the largest size, as JSON; the same payload in each, with its own change id.
fn max_push_body(user: &ProcessUser) -> Bytes {
    let payload = STANDARD.encode(random_bytes(MAX_ENTRY_BYTES));
    let mut json = format!(r#"{{"device_id":"{}","entries":["#, user.device_id);
    for i in 0..MAX_PUSH_ENTRIES {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!(r#"{{"change_id":"{}","payload":"{payload}"}}"#, Uuid::now_v7()));
    }
    json.push_str("]}");
    Bytes::from(json)
}

/// A signed-up user of a [`ServerProcess`], with a device's token.
struct ProcessUser {
    token: String,
    device_id: Uuid,
}

/// The `synckit-server` binary in a child process, on the embedded default in a directory of its own.
struct ServerProcess {
    child: std::process::Child,
    url: String,
    api_key: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl ServerProcess {
    async fn start(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let command = |args: &[&str]| {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_synckit-server"));
            command.arg("--data-dir").arg(dir.path()).args(args).env("RUST_LOG", "warn");
            // Only the settings the test gives: none of the environment's.
            for (var, _) in std::env::vars().filter(|(var, _)| var.starts_with("SYNCKIT_")) {
                command.env_remove(var);
            }
            command
        };
        let created = command(&["admin", "create-app", "--name", "memory"]).output().unwrap();
        assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
        let created: Value = serde_json::from_slice(&created.stdout).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut serve = command(&["--listen", &format!("127.0.0.1:{port}")]);
        serve.envs(env.iter().copied()).stdout(Stdio::null()).stderr(Stdio::inherit());
        let server = Self {
            child: serve.spawn().unwrap(),
            url: format!("http://127.0.0.1:{port}"),
            api_key: created["api_key"].as_str().unwrap().to_owned(),
            http: reqwest::Client::new(),
            _dir: dir,
        };
        for _ in 0..300 {
            if server.http.get(server.path("/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server did not answer /healthz within 30 s");
    }

    fn path(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Value {
        let mut req = self.http.post(self.path(path)).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    async fn user(&self) -> ProcessUser {
        let email = synckit_testkit::email();
        let login_key = b64(&random_bytes(32));
        let account = json!({"email": email, "salt": b64(&random_bytes(32)), "login_key": login_key});
        self.post("/api/accounts/register", None, account).await;
        let signed_in =
            self.post("/api/sync/auth", None, json!({"email": email, "login_key": login_key, "api_key": self.api_key}));
        let sign_in_token = signed_in.await["token"].as_str().unwrap().to_owned();
        let device =
            self.post("/api/sync/devices", Some(&sign_in_token), json!({"name": "laptop", "platform": "linux"})).await;
        ProcessUser {
            token: device["token"].as_str().unwrap().to_owned(),
            device_id: device["id"].as_str().unwrap().parse().unwrap(),
        }
    }

    /// A push on an HTTP/2 connection of its own, so that pushes run side by side, and so that a refusal sent before
    /// the body is read reaches the client (on HTTP/1 the server closes the connection under the upload).
    async fn push(&self, user: &ProcessUser, body: Bytes) -> (StatusCode, bool, String) {
        let client = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
        let resp = client
            .post(self.path("/api/sync/push"))
            .bearer_auth(&user.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, retry_after) = (resp.status(), resp.headers().contains_key(RETRY_AFTER));
        (status, retry_after, resp.text().await.unwrap())
    }

    /// A line of `/proc/<pid>/status`, in KiB.
    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in {status}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// The resident memory now, which becomes the baseline: the peak is reset to it.
    fn reset_peak(&self) -> u64 {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5").unwrap();
        self.status_kib("VmRSS:")
    }

    /// The peak resident memory since the last reset.
    fn peak(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// Once the abuse has gone, `user` pushes and pulls again, honouring `Retry-After` a few times at most.
    async fn served_afterwards(&self, user: &ProcessUser) {
        let entry =
            json!({"device_id": user.device_id, "entries": [{"change_id": Uuid::now_v7(), "payload": b64(b"hi")}]});
        for (path, body) in [("/api/sync/push", entry), ("/api/sync/pull", json!({"cursor": 0, "limit": 1}))] {
            let mut last = None;
            for _ in 0..10 {
                let resp = self.http.post(self.path(path)).bearer_auth(&user.token).json(&body).send().await.unwrap();
                if resp.status() == StatusCode::OK {
                    last = None;
                    break;
                }
                let wait = resp.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(1);
                last = Some(resp.status());
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
            assert_eq!(last, None, "{path} must be served once the abuse is over");
        }
        assert!(self.http.get(self.path("/healthz")).send().await.unwrap().status().is_success());
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
