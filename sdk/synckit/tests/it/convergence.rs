//! Property: whatever the interleaving of pushes and pulls from three devices, once each has pulled everything
//! they hold the same state, having received every other device's change exactly once.
//!
//! The app's merge rule here is last-writer-wins on (timestamp, value), the usual rule for apps built on a
//! changelog; the property is about the SDK and server delivering every change, not about the rule.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use crate::Clients;
use proptest::prelude::*;
use serde_json::json;
use synckit::{ChangeEntry, SyncKitClient};
use synckit_testkit::{TestServer, email, engine};
use uuid::Uuid;

#[derive(Debug, Clone)]
enum Op {
    Push { device: usize, row: u8, value: u16 },
    Pull { device: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, 0..4u8, any::<u16>()).prop_map(|(device, row, value)| Op::Push { device, row, value }),
        (0..3usize).prop_map(|device| Op::Pull { device }),
    ]
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap());
/// One server for every case (each case signs up its own user).
static SERVER: tokio::sync::OnceCell<TestServer> = tokio::sync::OnceCell::const_new();

/// One device: its client, id, cursor, state and how many changes it received.
struct Device {
    client: SyncKitClient,
    id: Uuid,
    cursor: u64,
    state: BTreeMap<String, (i64, String)>,
    received: usize,
}

impl Device {
    fn apply(&mut self, change: &ChangeEntry) {
        let candidate = (change.timestamp, change.data.as_ref().map(|d| d.to_string()).unwrap_or_default());
        let slot = self.state.entry(change.row_id.clone()).or_insert_with(|| candidate.clone());
        if candidate > *slot {
            *slot = candidate;
        }
    }

    async fn pull_all(&mut self) {
        loop {
            let page = self.client.pull(self.id, self.cursor).await.unwrap();
            assert_eq!(page.undecryptable, [], "every entry an honest device pushed reads back");
            for c in &page.changes {
                self.apply(c);
            }
            self.received += page.changes.len();
            self.cursor = page.cursor;
            if !page.has_more {
                return;
            }
        }
    }
}

async fn run(ops: Vec<Op>) {
    let server = SERVER.get_or_init(|| TestServer::start(engine::embedded())).await;
    let email = email();
    let mut devices = Vec::new();
    for i in 0..3 {
        let client = server.client();
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
        devices.push(Device { client, id, cursor: 0, state: BTreeMap::new(), received: 0 });
    }

    let mut pushed = [0usize; 3];
    for op in ops {
        match op {
            Op::Push { device, row, value } => {
                let change = ChangeEntry::upsert("cells", format!("row-{row}"), json!(value));
                let d = &mut devices[device];
                d.apply(&change);
                d.client.push(d.id, vec![change]).await.unwrap();
                pushed[device] += 1;
            }
            Op::Pull { device } => devices[device].pull_all().await,
        }
    }
    for d in &mut devices {
        d.pull_all().await;
    }

    let total: usize = pushed.iter().sum();
    for (i, d) in devices.iter().enumerate() {
        assert_eq!(d.received, total - pushed[i], "device {i} received every other device's change exactly once");
        assert_eq!(d.state, devices[0].state, "device {i} converged");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn three_devices_converge(ops in prop::collection::vec(op(), 1..30)) {
        RUNTIME.block_on(run(ops));
    }
}
