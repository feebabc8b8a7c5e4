//! A push whose answer is lost is retried with the identical request, and every change is stored exactly once.
//! A proxy between client and server stands in for the network fault.

use std::sync::Arc;

use serde_json::json;
use synckit::ChangeEntry;
use synckit::keystore::MemoryKeyStore;
use synckit_protocol::paths;
use synckit_testkit::{Fault, FaultProxy, TestServer, email, on_each_engine};

use crate::Clients;

on_each_engine!(a_push_whose_answer_is_lost_stores_each_change_once);

async fn a_push_whose_answer_is_lost_stores_each_change_once(server: TestServer) {
    // The first push's answer is lost after the server has handled it.
    let proxy = FaultProxy::start(server.addr).await;
    proxy.arm("POST", paths::PUSH, Fault::Swallow);
    let email = email();
    let client = server.client_with(&proxy.url, Arc::new(MemoryKeyStore::default()));
    client.register(&email, "pw").await.unwrap();
    client.authenticate(&email, "pw").await.unwrap();
    client.setup_encryption_new("pw").await.unwrap();
    let device = client.register_device("laptop", "linux").await.unwrap();

    let changes: Vec<ChangeEntry> = (0..5).map(|i| ChangeEntry::insert("t", format!("r{i}"), json!(i))).collect();
    let cursor = client.push(device.id, changes.clone()).await.expect("the retry succeeds");
    assert_eq!(proxy.fired(), 1, "the first answer was really lost");
    assert_eq!(proxy.requests("POST", paths::PUSH).len(), 2, "and the push sent again");
    assert_eq!(cursor, 5);
    assert_eq!(client.status().await.unwrap().change_count, 5, "stored once, not twice");

    let reader = server.client();
    reader.authenticate(&email, "pw").await.unwrap();
    reader.setup_encryption_existing("pw").await.unwrap();
    let other = reader.register_device("phone", "ios").await.unwrap();
    assert_eq!(reader.pull(other.id, 0).await.unwrap().changes, changes);
}
