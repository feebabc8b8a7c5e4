//! Live sync latency and the memory cost of idle event streams, against the `synckit-server` binary on Postgres
//! and NATS (as deployed), with the load generator in this process.
//!
//! ```sh
//! cargo bench -p synckit-server --bench live                       # 10,000 idle streams, 100 pushes/s for 20 s
//! cargo bench -p synckit-server --bench live -- --idle 10000 --rate 100 --seconds 20
//! # latency alone, through a deployment's gateway (e.g. `ops/cluster up`'s "gateway" and "api_key"):
//! cargo bench -p synckit-server --bench live -- --gateway http://127.0.0.1:PORT --api-key sk_…
//! ```
//!
//! - memory: the server's resident set before and after opening `idle` event streams that then stay idle.
//! - latency: one listening connection; another device pushes one entry `rate` times a second; for each push,
//!   the time from its answer (acknowledged) to the `commit` event carrying its cursor at the listener, in
//!   microseconds (HdrHistogram). A notice can overtake the push's own answer (it is published before the answer
//!   is written); those count as 0.

mod common;
#[path = "common/server.rs"]
mod server;

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use synckit_protocol::paths;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use uuid::Uuid;

struct Options {
    idle: usize,
    rate: u64,
    seconds: u64,
    /// A running deployment to measure the latency through, and its app's API key: no server is started, and no
    /// idle streams are opened (their memory is another process's).
    gateway: Option<(String, String)>,
}

fn options() -> Options {
    let gateway: String = common::flag("--gateway", String::new());
    let api_key: String = common::flag("--api-key", String::new());
    assert!(gateway.is_empty() == api_key.is_empty(), "--gateway and --api-key go together");
    Options {
        idle: common::flag("--idle", 10_000),
        rate: common::flag("--rate", 100),
        seconds: common::flag("--seconds", 20),
        gateway: (!gateway.is_empty()).then_some((gateway, api_key)),
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// An event stream over a raw socket (the cheapest client), read until its hello.
async fn open_events(addr: &str, token: &str) -> BufReader<TcpStream> {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n",
        paths::EVENTS
    );
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    while !line.starts_with("event: hello") {
        line.clear();
        assert!(reader.read_line(&mut line).await.unwrap() > 0, "the stream closed before its hello");
    }
    reader
}

async fn run(o: &Options) {
    // Every idle stream is a socket here and one in the server.
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let http = reqwest::Client::new();
    let data = tempfile::tempdir().unwrap();
    let (server, url, api_key) = match &o.gateway {
        Some((gateway, api_key)) => (None, gateway.trim_end_matches('/').to_owned(), api_key.clone()),
        None => {
            let db = synckit_testkit::fresh_database().await.expect("a Postgres to benchmark on");
            // Every idle stream is a connection: the cap on connections must leave room for the measuring ones.
            let max_connections = (o.idle + 100).to_string();
            let (server, api_key) = server::start_server(
                server::THIS_BUILD,
                &db,
                data.path(),
                &[("SYNCKIT_EVENTS_MAX_PER_USER", "1000000"), ("SYNCKIT_SERVE_MAX_CONNECTIONS", &max_connections)],
            )
            .await;
            let url = server.url.clone();
            (Some(server), url, api_key)
        }
    };
    let addr = url.strip_prefix("http://").expect("an http:// URL").to_owned();

    let memory = match &server {
        Some(server) => Some(idle_streams(o, server, &http, &api_key).await),
        None => None,
    };

    // Latency: a listener and a pusher of one user.
    let (token, device) = server::user(&http, &url, &api_key).await;
    let mut listener = open_events(&addr, &token).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    tokio::spawn(async move {
        let mut line = String::new();
        loop {
            line.clear();
            if listener.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if let Some(data) = line.strip_prefix("data: ") {
                let seen = Instant::now();
                if let Some(cursor) = serde_json::from_str::<Value>(data).ok().and_then(|v| v["cursor"].as_u64()) {
                    let _ = tx.send((cursor, seen));
                }
            }
        }
    });
    let mut acks = std::collections::HashMap::new();
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / o.rate));
    let pushes = o.rate * o.seconds;
    for _ in 0..pushes {
        ticker.tick().await;
        let body = json!({"device_id": device, "entries": [{"change_id": Uuid::now_v7(), "payload": STANDARD.encode([0u8; 256])}]});
        let resp: Value = http
            .post(format!("{url}{}", paths::PUSH))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        acks.insert(resp["cursor"].as_u64().unwrap(), Instant::now());
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let (mut early, mut got) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(5);
    while got < pushes && Instant::now() < deadline {
        let Ok(Some((cursor, seen))) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await else { break };
        let Some(ack) = acks.get(&cursor) else { continue };
        got += 1;
        let micros = seen.checked_duration_since(*ack).map_or_else(
            || {
                early += 1;
                0
            },
            |d| d.as_micros() as u64,
        );
        hist.record(micros.max(1)).unwrap();
    }
    match &o.gateway {
        Some((gateway, _)) => {
            println!("SyncKit live sync benchmark through {gateway}: {} pushes/s for {} s", o.rate, o.seconds)
        }
        None => println!(
            "SyncKit live sync benchmark: {} idle event streams; {} pushes/s for {} s",
            o.idle, o.rate, o.seconds
        ),
    }
    if let Some(memory) = &memory {
        println!("\n| idle streams | opened in | server RSS before | after | per idle stream | streams per GiB |");
        println!("| --- | --- | --- | --- | --- | --- |");
        println!(
            "| {} | {:.1} s | {:.1} MiB | {:.1} MiB | {:.1} KiB | {:.0}k |",
            memory.streams.len(),
            memory.open_secs,
            memory.before_kib as f64 / 1024.0,
            memory.after_kib as f64 / 1024.0,
            memory.per_stream / 1024.0,
            (1024.0 * 1024.0 * 1024.0 / memory.per_stream) / 1000.0
        );
    }
    println!("\n| pushes | events received | before the ack | p50 | p99 | p99.9 | max |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| {pushes} | {got} | {early} | {} µs | {} µs | {} µs | {} µs |",
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
        hist.max()
    );
    drop(memory);
}

/// The idle streams, open until dropped, and what they cost the server.
struct IdleStreams {
    streams: Vec<BufReader<TcpStream>>,
    open_secs: f64,
    before_kib: u64,
    after_kib: u64,
    /// Bytes of the server's resident set per stream.
    per_stream: f64,
}

/// Opens `o.idle` event streams of one user and reads the server's resident set before and after.
async fn idle_streams(
    o: &Options,
    server: &server::ServerProcess,
    http: &reqwest::Client,
    api_key: &str,
) -> IdleStreams {
    let pid = server.child.id();
    let (idle_token, _) = server::user(http, &server.url, api_key).await;
    let addr = server.url.strip_prefix("http://").expect("an http:// URL");
    let before_kib = rss_kib(pid);
    let mut streams = Vec::with_capacity(o.idle);
    let opened = Instant::now();
    for chunk in (0..o.idle).collect::<Vec<_>>().chunks(200) {
        let batch = futures::future::join_all(chunk.iter().map(|_| open_events(addr, &idle_token))).await;
        streams.extend(batch);
    }
    let open_secs = opened.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await; // let allocations settle
    let after_kib = rss_kib(pid);
    let per_stream = (after_kib.saturating_sub(before_kib)) as f64 * 1024.0 / o.idle.max(1) as f64;
    IdleStreams { streams, open_secs, before_kib, after_kib, per_stream }
}

fn main() {
    let o = options();
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(run(&o));
}
