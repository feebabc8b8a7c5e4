//! OpenTelemetry, end to end: real `synckit-server` processes export to an OTLP/HTTP receiver of the test's own
//! ([`receiver`]), which decodes what it gets with the protocol's message types.
//!
//! - a push sent with a `traceparent` is one trace: the request's span and its database span at the ingest instance,
//!   and the commit notice's arrival at the query instance through NATS; the metrics of requests and entries arrive;
//!   the JSON log lines of the request carry the trace id;
//! - what is still queued is exported when the server is stopped, and stopping does not hang;
//! - without `OTEL_EXPORTER_OTLP_ENDPOINT` nothing is sent, and the server serves as ever;
//! - a protocol the server cannot export with stops it at start-up, naming the ones it can.
//!
//! The processes run under `timeout` (see the fault suite's `procs.rs`, shared here), on loopback only.

#[allow(dead_code)] // the fault suite's process helpers, of which this suite uses a few
#[path = "../faults/procs.rs"]
mod procs;
mod receiver;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use procs::ServerProcess;
use receiver::{GotPoint, GotSpan, Receiver};
use reqwest::StatusCode;
use serde_json::{Value, json};
use synckit_protocol::paths;
use uuid::Uuid;

/// SpanKind in OTLP.
const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;

/// How long the receiver is given to see what a test waits for.
const EXPORT_WAIT: Duration = Duration::from_secs(20);

/// A trace id and a parent span id of the test's choosing, and the `traceparent` header that carries them.
struct CallerTrace {
    trace_id: String,
    span_id: String,
}

impl CallerTrace {
    fn new() -> Self {
        Self {
            trace_id: Uuid::new_v4().simple().to_string(),
            span_id: Uuid::new_v4().simple().to_string()[..16].into(),
        }
    }

    fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }
}

/// The settings that make a process export to `receiver` quickly.
fn exporting_to(receiver: &Receiver) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.clone()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "300".into()),
        // The request's own log line (tower-http's, at debug) is the one whose trace id the test looks for.
        ("RUST_LOG", "info,tower_http=debug".into()),
    ]
}

/// A device of a new user, signed up through the auth service at `auth_url`.
struct Device {
    id: Uuid,
    token: String,
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

async fn post(http: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    let mut request = http.post(&url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::OK, "POST {url}: {body}");
    body
}

async fn sign_up(http: &reqwest::Client, auth_url: &str, api_key: &str) -> Device {
    let email = format!("otel-{}@example.com", Uuid::new_v4().simple());
    let login_key = [*Uuid::new_v4().as_bytes(), *Uuid::new_v4().as_bytes()].concat();
    let salt = [*Uuid::new_v4().as_bytes(), *Uuid::new_v4().as_bytes()].concat();
    let register = json!({"email": email, "salt": b64(&salt), "login_key": b64(&login_key)});
    post(http, format!("{auth_url}{}", paths::ACCOUNTS_REGISTER), None, register).await;
    let signed_in = post(
        http,
        format!("{auth_url}{}", paths::AUTH),
        None,
        json!({"email": email, "login_key": b64(&login_key), "api_key": api_key}),
    )
    .await;
    let token = signed_in["token"].as_str().unwrap();
    let device = post(
        http,
        format!("{auth_url}{}", paths::DEVICES),
        Some(token),
        json!({"name": "laptop", "platform": "linux"}),
    )
    .await;
    Device { id: device["id"].as_str().unwrap().parse().unwrap(), token: device["token"].as_str().unwrap().into() }
}

/// Pushes `n` entries to `url`, with a `traceparent` header when given one.
async fn push(http: &reqwest::Client, url: &str, device: &Device, n: usize, trace: Option<&CallerTrace>) -> Value {
    let entries: Vec<Value> =
        (0..n).map(|i| json!({"change_id": Uuid::now_v7(), "payload": b64(format!("entry {i}").as_bytes())})).collect();
    let mut request = http
        .post(format!("{url}{}", paths::PUSH))
        .bearer_auth(&device.token)
        .json(&json!({"device_id": device.id, "entries": entries}));
    if let Some(trace) = trace {
        request = request.header("traceparent", trace.traceparent());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "push: {body}");
    body
}

/// Reads an event stream until an event named `name` has come, or fails after `within`.
async fn until_event(
    events: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    seen: &mut String,
    name: &str,
    within: Duration,
) {
    let wanted = format!("event: {name}");
    let found = tokio::time::timeout(within, async {
        while !seen.contains(&wanted) {
            let chunk = events.next().await.expect("the event stream stays open").unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(found.is_ok(), "no `{name}` event within {within:?}; the stream said:\n{seen}");
}

fn spans_of<'a>(spans: &'a [GotSpan], service: &str, trace_id: &str) -> Vec<&'a GotSpan> {
    spans.iter().filter(|s| s.service == service && s.trace_id == trace_id).collect()
}

fn describe(spans: &[GotSpan]) -> String {
    spans.iter().map(|s| format!("  {} {:?} {} parent {}\n", s.service, s.name, s.trace_id, s.parent_span_id)).collect()
}

/// The sum over the points of `metric` from `service` whose attributes include `with`.
fn total(points: &[GotPoint], service: &str, metric: &str, with: &[(&str, &str)]) -> f64 {
    // Cumulative temporality: each export repeats the running total, so the newest point of each series counts.
    let mut latest: Vec<(Vec<(String, String)>, f64)> = Vec::new();
    for p in points.iter().filter(|p| p.service == service && p.metric == metric) {
        if !with.iter().all(|(k, v)| p.attribute(k) == Some(v)) {
            continue;
        }
        match latest.iter_mut().find(|(attrs, _)| *attrs == p.attributes) {
            Some(entry) => entry.1 = p.value,
            None => latest.push((p.attributes.clone(), p.value)),
        }
    }
    latest.iter().map(|(_, v)| v).sum()
}

/// The log lines of `log` that are JSON objects.
fn json_lines(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log).unwrap().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_is_one_trace_from_the_ingest_instance_to_the_query_instance() {
    let receiver = Receiver::start().await;
    let database = synckit_testkit::fresh_database().await.unwrap();
    let dir = tempfile::Builder::new().prefix("synckit-otel-").tempdir().unwrap();
    let shared = vec![("SYNCKIT_DATABASE_URL", database), ("SYNCKIT_NATS_URL", synckit_testkit::NATS_URL.to_owned())];
    let with_role = |role: &str, exporting: bool| {
        let mut env = shared.clone();
        env.push(("SYNCKIT_ROLE", role.to_owned()));
        if exporting {
            env.extend(exporting_to(&receiver));
        }
        env
    };
    let auth = ServerProcess::start(dir.path(), "auth", &with_role("auth", false), None).await;
    let mut ingest =
        ServerProcess::start(dir.path(), "ingest", &with_role("ingest", true), Some(auth.api_key.clone())).await;
    let query = ServerProcess::start(dir.path(), "query", &with_role("query", true), Some(auth.api_key.clone())).await;

    let http = reqwest::Client::new();
    let device = sign_up(&http, &auth.url, &auth.api_key).await;
    let stream = http.get(format!("{}{}", query.url, paths::EVENTS)).bearer_auth(&device.token).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let mut events = stream.bytes_stream();
    let mut seen = String::new();
    until_event(&mut events, &mut seen, "hello", Duration::from_secs(10)).await;

    let caller = CallerTrace::new();
    let pushed = push(&http, &ingest.url, &device, 3, Some(&caller)).await;
    assert_eq!(pushed["accepted"], 3, "{pushed}");
    until_event(&mut events, &mut seen, "commit", Duration::from_secs(10)).await;
    let pulled = post(&http, format!("{}{}", query.url, paths::PULL), Some(&device.token), json!({"cursor": 0})).await;
    assert_eq!(pulled["entries"].as_array().map(Vec::len), Some(3), "{pulled}");

    // The trace: the push's span continues the caller's, its database call and its notice are beneath it, and the
    // notice's arrival at the query instance hangs off the publish.
    let trace = caller.trace_id.as_str();
    let complete = |spans: &[GotSpan]| {
        let ingest = spans_of(spans, "synckit-ingest", trace);
        let query = spans_of(spans, "synckit-query", trace);
        let request = ingest.iter().find(|s| s.kind == SERVER && s.attribute("http.route") == Some(paths::PUSH));
        let database = ingest.iter().find(|s| s.kind == CLIENT && s.name == "postgres append");
        let publish = ingest.iter().find(|s| s.kind == PRODUCER);
        let received = query.iter().find(|s| s.kind == CONSUMER && s.name == "commit notice received");
        matches!((request, database, publish, received), (Some(_), Some(_), Some(p), Some(r)) if r.parent_span_id == p.span_id)
    };
    let arrived = receiver.until(EXPORT_WAIT, |spans, _| complete(spans)).await;
    let spans = receiver.spans();
    assert!(arrived, "the push's trace {trace} is incomplete; spans received:\n{}", describe(&spans));
    let request = spans
        .iter()
        .find(|s| s.trace_id == trace && s.kind == SERVER && s.attribute("http.route") == Some(paths::PUSH))
        .unwrap();
    assert_eq!(request.parent_span_id, caller.span_id, "the request's span is the child of the caller's");
    assert_eq!(request.name, format!("POST {}", paths::PUSH));
    assert_eq!(request.attribute("http.response.status_code"), Some("200"));
    let database = spans.iter().find(|s| s.trace_id == trace && s.name == "postgres append").unwrap();
    assert_eq!(database.attribute("db.system.name"), Some("postgresql"));
    assert_eq!(receiver.undecodable(), 0, "every export decodes as OTLP protobuf");

    // The metrics: requests by route and status with their durations, entries pushed and pulled, open streams, the
    // database pools.
    let route = ("http.route", paths::PUSH);
    let ok = ("http.response.status_code", "200");
    let counted = |points: &[GotPoint]| {
        total(points, "synckit-ingest", "http.server.request.duration", &[route, ok]) >= 1.0
            && total(points, "synckit-ingest", "synckit.entries.pushed", &[]) >= 3.0
            && total(points, "synckit-query", "synckit.entries.pulled", &[]) >= 3.0
            && total(points, "synckit-query", "synckit.events.connections", &[]) >= 1.0
            && total(points, "synckit-query", "http.server.request.duration", &[("http.route", paths::PULL), ok]) >= 1.0
            && total(
                points,
                "synckit-ingest",
                "db.client.connection.max",
                &[("db.client.connection.pool.name", "main")],
            ) >= 1.0
    };
    let arrived = receiver.until(EXPORT_WAIT, |_, points| counted(points)).await;
    let points = receiver.points();
    let names: std::collections::BTreeSet<_> = points.iter().map(|p| format!("{} {}", p.service, p.metric)).collect();
    assert!(arrived, "metrics missing; received: {names:#?}");
    let duration = points.iter().find(|p| p.metric == "http.server.request.duration").unwrap();
    assert_eq!(duration.unit, "s");

    // The request's log line carries the caller's trace id.
    let lines = json_lines(ingest.log());
    let request_lines: Vec<&Value> = lines.iter().filter(|l| l["message"] == "finished processing request").collect();
    assert!(
        request_lines.iter().any(|l| l["trace_id"] == trace && l["span_id"].as_str().is_some_and(|s| s.len() == 16)),
        "no JSON log line of the push carries trace id {trace}:\n{request_lines:#?}"
    );

    // Stopping exports what is left and does not hang.
    let status = ingest.terminate(Duration::from_secs(20));
    assert!(
        status.success(),
        "synckit-server exited with {status} on SIGTERM; its log:\n{}",
        procs::tail(ingest.log())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn what_is_still_queued_is_exported_when_the_server_stops() {
    let receiver = Receiver::start().await;
    let dir = tempfile::Builder::new().prefix("synckit-otel-").tempdir().unwrap();
    // Nothing would be exported for ten minutes but for the flush on shutdown.
    let env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.clone()),
        ("OTEL_BSP_SCHEDULE_DELAY", "600000".into()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "600000".into()),
    ];
    let mut server = ServerProcess::start(dir.path(), "all", &env, None).await;
    let http = reqwest::Client::new();
    let device = sign_up(&http, &server.url, &server.api_key).await;
    let caller = CallerTrace::new();
    push(&http, &server.url, &device, 2, Some(&caller)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        spans_of(&receiver.spans(), "synckit-all", &caller.trace_id).is_empty(),
        "spans were exported before the schedule delay or shutdown"
    );

    let status = server.terminate(Duration::from_secs(20));
    assert!(
        status.success(),
        "synckit-server exited with {status} on SIGTERM; its log:\n{}",
        procs::tail(server.log())
    );
    let spans = receiver.spans();
    assert!(
        spans_of(&spans, "synckit-all", &caller.trace_id).iter().any(|s| s.kind == SERVER),
        "the push's span was not exported on shutdown; spans received:\n{}",
        describe(&spans)
    );
    assert!(
        total(&receiver.points(), "synckit-all", "synckit.entries.pushed", &[]) >= 2.0,
        "the entries pushed were not exported on shutdown"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_is_exported_without_an_endpoint() {
    let receiver = Receiver::start().await;
    let dir = tempfile::Builder::new().prefix("synckit-otel-").tempdir().unwrap();
    // Every OTLP setting but the endpoint that turns exporting on: the signals' own endpoints alone do not.
    let env = vec![
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", format!("{}/v1/traces", receiver.url)),
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", format!("{}/v1/metrics", receiver.url)),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "300".into()),
        ("RUST_LOG", "info,tower_http=debug".into()),
    ];
    let mut server = ServerProcess::start(dir.path(), "all", &env, None).await;
    let http = reqwest::Client::new();
    let device = sign_up(&http, &server.url, &server.api_key).await;
    let caller = CallerTrace::new();
    let pushed = push(&http, &server.url, &device, 2, Some(&caller)).await;
    assert_eq!(pushed["accepted"], 2, "{pushed}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = server.terminate(Duration::from_secs(20));
    assert!(status.success(), "synckit-server exited with {status} on SIGTERM");

    assert_eq!(receiver.exports(), 0, "something was exported without OTEL_EXPORTER_OTLP_ENDPOINT");
    let lines = json_lines(server.log());
    assert!(lines.iter().any(|l| l["message"] == "finished processing request"), "the requests were logged");
    assert!(lines.iter().all(|l| l.get("trace_id").is_none()), "no trace ids in the logs when not tracing");
}

#[test]
fn an_unsupported_protocol_stops_the_server_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")] {
        let out = Command::new("timeout")
            .args(["-s", "KILL", "60"])
            .arg(env!("CARGO_BIN_EXE_synckit-server"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SYNCKIT_DATA_DIR", dir.path())
            .env("SYNCKIT_LISTEN", "127.0.0.1:0")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
            .env(var, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {stderr}");
        assert!(
            stderr.contains(&format!("{var}=grpc")) && stderr.contains("http/protobuf") && stderr.contains("http/json"),
            "the error names the variable and the supported protocols: {stderr}"
        );
    }
}
