//! Every scenario for a few seconds (3 users, 10 iterations each) against an embedded server in this process, on
//! loopback: each must make requests (the scenario's own among them), and none may fail. The scenarios cannot rot
//! unnoticed.

use std::time::{Duration, Instant};

use goose::config::GooseConfiguration;
use goose::metrics::GooseMetrics;
use synckit_loadtest::{Options, Settings};
use synckit_testkit::{TestServer, engine};

/// Each scenario's own work: the requests (method and name, as goose's reports show them) it must have made.
const PUSH: &[&str] = &["POST push"];
const FIRST_SYNC: &[&str] = &["SYNC first sync of 600 entries"];
const STEADY: &[&str] = &["POST pull"];
/// A live device measures the others' events and pulls what they tell it of.
const LIVE: &[&str] = &["EVENT commit after ack", "POST pull"];
const BLOBS: &[&str] = &["BLOB download and decrypt 1 MiB"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push() {
    smoke("push", PUSH).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firstsync() {
    smoke("firstsync", FIRST_SYNC).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady() {
    smoke("steady", STEADY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live() {
    smoke("live", LIVE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs() {
    smoke("blobs", BLOBS).await;
}

/// Runs `scenario` with 3 users, 10 iterations each (a few seconds), and checks what it did.
async fn smoke(scenario: &str, own_requests: &[&str]) {
    let server = TestServer::start(engine::embedded()).await;
    let goose = GooseConfiguration::parse_args_default(&[
        "--host",
        server.url.as_str(),
        "--scenarios",
        scenario,
        "--users",
        "3",
        "--increase-rate",
        "30",
        // A number of iterations, not a run time: each user does its scenario's work ten times however slow the
        // machine is (a run time ends early on a loaded one), and the run still ends (the timeout below bounds it).
        // Goose keeps the metrics of the set-up (sign-up, envelope, device) then: they must not fail either.
        "--iterations",
        "10",
        // No controller listening on a port: tests run side by side.
        "--no-telnet",
        "--quiet",
    ])
    .expect("goose takes these options");
    let settings = Settings {
        history: 600,
        devices_per_account: None,
        blob_mib: 1,
        interval_ms: 200,
        api_key: server.api_key.clone(),
    };
    let started = Instant::now();
    let run = tokio::time::timeout(Duration::from_secs(60), synckit_loadtest::run(Options { goose, settings }));
    let metrics = run.await.expect("the run ends within a minute").expect("the run succeeds");
    eprintln!("{scenario}: {:.1} s", started.elapsed().as_secs_f64());
    check(scenario, own_requests, &metrics);
}

fn check(scenario: &str, own_requests: &[&str], metrics: &GooseMetrics) {
    let mut made = Vec::new();
    for (name, request) in &metrics.requests {
        made.push(format!("{name}: {} ok, {} failed", request.success_count, request.fail_count));
        assert_eq!(request.fail_count, 0, "{scenario}: {name} failed: {:?}", metrics.errors);
    }
    assert!(metrics.errors.is_empty(), "{scenario}: request errors: {:?}", metrics.errors);
    assert!(metrics.transaction_errors.is_empty(), "{scenario}: transaction errors: {:?}", metrics.transaction_errors);
    for own_request in own_requests {
        let own = metrics.requests.get(*own_request).map_or(0, |r| r.success_count);
        assert!(own > 0, "{scenario}: no successful {own_request:?}; made: {made:#?}");
    }
    assert!(made.len() > 1, "{scenario}: made only {made:?}");
    eprintln!("{scenario}: {made:#?}");
}
