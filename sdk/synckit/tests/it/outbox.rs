//! The SDK as a sync engine against a real server: changes enqueued in the outbox reach every other device once
//! through `sync` or live sync, offline enqueues are delivered when the server is back, a failing `apply` loses
//! nothing, and retried pushes with the caller's own ids store nothing twice.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use synckit::keystore::MemoryKeyStore;
use synckit::{ChangeEntry, ErrorKind, SyncKitClient, SyncKitConfig, SyncPage};
use synckit_testkit::{FaultProxy, TestServer, email, on_each_engine};
use uuid::Uuid;

use crate::Clients;
use crate::live::{device, events_only};

on_each_engine!(
    enqueued_changes_reach_every_other_device_once,
    a_failing_apply_gets_the_same_page_again_and_loses_nothing,
    changes_enqueued_offline_are_delivered_once_when_the_server_is_back,
    live_sync_pushes_what_is_enqueued_and_what_waited_for_the_network,
    retried_pushes_with_the_callers_ids_store_nothing_twice,
    what_waited_is_pushed_after_the_profile_registers_as_a_new_device,
    bad_changes_are_refused_whole_and_two_accounts_on_one_profile_do_not_mix,
);

/// `n` notes of one device, numbered from `from`.
fn notes(device: &str, from: usize, n: usize) -> Vec<ChangeEntry> {
    (from..from + n).map(|i| ChangeEntry::insert("notes", format!("{device}-{i}"), json!({"i": i}))).collect()
}

/// Syncs, collecting the other devices' changes `apply` is handed; every page must read back.
async fn sync_collect(client: &SyncKitClient, device: Uuid, into: &mut Vec<ChangeEntry>) -> synckit::SyncReport {
    client
        .sync(device, |page: SyncPage| {
            assert_eq!(page.undecryptable, [], "every entry an honest device pushed reads back");
            into.extend(page.changes.into_iter().filter(|c| c.device_id != device).map(|c| c.change));
            Ok(())
        })
        .await
        .unwrap()
}

async fn enqueued_changes_reach_every_other_device_once(server: TestServer) {
    let email = email();
    let (laptop, laptop_id) = device(&server, &email, true, "laptop").await;
    let (phone, phone_id) = device(&server, &email, false, "phone").await;

    // More than one push request and more than one pulled page.
    let first = notes("laptop", 0, 700);
    let second = notes("laptop", 700, 503);
    let ids = laptop.enqueue(first.clone()).await.unwrap();
    assert_eq!(ids.len(), 700);
    laptop.enqueue(second.clone()).await.unwrap();
    assert_eq!(laptop.pending().await.unwrap(), 1203);
    assert_eq!(laptop.status().await.unwrap().change_count, 0, "nothing is sent before sync");

    // The device is handed its own changes back, under the ids enqueue returned: where in the stream they landed.
    let mut own = Vec::new();
    let report = laptop
        .sync(laptop_id, |page| {
            own.extend(page.changes);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!((report.pushed, report.pulled, report.pending, report.cursor), (1203, 0, 0, 1203));
    assert_eq!(own.iter().map(|c| c.seq).collect::<Vec<_>>(), (1..=1203).collect::<Vec<u64>>());
    assert_eq!(own.iter().take(700).map(|c| c.change_id).collect::<Vec<_>>(), ids);
    assert!(own.iter().all(|c| c.device_id == laptop_id));
    assert_eq!(own.into_iter().map(|c| c.change).collect::<Vec<_>>(), [first.clone(), second.clone()].concat());
    assert_eq!(laptop.status().await.unwrap().change_count, 1203);

    let mut seen = Vec::new();
    let report = sync_collect(&phone, phone_id, &mut seen).await;
    assert_eq!((report.pushed, report.pulled, report.cursor), (0, 1203, 1203));
    assert_eq!(seen, [first, second].concat(), "every change once, in the order enqueued");
    assert_eq!(phone.load_cursor(phone_id).unwrap(), 1203, "the cursor is saved");

    // Both ways, and a sync with nothing new hands nothing over.
    let reply = notes("phone", 0, 3);
    phone.enqueue(reply.clone()).await.unwrap();
    let report = sync_collect(&phone, phone_id, &mut seen).await;
    assert_eq!((report.pushed, report.pulled), (3, 0));
    let mut back = Vec::new();
    sync_collect(&laptop, laptop_id, &mut back).await;
    assert_eq!(back, reply);
    let report = sync_collect(&laptop, laptop_id, &mut back).await;
    assert_eq!((report.pushed, report.pulled, back.len()), (0, 0, 3));

    // The server holds each change id once: the ids enqueue returned are the ids stored.
    let stored = server.pull_all(&laptop.session().unwrap().token, 0).await;
    assert_eq!(stored.iter().take(700).map(|(_, id, _)| *id).collect::<Vec<_>>(), ids);
}

async fn a_failing_apply_gets_the_same_page_again_and_loses_nothing(server: TestServer) {
    let email = email();
    let (laptop, laptop_id) = device(&server, &email, true, "laptop").await;
    let (phone, phone_id) = device(&server, &email, false, "phone").await;
    let changes = notes("laptop", 0, 1200);
    laptop.enqueue(changes.clone()).await.unwrap();
    laptop.sync(laptop_id, |_| Ok(())).await.unwrap();

    // The app's store fails on the second page: sync stops there, having saved the first page's cursor only.
    let (mut applied, mut pages) = (Vec::new(), 0);
    let err = phone
        .sync(phone_id, |page| {
            pages += 1;
            if pages == 2 {
                return Err("the disk is full".into());
            }
            applied.extend(page.changes.into_iter().map(|c| c.change));
            Ok(())
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Apply, "{err}");
    assert_eq!(std::error::Error::source(&err).unwrap().to_string(), "the disk is full");
    assert_eq!(applied.len(), 500);
    assert_eq!(phone.load_cursor(phone_id).unwrap(), 500);

    let report = sync_collect(&phone, phone_id, &mut applied).await;
    assert_eq!(report.pulled, 700);
    assert_eq!(applied, changes, "the failed page came again, and nothing twice");
}

async fn changes_enqueued_offline_are_delivered_once_when_the_server_is_back(server: TestServer) {
    let email = email();
    let proxy = FaultProxy::start(server.addr).await;
    let dir = tempfile::tempdir().unwrap();
    // The app's client, its outbox in the data directory (the default SQLite store).
    let app = |keys: Arc<MemoryKeyStore>| {
        SyncKitClient::new(
            SyncKitConfig::new(&proxy.url, &server.api_key).key_store(keys).data_dir(dir.path()).max_retries(1),
        )
    };
    let laptop = app(Arc::new(MemoryKeyStore::default()));
    laptop.register(&email, "pw").await.unwrap();
    laptop.authenticate(&email, "pw").await.unwrap();
    laptop.setup_encryption_new("pw").await.unwrap();
    let laptop_id = laptop.register_device("laptop", "linux").await.unwrap().id;

    // The network goes: enqueue still works, sync fails as the network does and keeps everything.
    proxy.set_up(false);
    let offline = notes("laptop", 0, 40);
    laptop.enqueue(offline[..25].to_vec()).await.unwrap();
    laptop.enqueue(offline[25..].to_vec()).await.unwrap();
    let err = laptop.sync(laptop_id, |_| Ok(())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    assert!(err.is_retryable());
    assert_eq!(laptop.pending().await.unwrap(), 40);

    // The app restarts while offline: the outbox is on disk.
    let session = laptop.session().unwrap();
    drop(laptop);
    let restarted = app(Arc::new(MemoryKeyStore::default()));
    restarted.restore_session(session);
    assert_eq!(restarted.pending().await.unwrap(), 40);

    proxy.set_up(true);
    restarted.setup_encryption_existing("pw").await.unwrap();
    let report = restarted.sync(laptop_id, |_| Ok(())).await.unwrap();
    assert_eq!((report.pushed, report.pending), (40, 0));
    let again = restarted.sync(laptop_id, |_| Ok(())).await.unwrap();
    assert_eq!(again.pushed, 0, "nothing is pushed twice");
    assert_eq!(restarted.status().await.unwrap().change_count, 40);

    let (phone, phone_id) = device(&server, &email, false, "phone").await;
    let mut seen = Vec::new();
    sync_collect(&phone, phone_id, &mut seen).await;
    assert_eq!(seen, offline);
}

/// Waits (with a guard against hanging) until `client` has pulled `want` changes through `sync`.
async fn sync_until(client: &SyncKitClient, device: Uuid, want: usize) -> Vec<ChangeEntry> {
    let mut seen = Vec::new();
    for _ in 0..200 {
        sync_collect(client, device, &mut seen).await;
        if seen.len() >= want {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("only {} of {want} changes arrived", seen.len());
}

async fn live_sync_pushes_what_is_enqueued_and_what_waited_for_the_network(server: TestServer) {
    let email = email();
    let proxy = FaultProxy::start(server.addr).await;
    let laptop = server.client_with(&proxy.url, Arc::new(MemoryKeyStore::default()));
    laptop.register(&email, "pw").await.unwrap();
    laptop.authenticate(&email, "pw").await.unwrap();
    laptop.setup_encryption_new("pw").await.unwrap();
    let laptop_id = laptop.register_device("laptop", "linux").await.unwrap().id;
    let (phone, phone_id) = device(&server, &email, false, "phone").await;

    // Live sync on the laptop: enqueueing is all the app does; the phone sees the change.
    let _live = laptop.live_with(laptop_id, 0, events_only());
    let first = notes("laptop", 0, 3);
    laptop.enqueue(first.clone()).await.unwrap();
    assert_eq!(sync_until(&phone, phone_id, 3).await, first);

    // Offline: the enqueue waits in the outbox, and goes once live sync has reconnected.
    proxy.set_up(false);
    let later = notes("laptop", 3, 2);
    laptop.enqueue(later.clone()).await.unwrap();
    proxy.set_up(true);
    assert_eq!(sync_until(&phone, phone_id, 2).await, later);
    assert_eq!(laptop.pending().await.unwrap(), 0);
    assert_eq!(phone.status().await.unwrap().change_count, 5, "each change stored once");
}

async fn retried_pushes_with_the_callers_ids_store_nothing_twice(server: TestServer) {
    let email = email();
    let (laptop, laptop_id) = device(&server, &email, true, "laptop").await;
    let changes: Vec<(Uuid, ChangeEntry)> = notes("laptop", 0, 8).into_iter().map(|c| (Uuid::now_v7(), c)).collect();

    // The first half arrived before a failure; the app pushes the whole call again.
    assert_eq!(laptop.push_with_ids(laptop_id, changes[..4].to_vec()).await.unwrap(), 4);
    assert_eq!(laptop.push_with_ids(laptop_id, changes.clone()).await.unwrap(), 8);
    assert_eq!(laptop.push_with_ids(laptop_id, changes.clone()).await.unwrap(), 8);
    assert_eq!(laptop.status().await.unwrap().change_count, 8);
    let stored: Vec<Uuid> = server.pull_all(&laptop.session().unwrap().token, 0).await.iter().map(|e| e.1).collect();
    assert_eq!(stored, changes.iter().map(|(id, _)| *id).collect::<Vec<_>>());

    // An id given twice in one call is refused before anything is sent.
    let twice = vec![changes[0].clone(), (changes[0].0, ChangeEntry::delete("notes", "x"))];
    let err = laptop.push_with_ids(laptop_id, twice).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(laptop.status().await.unwrap().change_count, 8);

    let (phone, phone_id) = device(&server, &email, false, "phone").await;
    let mut seen = Vec::new();
    sync_collect(&phone, phone_id, &mut seen).await;
    assert_eq!(seen, changes.into_iter().map(|(_, c)| c).collect::<Vec<_>>());
}

async fn what_waited_is_pushed_after_the_profile_registers_as_a_new_device(server: TestServer) {
    let email = email();
    let (laptop, laptop_id) = device(&server, &email, true, "laptop").await;
    let waiting = notes("laptop", 0, 3);
    laptop.enqueue(waiting.clone()).await.unwrap();

    // The device is removed before it pushed (from another device, say); the profile signs in as a new one.
    laptop.delete_device(laptop_id).await.unwrap();
    laptop.authenticate(&email, "pw").await.unwrap();
    let renewed = laptop.register_device("laptop, again", "linux").await.unwrap().id;
    assert_eq!(laptop.pending().await.unwrap(), 3);
    assert_eq!(laptop.sync(renewed, |_| Ok(())).await.unwrap().pushed, 3);

    let (phone, phone_id) = device(&server, &email, false, "phone").await;
    let mut seen = Vec::new();
    sync_collect(&phone, phone_id, &mut seen).await;
    assert_eq!(seen, waiting);
}

async fn bad_changes_are_refused_whole_and_two_accounts_on_one_profile_do_not_mix(server: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let profile = || {
        SyncKitClient::new(
            SyncKitConfig::new(&server.url, &server.api_key)
                .key_store(Arc::new(MemoryKeyStore::default()))
                .data_dir(dir.path()),
        )
    };
    let (ada, bob) = (profile(), profile());
    let mut ids = Vec::new();
    for (client, email) in [(&ada, email()), (&bob, email())] {
        client.register(&email, "pw").await.unwrap();
        client.authenticate(&email, "pw").await.unwrap();
        client.setup_encryption_new("pw").await.unwrap();
        ids.push(client.register_device("laptop", "linux").await.unwrap().id);
    }

    // A change too large to push fails the call, and nothing of the call is enqueued.
    let huge = ChangeEntry::insert("files", "f", json!("x".repeat(70 * 1024)));
    let err = ada.enqueue([notes("ada", 0, 1)[0].clone(), huge]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(ada.pending().await.unwrap(), 0);
    // Without a key nothing is enqueued either.
    let locked = profile();
    locked.restore_session(ada.session().unwrap());
    assert_eq!(locked.enqueue(notes("ada", 0, 1)).await.unwrap_err().kind(), ErrorKind::Locked);

    // Two accounts share the profile's outbox file, not their queues.
    ada.enqueue(notes("ada", 0, 2)).await.unwrap();
    bob.enqueue(notes("bob", 0, 3)).await.unwrap();
    assert_eq!((ada.pending().await.unwrap(), bob.pending().await.unwrap()), (2, 3));
    assert_eq!(ada.sync(ids[0], |_| Ok(())).await.unwrap().pushed, 2);
    assert_eq!(bob.pending().await.unwrap(), 3);
    assert_eq!(bob.sync(ids[1], |_| Ok(())).await.unwrap().pushed, 3);
    assert_eq!((ada.status().await.unwrap().change_count, bob.status().await.unwrap().change_count), (2, 3));
}
