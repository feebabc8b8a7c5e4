//! Changelog throughput through the real HTTP API, beside raw PostgreSQL doing the same work in the same run.
//!
//! ```sh
//! cargo bench -p synckit-server --bench changelog                 # defaults below
//! cargo bench -p synckit-server --bench changelog -- --streams 32 --pushes 10 --pull 200000
//! cargo bench -p synckit-server --bench changelog -- --part scale --sizes 0,100000,1000000 --samples 30 \
//!     --fill 200000 --pushers 4                                    # only the stream-length part
//! ```
//!
//! - ingest: `streams` clients, one per stream, each sending `pushes` pushes of 500 entries of 1 KiB, all at once;
//!   reference: raw binary COPY of the same rows into a table of the same shape, one 500-row COPY per
//!   transaction on `streams` connections (synchronous_commit on, as for the server).
//! - pull: one client paging through a `pull`-entry stream in pages of 500; reference: the same range scans
//!   issued directly.
//!
//! - scale (`changelog/scale.rs`): one push and one page against the stream's length, and the time to fill one
//!   stream from several pushers; `--part ingest` or `--part scale` runs one part alone.
//!
//! Runs on Postgres (a fresh database on `SYNCKIT_TEST_DATABASE_URL`, default the local test server) and on the
//! embedded SQLite default, with the server in this process listening on loopback.

mod common;
#[path = "changelog/scale.rs"]
mod scale;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::future::join_all;
use serde_json::{Value, json};
use synckit_protocol::paths;
use synckit_protocol::sync::PullResponse;
use synckit_testkit::{TestServer, engine};
use tokio_postgres::NoTls;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

const ENTRIES_PER_PUSH: usize = 500;
const PAYLOAD_BYTES: usize = 1024;

struct Options {
    streams: usize,
    pushes: usize,
    pull: usize,
}

fn options() -> Options {
    Options {
        streams: common::flag("--streams", 32),
        pushes: common::flag("--pushes", 10),
        pull: common::flag("--pull", 200_000),
    }
}

struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
    device_id: Uuid,
    app_id: Uuid,
    user_id: Uuid,
    email: String,
    login_key: String,
}

/// A new account, signed in with a device of its own: one stream.
async fn client(url: &str, api_key: &str) -> Client {
    let email = format!("{}@bench.example", Uuid::new_v4());
    let login_key = STANDARD.encode(random(32));
    let body = json!({"email": email, "salt": STANDARD.encode(random(32)), "login_key": login_key});
    reqwest::Client::new()
        .post(format!("{url}{}", paths::ACCOUNTS_REGISTER))
        .json(&body)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    sign_in(url, api_key, &email, &login_key, "bench").await
}

/// Another device of an existing account: the same stream as the account's other clients.
async fn sign_in(url: &str, api_key: &str, email: &str, login_key: &str, device: &str) -> Client {
    let http = reqwest::Client::new();
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut req = http.post(format!("{url}{path}")).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap().error_for_status().unwrap().json::<Value>().await.unwrap() }
    };
    let auth = post(paths::AUTH, None, json!({"email": email, "login_key": login_key, "api_key": api_key})).await;
    let sign_in_token = auth["token"].as_str().unwrap();
    // Pushes and pulls take the device's own token, which registering the device answers.
    let device = post(paths::DEVICES, Some(sign_in_token), json!({"name": device, "platform": "linux"})).await;
    let token = device["token"].as_str().unwrap().to_owned();
    Client {
        http: http.clone(),
        url: url.to_owned(),
        device_id: device["id"].as_str().unwrap().parse().unwrap(),
        app_id: auth["app_id"].as_str().unwrap().parse().unwrap(),
        user_id: auth["user_id"].as_str().unwrap().parse().unwrap(),
        token,
        email: email.to_owned(),
        login_key: login_key.to_owned(),
    }
}

fn random(n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    getrandom::fill(&mut bytes).unwrap();
    bytes
}

/// One entry: change id and payload.
type Row = (Uuid, Vec<u8>);
/// One push's rows.
type Batch = Vec<Row>;

/// A push body and the rows it holds.
fn batch() -> (Vec<u8>, Batch) {
    let rows: Batch = (0..ENTRIES_PER_PUSH).map(|_| (Uuid::now_v7(), random(PAYLOAD_BYTES))).collect();
    let entries: Vec<Value> =
        rows.iter().map(|(id, p)| json!({"change_id": id, "payload": STANDARD.encode(p)})).collect();
    (serde_json::to_vec(&json!({"entries": entries, "device_id": Uuid::nil()})).unwrap(), rows)
}

async fn push(c: &Client, body: &[u8]) -> u64 {
    // The prebuilt body carries a nil device; patch in this client's (same length, so a plain replace).
    let body = String::from_utf8_lossy(body).replace(&Uuid::nil().to_string(), &c.device_id.to_string());
    let resp = c
        .http
        .post(format!("{}{}", c.url, paths::PUSH))
        .bearer_auth(&c.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    resp.json::<Value>().await.unwrap()["cursor"].as_u64().unwrap()
}

/// Ingest through HTTP: entries/s.
async fn ingest(clients: &[Arc<Client>], bodies: &[Vec<Vec<u8>>]) -> f64 {
    let started = Instant::now();
    let tasks = clients.iter().zip(bodies).map(|(c, bodies)| {
        let (c, bodies) = (c.clone(), bodies.clone());
        tokio::spawn(async move {
            for body in &bodies {
                push(&c, body).await;
            }
        })
    });
    for t in join_all(tasks).await {
        t.unwrap();
    }
    let n = bodies.iter().map(Vec::len).sum::<usize>() * ENTRIES_PER_PUSH;
    n as f64 / started.elapsed().as_secs_f64()
}

/// The same rows by raw binary COPY, one 500-row COPY per transaction per stream: entries/s.
async fn raw_copy(db_url: &str, rows: &[Vec<Batch>]) -> f64 {
    let (setup, conn) = tokio_postgres::connect(db_url, NoTls).await.unwrap();
    tokio::spawn(conn);
    setup
        .batch_execute("DROP TABLE IF EXISTS raw_changes; CREATE TABLE raw_changes (LIKE changes INCLUDING ALL)")
        .await
        .unwrap();
    let started = Instant::now();
    let tasks = rows.iter().map(|stream_rows| {
        let (db_url, stream_rows) = (db_url.to_owned(), stream_rows.clone());
        tokio::spawn(async move {
            let (mut client, conn) = tokio_postgres::connect(&db_url, NoTls).await.unwrap();
            tokio::spawn(conn);
            let (app, user, device) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
            let types = [Type::UUID, Type::UUID, Type::INT8, Type::UUID, Type::UUID, Type::BYTEA];
            let mut seq = 0i64;
            for batch in &stream_rows {
                let tx = client.transaction().await.unwrap();
                let sink = tx
                    .copy_in("COPY raw_changes (app_id, user_id, seq, change_id, device_id, payload) FROM STDIN BINARY")
                    .await
                    .unwrap();
                let writer = BinaryCopyInWriter::new(sink, &types);
                let mut writer = std::pin::pin!(writer);
                for (id, payload) in batch {
                    seq += 1;
                    let row: [&(dyn ToSql + Sync); 6] = [&app, &user, &seq, id, &device, payload];
                    writer.as_mut().write(&row).await.unwrap();
                }
                writer.finish().await.unwrap();
                tx.commit().await.unwrap();
            }
        })
    });
    for t in join_all(tasks).await {
        t.unwrap();
    }
    let n = rows.iter().map(Vec::len).sum::<usize>() * ENTRIES_PER_PUSH;
    n as f64 / started.elapsed().as_secs_f64()
}

/// One client paging through its whole stream: entries/s.
async fn pull_all(c: &Client, expected: usize) -> f64 {
    let started = Instant::now();
    let (mut cursor, mut seen) = (0u64, 0usize);
    loop {
        let page = pull(c, cursor).await;
        seen += page.entries.len();
        cursor = page.cursor;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(seen, expected);
    seen as f64 / started.elapsed().as_secs_f64()
}

/// The page after `cursor`, decoded into the protocol's types, base64 included, as an SDK client does.
async fn pull(c: &Client, cursor: u64) -> PullResponse {
    let request = c.http.post(format!("{}{}", c.url, paths::PULL)).bearer_auth(&c.token);
    request.json(&json!({"cursor": cursor})).send().await.unwrap().json().await.unwrap()
}

/// The same pages read directly from Postgres: rows/s.
async fn raw_scan(db_url: &str, c: &Client, expected: usize) -> f64 {
    let (client, conn) = tokio_postgres::connect(db_url, NoTls).await.unwrap();
    tokio::spawn(conn);
    let stmt = client
        .prepare(
            "SELECT seq, change_id, device_id, payload, created_at FROM changes \
             WHERE app_id = $1 AND user_id = $2 AND seq > $3 ORDER BY seq LIMIT 500",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let (mut cursor, mut seen) = (0i64, 0usize);
    loop {
        let rows = client.query(&stmt, &[&c.app_id, &c.user_id, &cursor]).await.unwrap();
        let Some(last) = rows.last() else { break };
        cursor = last.get(0);
        seen += rows.len();
    }
    assert_eq!(seen, expected);
    seen as f64 / started.elapsed().as_secs_f64()
}

async fn fill(c: &Client, entries: usize) {
    for _ in 0..entries / ENTRIES_PER_PUSH {
        push(c, &batch().0).await;
    }
}

fn rate(v: f64) -> String {
    format!("{:.1}k", v / 1000.0)
}

async fn run(o: &Options) {
    println!(
        "SyncKit changelog benchmark: {} streams x {} pushes x {ENTRIES_PER_PUSH} entries of {PAYLOAD_BYTES} B; pull of {} entries",
        o.streams, o.pushes, o.pull
    );
    let prepared: Vec<(Vec<Vec<u8>>, Vec<Batch>)> =
        (0..o.streams).map(|_| (0..o.pushes).map(|_| batch()).unzip()).collect();
    let (bodies, rows): (Vec<_>, Vec<_>) = prepared.into_iter().unzip();

    println!(
        "\n| engine | ingest entries/s | raw COPY rows/s | ingest / COPY | pull entries/s | raw scan rows/s | pull / scan |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (name, engine) in [("postgres", engine::postgres()), ("sqlite", engine::embedded())] {
        let server = TestServer::start_with(engine, |s| s.database.max_connections = 32).await;
        let (url, api_key) = (&server.url, &server.api_key);
        let db_url = server.database_url().map(str::to_owned);
        let mut clients = Vec::new();
        for _ in 0..o.streams {
            clients.push(Arc::new(client(url, api_key).await));
        }
        // Warm up connections and caches with one push per stream, not counted.
        join_all(clients.iter().map(|c| async move { push(c, &batch().0).await })).await;

        let ingest_rate = ingest(&clients, &bodies).await;
        let copy_rate = match &db_url {
            Some(db) => Some(raw_copy(db, &rows).await),
            None => None,
        };
        let reader = client(url, api_key).await;
        fill(&reader, o.pull).await;
        let pull_rate = pull_all(&reader, o.pull).await;
        let scan_rate = match &db_url {
            Some(db) => Some(raw_scan(db, &reader, o.pull).await),
            None => None,
        };
        let na = || "n/a".to_owned();
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} |",
            rate(ingest_rate),
            copy_rate.map_or_else(na, rate),
            copy_rate.map_or_else(na, |c| format!("{:.0}%", 100.0 * ingest_rate / c)),
            rate(pull_rate),
            scan_rate.map_or_else(na, rate),
            scan_rate.map_or_else(na, |s| format!("{:.0}%", 100.0 * pull_rate / s)),
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn main() {
    let part: String = common::flag("--part", "all".to_owned());
    let (o, scaled) = (options(), scale::options());
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
        if part != "scale" {
            run(&o).await;
        }
        if part != "ingest" {
            scale::run(&scaled).await;
        }
    });
}
