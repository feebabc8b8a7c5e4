//! Property: whatever a hostile network does to answers (swallows them after the server handled the request,
//! cuts them short, or answers 408 or 503 in the server's place), three devices that enqueue and `sync` through
//! it, and sync again after each failure, end up each holding every change exactly once, in the stream's order
//! (their own included, as `sync` hands them back), each device's changes in the order it made them, and the
//! server stores each change once.
//!
//! The network is a [`FaultProxy`] on loopback; each case runs a few rounds, and every sync is retried a bounded
//! number of times, so a case ends by itself.

use std::sync::{Arc, LazyLock};

use proptest::prelude::*;
use serde_json::json;
use synckit::keystore::MemoryKeyStore;
use synckit::{ChangeEntry, SyncKitClient};
use synckit_protocol::paths;
use synckit_testkit::{Engine, Fault, FaultProxy, TestServer, email, engine};
use uuid::Uuid;

use crate::Clients;

const DEVICES: usize = 3;

/// What the network does to the answer of one request.
#[derive(Debug, Clone)]
enum Trouble {
    /// The server handled it; the answer never comes.
    Swallow,
    /// The answer stops after this many bytes.
    Cut(usize),
    /// The server handled it; a 408 comes back in its place.
    Timeout,
    /// The server handled it; a 503 comes back in its place.
    Unavailable,
}

#[derive(Debug, Clone)]
struct Round {
    device: usize,
    /// Changes it enqueues, in as many calls.
    calls: Vec<usize>,
    /// Faults armed before it syncs, on pushes (true) or pulls.
    troubles: Vec<(bool, Trouble)>,
    /// Whether the app's apply fails on the first page it is handed this round.
    apply_fails: bool,
}

fn trouble() -> impl Strategy<Value = Trouble> {
    prop_oneof![
        Just(Trouble::Swallow),
        (0..400usize).prop_map(Trouble::Cut),
        Just(Trouble::Timeout),
        Just(Trouble::Unavailable),
    ]
}

fn round() -> impl Strategy<Value = Round> {
    (
        0..DEVICES,
        prop::collection::vec(1..40usize, 1..3),
        prop::collection::vec((any::<bool>(), trouble()), 0..4),
        any::<bool>(),
    )
        .prop_map(|(device, calls, troubles, apply_fails)| Round { device, calls, troubles, apply_fails })
}

fn answer(status: u16, code: &str) -> String {
    let body = json!({"error": {"code": code, "message": "from the network"}}).to_string();
    format!(
        "HTTP/1.1 {status} Whatever\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

impl Trouble {
    fn fault(&self) -> Fault {
        match self {
            Trouble::Swallow => Fault::Swallow,
            Trouble::Cut(n) => Fault::Cut(*n),
            Trouble::Timeout => Fault::Replace(answer(408, "request_timeout")),
            Trouble::Unavailable => Fault::Replace(answer(503, "unavailable")),
        }
    }
}

/// A device and what it holds: (seq, device, number) of every change `sync` handed it, in that order.
struct Device {
    client: SyncKitClient,
    id: Uuid,
    made: usize,
    holds: Vec<(u64, u64, u64)>,
}

impl Device {
    /// Syncs until a sync succeeds; each failure must be one a retry can mend.
    async fn sync(&mut self, apply_fails: bool) {
        let mut fail_next = apply_fails;
        for _ in 0..20 {
            let holds = &mut self.holds;
            let result = self
                .client
                .sync(self.id, |page| {
                    if std::mem::take(&mut fail_next) {
                        return Err("the app's store said no".into());
                    }
                    for synced in page.changes {
                        let data = synced.change.data.unwrap();
                        holds.push((synced.seq, data["device"].as_u64().unwrap(), data["n"].as_u64().unwrap()));
                    }
                    Ok(())
                })
                .await;
            match result {
                Ok(_) => return,
                Err(e) => assert!(
                    e.is_retryable() || e.kind() == synckit::ErrorKind::Apply,
                    "only the network or the app fails here: {e}"
                ),
            }
        }
        panic!("sync never succeeded");
    }
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap());
/// One server per engine for every case (each case signs up its own user and has its own proxy).
static EMBEDDED: tokio::sync::OnceCell<TestServer> = tokio::sync::OnceCell::const_new();
static POSTGRES: tokio::sync::OnceCell<TestServer> = tokio::sync::OnceCell::const_new();

async fn run(server: &TestServer, rounds: Vec<Round>) {
    let proxy = FaultProxy::start(server.addr).await;
    let email = email();
    let mut devices = Vec::new();
    for i in 0..DEVICES {
        let client = server.client_with(&proxy.url, Arc::new(MemoryKeyStore::default()));
        if i == 0 {
            client.register(&email, "pw").await.unwrap();
        }
        client.authenticate(&email, "pw").await.unwrap();
        if i == 0 {
            client.setup_encryption_new("pw").await.unwrap();
        } else {
            client.setup_encryption_existing("pw").await.unwrap();
        }
        let id = client.register_device(&format!("device-{i}"), "linux").await.unwrap().id;
        devices.push(Device { client, id, made: 0, holds: Vec::new() });
    }

    for round in rounds {
        let d = &mut devices[round.device];
        for n in round.calls {
            let changes: Vec<ChangeEntry> = (d.made..d.made + n)
                .map(|i| {
                    ChangeEntry::insert("t", format!("{}-{i}", round.device), json!({"device": round.device, "n": i}))
                })
                .collect();
            d.client.enqueue(changes).await.unwrap();
            d.made += n;
        }
        for (on_push, trouble) in &round.troubles {
            proxy.arm("POST", if *on_push { paths::PUSH } else { paths::PULL }, trouble.fault());
        }
        d.sync(round.apply_fails).await;
    }
    // Everyone catches up (a pushing device's faults may still be armed: they fire here, and are retried).
    for d in &mut devices {
        d.sync(false).await;
    }
    for d in &mut devices {
        d.sync(false).await;
    }

    let made: Vec<usize> = devices.iter().map(|d| d.made).collect();
    let total: usize = made.iter().sum();
    for (i, d) in devices.iter().enumerate() {
        assert_eq!(d.client.pending().await.unwrap(), 0, "device {i} pushed everything");
        assert_eq!(d.holds.len(), total, "device {i} holds every change, none twice");
        assert!(d.holds.windows(2).all(|w| w[0].0 < w[1].0), "device {i}: in the stream's order");
        for (source, &count) in made.iter().enumerate() {
            let from: Vec<u64> = d.holds.iter().filter(|(_, s, _)| *s == source as u64).map(|(_, _, n)| *n).collect();
            assert_eq!(from, (0..count as u64).collect::<Vec<_>>(), "device {i}: device {source}'s changes in order");
        }
    }
    assert_eq!(devices[0].client.status().await.unwrap().change_count as usize, total, "stored once each");
}

fn run_on(cell: &'static tokio::sync::OnceCell<TestServer>, engine: fn() -> Engine, rounds: Vec<Round>) {
    RUNTIME.block_on(async {
        let server = cell.get_or_init(|| TestServer::start(engine())).await;
        run(server, rounds).await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 4,
        max_shrink_iters: 16,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn embedded_every_device_holds_every_change_once(rounds in prop::collection::vec(round(), 1..7)) {
        run_on(&EMBEDDED, engine::embedded, rounds);
    }

    #[test]
    fn postgres_every_device_holds_every_change_once(rounds in prop::collection::vec(round(), 1..7)) {
        run_on(&POSTGRES, engine::postgres, rounds);
    }
}
