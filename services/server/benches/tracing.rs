//! The cost of tracing on ingest: the same push workload against two `synckit-server` processes on Postgres and NATS,
//! one exporting traces and metrics to an OTLP/HTTP receiver in this process, the other with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` unset, alternately, in the same run.
//!
//! ```sh
//! cargo bench -p synckit-server --bench tracing                      # 32 streams x 10 pushes of 500 x 1 KiB, 3 rounds
//! cargo bench -p synckit-server --bench tracing -- --streams 32 --pushes 10 --rounds 3
//! cargo bench -p synckit-server --bench tracing -- --baseline PATH  # this build against another, both unset
//! ```
//!
//! With `--baseline PATH`, the two servers are this build and the `synckit-server` at PATH (say, one built before
//! OpenTelemetry was added), both with `OTEL_EXPORTER_OTLP_ENDPOINT` unset: what tracing costs when it is off.
//!
//! Each round runs the workload against both servers (which goes first alternates) and prints entries/s for each and
//! their ratio; the summary is the median ratio. Every push is traced (the default sampler), so the exporting server
//! ends each push's spans (request, handler, token check, transaction, notice) in its batch queue.

mod common;
#[path = "common/server.rs"]
mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::future::join_all;
use serde_json::{Value, json};
use synckit_protocol::paths;
use uuid::Uuid;

const ENTRIES_PER_PUSH: usize = 500;
const PAYLOAD_BYTES: usize = 1024;

/// `streams` devices of new users, one stream each, push `pushes` pushes of 500 entries at once; entries/s.
async fn ingest(http: &reqwest::Client, url: &str, api_key: &str, streams: usize, pushes: usize) -> f64 {
    let devices = join_all((0..streams).map(|_| server::user(http, url, api_key))).await;
    let payload = STANDARD.encode(vec![0x5au8; PAYLOAD_BYTES]);
    let started = Instant::now();
    join_all(devices.iter().map(|(token, device)| {
        let payload = payload.clone();
        async move {
            for _ in 0..pushes {
                let entries: Vec<Value> =
                    (0..ENTRIES_PER_PUSH).map(|_| json!({"change_id": Uuid::now_v7(), "payload": payload})).collect();
                let body = json!({"device_id": device, "entries": entries});
                let resp = http.post(format!("{url}{}", paths::PUSH)).bearer_auth(token).json(&body).send().await;
                let resp = resp.unwrap().error_for_status().unwrap().json::<Value>().await.unwrap();
                assert_eq!(resp["accepted"], ENTRIES_PER_PUSH, "{resp}");
            }
        }
    }))
    .await;
    (streams * pushes * ENTRIES_PER_PUSH) as f64 / started.elapsed().as_secs_f64()
}

/// Accepts every OTLP export and counts its bytes.
async fn start_receiver() -> (String, Arc<AtomicU64>) {
    let received = Arc::new(AtomicU64::new(0));
    let counted = received.clone();
    let app = Router::new().route(
        "/v1/{signal}",
        post(move |body: Bytes| {
            let counted = counted.clone();
            async move {
                counted.fetch_add(body.len() as u64, Ordering::Relaxed);
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

async fn run() {
    let streams = common::flag("--streams", 32);
    let pushes = common::flag("--pushes", 10);
    let rounds = common::flag("--rounds", 3);
    let baseline = common::flag("--baseline", String::new());
    let (endpoint, received) = start_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let off_db = synckit_testkit::fresh_database().await.unwrap();
    let on_db = synckit_testkit::fresh_database().await.unwrap();
    // Exporting against off, or (with --baseline) this build against another, both off.
    let (reference, (off, off_key), (on, on_key)) = if baseline.is_empty() {
        let exporting = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())];
        (
            ["off", "exporting"],
            server::start_server(server::THIS_BUILD, &off_db, &dir.path().join("off"), &[]).await,
            server::start_server(server::THIS_BUILD, &on_db, &dir.path().join("on"), &exporting).await,
        )
    } else {
        (
            ["baseline", "this build"],
            server::start_server(&baseline, &off_db, &dir.path().join("off"), &[]).await,
            server::start_server(server::THIS_BUILD, &on_db, &dir.path().join("on"), &[]).await,
        )
    };
    let [off_name, on_name] = reference;
    let http = reqwest::Client::new();
    // One unmeasured round each: connections, cached plans, the pools filled.
    ingest(&http, &off.url, &off_key, streams, 1).await;
    ingest(&http, &on.url, &on_key, streams, 1).await;

    println!("tracing: {streams} streams x {pushes} pushes of {ENTRIES_PER_PUSH} x {PAYLOAD_BYTES} B, {rounds} rounds");
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let (off_rate, on_rate) = if round % 2 == 0 {
            let off_rate = ingest(&http, &off.url, &off_key, streams, pushes).await;
            (off_rate, ingest(&http, &on.url, &on_key, streams, pushes).await)
        } else {
            let on_rate = ingest(&http, &on.url, &on_key, streams, pushes).await;
            (ingest(&http, &off.url, &off_key, streams, pushes).await, on_rate)
        };
        let ratio = on_rate / off_rate;
        println!(
            "round {round}: {off_name} {off_rate:.0} entries/s, {on_name} {on_rate:.0} entries/s, ratio {ratio:.3}"
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    if baseline.is_empty() {
        // The exporter's batches go out every 5 s: let the last ones arrive before counting.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let bytes = received.load(Ordering::Relaxed);
        println!("tracing: exporting / off, median of {rounds}: {median:.3}; {bytes} bytes of OTLP received");
        assert!(bytes > 0, "the exporting server sent nothing to the receiver");
    } else {
        println!("tracing: this build / {baseline}, both off, median of {rounds}: {median:.3}");
    }
}

fn main() {
    tokio::runtime::Runtime::new().unwrap().block_on(run());
}
