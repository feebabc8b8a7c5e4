//! An entry that cannot be read never stops sync: a pull, or live sync, reports it with its seq, change id, device
//! and reason, hands over the good changes around it, and moves the cursor past it. The bad entries are pushed
//! straight over HTTP into the user's stream by a device that holds no key, as a faulty device of the user (or a
//! hostile server, which can store anything) could.

use std::time::Duration;

use serde_json::json;
use synckit::{ChangeEntry, LiveSync, SyncKitClient, Undecryptable, UndecryptableReason};
use synckit_protocol::paths;
use synckit_testkit::{TestServer, b64, email, on_each_engine, random_bytes};
use uuid::Uuid;

use crate::Clients;
use crate::live::{change, device, events_only};

on_each_engine!(pull_reports_a_forged_entry_and_hands_over_the_rest, live_sync_reports_a_forged_entry_and_keeps_going);

/// A device of the user that never unlocked the key: all it can push is bytes of its own making.
async fn keyless_device(server: &TestServer, email: &str) -> (SyncKitClient, Uuid) {
    let client = server.client();
    client.authenticate(email, "pw").await.unwrap();
    let id = client.register_device("rogue", "linux").await.unwrap().id;
    (client, id)
}

/// What a report should say of one forged entry.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Forged {
    seq: u64,
    change_id: Uuid,
    device_id: Uuid,
    reason: UndecryptableReason,
}

/// Pushes `payload` as one entry of `(client, device_id)` with the client's token, without the SDK.
async fn forge(
    server: &TestServer,
    (client, device_id): &(SyncKitClient, Uuid),
    payload: &[u8],
    reason: UndecryptableReason,
) -> Forged {
    let change_id = Uuid::now_v7();
    let token = client.session().unwrap().token;
    let entries = json!([{"change_id": change_id, "payload": b64(payload)}]);
    let (status, body) =
        server.post(paths::PUSH, Some(&token), json!({"device_id": device_id, "entries": entries})).await;
    assert!(status.is_success(), "{status}: {body}");
    assert_eq!(body["accepted"], 1, "{body}");
    Forged { seq: body["cursor"].as_u64().unwrap(), change_id, device_id: *device_id, reason }
}

fn reported(undecryptable: &[Undecryptable]) -> Vec<Forged> {
    undecryptable
        .iter()
        .map(|u| Forged { seq: u.seq, change_id: u.change_id, device_id: u.device_id, reason: u.reason })
        .collect()
}

fn rows(changes: &[ChangeEntry]) -> Vec<&str> {
    changes.iter().map(|c| c.row_id.as_str()).collect()
}

async fn pull_reports_a_forged_entry_and_hands_over_the_rest(server: TestServer) {
    let email = email();
    let (laptop, laptop_id) = device(&server, &email, true, "laptop").await;
    let (phone, phone_id) = device(&server, &email, false, "phone").await;
    let rogue = keyless_device(&server, &email).await;

    laptop.push(laptop_id, change("before")).await.unwrap();
    // Valid base64, long enough, but not ciphertext under the user's key; then bytes too short to be ciphertext.
    let forged = forge(&server, &rogue, &random_bytes(64), UndecryptableReason::AuthenticationFailed).await;
    let stub = forge(&server, &rogue, b"sealed", UndecryptableReason::Malformed).await;
    laptop.push(laptop_id, change("after")).await.unwrap();

    let page = phone.pull(phone_id, 0).await.unwrap();
    assert_eq!(rows(&page.changes), ["before", "after"], "the good changes on both sides are handed over");
    assert_eq!(reported(&page.undecryptable), [forged, stub], "each bad entry is reported, in order");
    assert_eq!((page.cursor, page.has_more), (4, false), "the cursor is past all of them");

    // The next pull starts after them: nothing is reported twice, and what follows still arrives.
    laptop.push(laptop_id, change("later")).await.unwrap();
    let next = phone.pull(phone_id, page.cursor).await.unwrap();
    assert_eq!((rows(&next.changes), next.undecryptable.len()), (vec!["later"], 0));
    assert_eq!(phone.pull(phone_id, next.cursor).await.unwrap().undecryptable, []);

    // Skipped, not lost: the server keeps them, and a pull from before them reports them again.
    let again = phone.pull(phone_id, forged.seq - 1).await.unwrap();
    assert_eq!(reported(&again.undecryptable), [forged, stub]);
}

/// Collects live pages until the change to `last` arrives: the rows and the reports, in order.
async fn receive_until(live: &mut LiveSync, last: &str) -> (Vec<String>, Vec<Forged>) {
    let (mut rows, mut skipped) = (Vec::new(), Vec::new());
    // A guard against hanging, not a performance bound.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while rows.last().is_none_or(|row| row != last) {
        let page = match tokio::time::timeout_at(deadline, live.next()).await {
            Ok(Some(Ok(page))) => page,
            Ok(Some(Err(e))) => panic!("live sync stopped on {e} after {rows:?}"),
            Ok(None) => panic!("live sync stopped after {rows:?}"),
            Err(_) => panic!("{last:?} never arrived: got {rows:?}, skipped {skipped:?}"),
        };
        skipped.extend(reported(&page.undecryptable));
        rows.extend(page.changes.into_iter().map(|c| c.row_id));
    }
    (rows, skipped)
}

async fn live_sync_reports_a_forged_entry_and_keeps_going(server: TestServer) {
    let email = email();
    let (laptop, laptop_id) = device(&server, &email, true, "laptop").await;
    let (phone, phone_id) = device(&server, &email, false, "phone").await;
    let rogue = keyless_device(&server, &email).await;
    let mut live = phone.live_with(phone_id, 0, events_only());
    laptop.push(laptop_id, change("a")).await.unwrap();
    assert_eq!(receive_until(&mut live, "a").await, (vec!["a".to_owned()], vec![]));

    let forged = forge(&server, &rogue, &random_bytes(64), UndecryptableReason::AuthenticationFailed).await;
    laptop.push(laptop_id, change("b")).await.unwrap();
    assert_eq!(receive_until(&mut live, "b").await, (vec!["b".to_owned()], vec![forged]));

    // Still live, and the forged entry is not reported again.
    laptop.push(laptop_id, change("c")).await.unwrap();
    assert_eq!(receive_until(&mut live, "c").await, (vec!["c".to_owned()], vec![]));
}
