//! The SDK at its app's limits: over the storage limit a sync still pulls, fails with its own error kind, and keeps
//! the refused changes in the outbox until a larger plan, or compaction, lets them through, once; over the transfer
//! budget syncs are slowed and still complete.

use std::time::Duration;

use serde_json::json;
use synckit::{ChangeEntry, ErrorKind, SyncKitClient, SyncPage};
use synckit_server::admin;
use synckit_testkit::{TestServer, email, on_each_engine};
use uuid::Uuid;

use crate::live::device;

on_each_engine!(
    a_full_app_keeps_refused_changes_in_the_outbox_until_there_is_room,
    the_transfer_budget_slows_syncs_and_never_fails_them,
    compaction_frees_room_and_every_device_converges,
);

fn note(row: &str, text_bytes: usize) -> ChangeEntry {
    ChangeEntry::insert("notes", row, json!({"text": "x".repeat(text_bytes)}))
}

/// Syncs, collecting the rows of other devices' changes.
async fn sync(client: &SyncKitClient, device: Uuid, rows: &mut Vec<String>) -> synckit::Result<synckit::SyncReport> {
    client
        .sync(device, |page: SyncPage| {
            rows.extend(page.changes.into_iter().filter(|c| c.device_id != device).map(|c| c.change.row_id));
            Ok(())
        })
        .await
}

async fn a_full_app_keeps_refused_changes_in_the_outbox_until_there_is_room(server: TestServer) {
    // 5,000 bytes of storage.
    admin::set_plan(&*server.engines.accounts, server.app_id, "0.000005", Some(20)).await.unwrap();
    let email = email();
    let (laptop, laptop_id) = device(&server, &email, true, "laptop").await;
    let (phone, phone_id) = device(&server, &email, false, "phone").await;
    let (mut on_laptop, mut on_phone) = (Vec::new(), Vec::new());

    laptop.enqueue([note("small", 100)]).await.unwrap();
    sync(&laptop, laptop_id, &mut on_laptop).await.unwrap();
    laptop.enqueue([note("large", 6000)]).await.unwrap();
    phone.enqueue([note("from-phone", 100)]).await.unwrap();
    sync(&phone, phone_id, &mut on_phone).await.unwrap();

    // The laptop's large change does not fit: the sync pulls what the phone stored all the same, then says why the
    // change waits.
    let refused = sync(&laptop, laptop_id, &mut on_laptop).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::QuotaExceeded, "{refused}");
    assert!(refused.to_string().contains("1 changes wait in the outbox"), "{refused}");
    assert_eq!(on_laptop, ["from-phone"], "pulls go on");
    assert_eq!(laptop.pending().await.unwrap(), 1, "the refused change is kept");
    assert_eq!(laptop.status().await.unwrap().change_count, 2);

    // A larger plan: the next sync pushes it, once.
    admin::set_plan(&*server.engines.accounts, server.app_id, "0.00002", Some(20)).await.unwrap();
    let mut report = None;
    for _ in 0..30 {
        match sync(&laptop, laptop_id, &mut on_laptop).await {
            Ok(done) => {
                report = Some(done);
                break;
            }
            // The server reads the plan again within a second.
            Err(e) if e.kind() == ErrorKind::QuotaExceeded => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("{e}"),
        }
    }
    let report = report.expect("the larger plan let the change through");
    assert_eq!((report.pushed, report.pending), (1, 0));
    sync(&phone, phone_id, &mut on_phone).await.unwrap();
    assert_eq!(on_phone, ["small", "large"], "each once");
    assert_eq!(laptop.status().await.unwrap().change_count, 3);
}

async fn the_transfer_budget_slows_syncs_and_never_fails_them(server: TestServer) {
    // 0.5 MB stored at 1x: half a megabyte of transfer a period, which the laptop's own push and pull use up.
    admin::set_plan(&*server.engines.accounts, server.app_id, "0.0005", Some(1)).await.unwrap();
    let email = email();
    let (laptop, laptop_id) = device(&server, &email, true, "laptop").await;
    let (phone, phone_id) = device(&server, &email, false, "phone").await;
    let rows: Vec<String> = (0..30).map(|i| format!("note-{i}")).collect();
    laptop.enqueue(rows.iter().map(|row| note(row, 10_000))).await.unwrap();
    let (mut on_laptop, mut on_phone) = (Vec::new(), Vec::new());
    sync(&laptop, laptop_id, &mut on_laptop).await.unwrap();

    // Each of the phone's pulls is paced now; its syncs still bring everything.
    for page in 0..3 {
        phone.save_cursor(phone_id, 0).unwrap();
        on_phone.clear();
        let report = sync(&phone, phone_id, &mut on_phone).await.unwrap_or_else(|e| panic!("sync {page}: {e}"));
        assert_eq!((report.pulled, on_phone.len()), (30, 30));
    }
    assert_eq!(on_phone, rows);
    let usage = admin::usage(&*server.engines.accounts, &*server.engines.usage, server.app_id).await.unwrap();
    assert!(usage.transfer_bytes > 500_000, "the excess is metered: {usage:?}");
    assert_eq!(usage.transfer_limit_bytes, Some(500_000));
}

async fn compaction_frees_room_and_every_device_converges(server: TestServer) {
    // 12,000 bytes of storage: three versions of a 3,000-byte note fit, a fourth does not.
    admin::set_plan(&*server.engines.accounts, server.app_id, "0.000012", Some(20)).await.unwrap();
    let email = email();
    let (laptop, laptop_id) = device(&server, &email, true, "laptop").await;
    let (phone, phone_id) = device(&server, &email, false, "phone").await;
    let (mut on_laptop, mut on_phone) = (Vec::new(), Vec::new());
    let version = |v: usize| ChangeEntry::upsert("notes", "draft", json!({"v": v, "text": "x".repeat(3000)}));
    let mut seqs = Vec::new();
    for v in 1..=3 {
        laptop.enqueue([version(v)]).await.unwrap();
        let report = sync(&laptop, laptop_id, &mut on_laptop).await.unwrap();
        seqs.push(report.cursor);
        if v == 1 {
            // The phone sees the first version only.
            sync(&phone, phone_id, &mut on_phone).await.unwrap();
        }
    }
    laptop.enqueue([version(4)]).await.unwrap();
    let refused = sync(&laptop, laptop_id, &mut on_laptop).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::QuotaExceeded, "{refused}");

    // The way back that is not paying more: versions 1 and 2 are superseded by version 3.
    let compacted = laptop.supersede(seqs[..2].to_vec()).await.unwrap();
    assert_eq!(compacted.superseded, 2);
    assert!(compacted.freed_bytes > 6000, "{compacted:?}");
    let mut pushed = None;
    for _ in 0..30 {
        match sync(&laptop, laptop_id, &mut on_laptop).await {
            Ok(report) => {
                pushed = Some(report.pushed);
                break;
            }
            Err(e) if e.kind() == ErrorKind::QuotaExceeded => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(pushed, Some(1), "the waiting change went through once there was room");

    // The phone, behind the superseded entries, and a new device converge on the newest version.
    for (client, id) in [(phone, phone_id), device(&server, &email, false, "tablet").await] {
        let mut newest = None;
        client
            .sync(id, |page| {
                assert_eq!(page.undecryptable, [], "superseded entries are skipped, not unreadable");
                for c in page.changes {
                    newest = c.change.data.map(|d| d["v"].clone());
                }
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(newest, Some(json!(4)));
    }
}
