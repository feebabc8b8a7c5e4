//! Live sync end to end: a push on one device reaches another through the event stream, on the embedded bus and
//! through real NATS, across NATS and server restarts, and across query instances. Nothing waits on a sleep to
//! pass: each wait is for the change itself, with a timeout only as a guard against hanging.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::Clients;
use serde_json::json;
use synckit::{ChangeEntry, LiveOptions, LiveSync, SyncKitClient};
use synckit_testkit::{Engine, TestServer, email, engine};
use uuid::Uuid;

/// Events alone must drive these tests: the fallback poll is pushed out of the way.
pub(crate) fn events_only() -> LiveOptions {
    LiveOptions { poll_interval: Duration::from_secs(3600), max_reconnect_delay: Duration::from_millis(500) }
}

/// A device of the user of `email` (password "pw"), signing up and setting up encryption when `first`.
pub(crate) async fn device(server: &TestServer, email: &str, first: bool, name: &str) -> (SyncKitClient, Uuid) {
    let client = server.client();
    if first {
        client.register(email, "pw").await.unwrap();
    }
    client.authenticate(email, "pw").await.unwrap();
    if first {
        client.setup_encryption_new("pw").await.unwrap();
    } else {
        client.setup_encryption_existing("pw").await.unwrap();
    }
    let id = client.register_device(name, "linux").await.unwrap().id;
    (client, id)
}

/// Collects live pages until `want` rows have arrived (or the guard expires), returning the row ids in order.
async fn receive(live: &mut LiveSync, want: usize, guard: Duration) -> Vec<String> {
    let mut rows = Vec::new();
    let deadline = tokio::time::Instant::now() + guard;
    while rows.len() < want {
        match tokio::time::timeout_at(deadline, live.next()).await {
            Ok(Some(page)) => {
                let page = page.unwrap();
                assert_eq!(page.undecryptable, [], "every entry an honest device pushed reads back");
                rows.extend(page.changes.into_iter().map(|c| c.row_id));
            }
            Ok(None) => panic!("live sync stopped"),
            Err(_) => break,
        }
    }
    rows
}

pub(crate) fn change(row: &str) -> Vec<ChangeEntry> {
    vec![ChangeEntry::insert("notes", row, json!({"row": row}))]
}

async fn push_reaches_the_other_device(server: TestServer) {
    let email = email();
    let (laptop, laptop_id) = device(&server, &email, true, "laptop").await;
    let (phone, phone_id) = device(&server, &email, false, "phone").await;
    let mut live = phone.live_with(phone_id, 0, events_only());
    // The hello of a fresh stream carries nothing to pull; the push must arrive as a commit event.
    laptop.push(laptop_id, change("a")).await.unwrap();
    assert_eq!(receive(&mut live, 1, Duration::from_secs(10)).await, ["a"]);
    // A burst is coalesced into as few pulls as it takes, and nothing arrives twice.
    for row in ["b", "c", "d"] {
        laptop.push(laptop_id, change(row)).await.unwrap();
    }
    assert_eq!(receive(&mut live, 3, Duration::from_secs(10)).await, ["b", "c", "d"]);
    live.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_bus_push_reaches_the_other_device() {
    push_reaches_the_other_device(TestServer::start(engine::embedded()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_push_reaches_the_other_device() {
    let nats_on_postgres = Engine { nats: true, ..engine::postgres() };
    push_reaches_the_other_device(TestServer::start(nats_on_postgres).await).await;
}

/// A NATS server of this test's own, so it can be stopped and started again.
struct OwnNats {
    port: u16,
    child: Child,
}

impl OwnNats {
    fn start(port: u16) -> Self {
        let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("nats-server installed (ops/ensure-nats installs it)");
        let mut child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self { port, child };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("nats-server did not start on {port}");
    }

    fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Pushes one change at a time until the watcher has received everything pushed so far. Needed after a restart:
/// until every client has reconnected, a notice can be lost, and only a later one (or a poll) tells the watcher.
async fn push_until_heard(
    laptop: &SyncKitClient,
    laptop_id: Uuid,
    live: &mut LiveSync,
    pushed: &mut Vec<String>,
    heard: &mut Vec<String>,
) {
    for attempt in 0..40 {
        let row = format!("after-{attempt}");
        laptop.push(laptop_id, change(&row)).await.unwrap();
        pushed.push(row);
        heard.extend(receive(live, pushed.len() - heard.len(), Duration::from_millis(500)).await);
        if heard.len() == pushed.len() {
            return;
        }
    }
    panic!("the watcher never caught up: pushed {pushed:?}, heard {heard:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_catches_up_across_a_nats_restart() {
    let nats = OwnNats::start(free_port());
    let url = format!("nats://127.0.0.1:{}", nats.port);
    let server = TestServer::start_with(engine::embedded(), |s| s.nats_url = Some(url)).await;
    let email = email();
    let (laptop, laptop_id) = device(&server, &email, true, "laptop").await;
    let (phone, phone_id) = device(&server, &email, false, "phone").await;
    let mut live = phone.live_with(phone_id, 0, events_only());
    let (mut pushed, mut heard) = (Vec::new(), Vec::new());
    push_until_heard(&laptop, laptop_id, &mut live, &mut pushed, &mut heard).await;

    // NATS goes away: pushes still succeed.
    let port = nats.stop();
    laptop.push(laptop_id, change("while-nats-down")).await.expect("pushes succeed without NATS");
    pushed.push("while-nats-down".into());

    let _nats = OwnNats::start(port);
    push_until_heard(&laptop, laptop_id, &mut live, &mut pushed, &mut heard).await;
    assert_eq!(heard, pushed, "every change, in order, none twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_catches_up_across_a_server_restart() {
    let server = TestServer::start(engine::embedded()).await;
    let email = email();
    let (laptop, laptop_id) = device(&server, &email, true, "laptop").await;
    let (phone, phone_id) = device(&server, &email, false, "phone").await;
    let mut live = phone.live_with(phone_id, 0, events_only());
    laptop.push(laptop_id, change("before")).await.unwrap();
    assert_eq!(receive(&mut live, 1, Duration::from_secs(10)).await, ["before"]);

    // The server stops (its event streams end), then a new one starts on the same address and data.
    let _restarted = server.restart().await;

    let (mut pushed, mut heard) = (vec!["before".to_owned()], vec!["before".to_owned()]);
    push_until_heard(&laptop, laptop_id, &mut live, &mut pushed, &mut heard).await;
    assert_eq!(heard, pushed);
    assert_eq!(heard.iter().collect::<HashSet<_>>().len(), heard.len(), "none twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_instance_hears_pushes_through_any_ingest_instance() {
    let one = TestServer::start(Engine { nats: true, ..engine::postgres() }).await;
    let two = one.another_instance().await;
    let email = email();
    // The laptop talks to instance one, the phone to instance two.
    let (laptop, laptop_id) = device(&one, &email, true, "laptop").await;
    let (phone, phone_id) = device(&two, &email, false, "phone").await;
    let mut live = phone.live_with(phone_id, 0, events_only());
    laptop.push(laptop_id, change("cross")).await.unwrap();
    assert_eq!(receive(&mut live, 1, Duration::from_secs(10)).await, ["cross"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nats_down_pushes_succeed_and_the_watcher_polls() {
    // NATS never answers on this port: the server starts anyway, pushes succeed, no commit event is ever sent.
    let dead = format!("nats://127.0.0.1:{}", free_port());
    let server = TestServer::start_with(engine::embedded(), |s| s.nats_url = Some(dead)).await;
    let email = email();
    let (laptop, laptop_id) = device(&server, &email, true, "laptop").await;
    let (phone, phone_id) = device(&server, &email, false, "phone").await;
    let mut live =
        phone.live_with(phone_id, 0, LiveOptions { poll_interval: Duration::from_millis(300), ..events_only() });
    let started = std::time::Instant::now();
    laptop.push(laptop_id, change("polled")).await.expect("a push succeeds while NATS is down");
    assert!(started.elapsed() < Duration::from_secs(2), "publishing is bounded, it does not hold the push");
    assert_eq!(receive(&mut live, 1, Duration::from_secs(10)).await, ["polled"]);
}
