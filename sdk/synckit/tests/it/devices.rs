//! Devices and their tokens, end to end: registering a device switches the client to the device's own token, a
//! saved session resumes it, and removing the device from another one shuts it out.

use std::sync::Arc;
use std::time::Duration;

use crate::Clients;
use synckit::keystore::MemoryKeyStore;
use synckit::{ChangeEntry, ErrorKind, LiveOptions};
use synckit_testkit::{TestServer, email, engine, on_each_engine};

on_each_engine!(a_device_syncs_with_its_own_token_until_another_removes_it);

async fn a_device_syncs_with_its_own_token_until_another_removes_it(server: TestServer) {
    let email = email();
    let keys = Arc::new(MemoryKeyStore::default());
    let laptop = server.client_with(&server.url, keys.clone());
    laptop.register(&email, "pw").await.unwrap();
    laptop.authenticate(&email, "pw").await.unwrap();
    let signed_in = laptop.session().unwrap();
    assert_eq!(signed_in.device_id, None);
    laptop.setup_encryption_new("pw").await.unwrap();
    let device = laptop.register_device("laptop", "linux").await.unwrap();

    // The session now holds the device's token, which lasts days where the sign-in token lasted minutes.
    let session = laptop.session().unwrap();
    assert_eq!(session.device_id, Some(device.id));
    assert_ne!(session.token, signed_in.token);
    assert!(session.expires_at > signed_in.expires_at + time::Duration::days(1));
    laptop.push(device.id, [ChangeEntry::insert("notes", "n1", serde_json::json!({"t": "hi"}))]).await.unwrap();

    // A restarted client resumes the saved session and keeps syncing as the device.
    let saved: synckit::Session = serde_json::from_str(&serde_json::to_string(&session).unwrap()).unwrap();
    let restarted = server.client_with(&server.url, keys);
    restarted.restore_session(saved);
    restarted.try_load_key_from_keychain().await.unwrap();
    restarted.push(device.id, [ChangeEntry::insert("notes", "n2", serde_json::json!({"t": "again"}))]).await.unwrap();
    assert_eq!(restarted.pull(device.id, 0).await.unwrap().changes.len(), 0, "a device never pulls its own pushes");

    // The laptop is lost; the phone removes it.
    let phone = server.client();
    phone.authenticate(&email, "pw").await.unwrap();
    phone.setup_encryption_existing("pw").await.unwrap();
    let phone_device = phone.register_device("phone", "ios").await.unwrap();
    assert_eq!(phone.pull(phone_device.id, 0).await.unwrap().changes.len(), 2);
    phone.delete_device(device.id).await.unwrap();

    for client in [&laptop, &restarted] {
        let change = ChangeEntry::insert("notes", "n3", serde_json::json!({"t": "lost"}));
        assert_eq!(client.push(device.id, [change]).await.unwrap_err().kind(), ErrorKind::Unauthorized);
        assert_eq!(client.pull(device.id, 0).await.unwrap_err().kind(), ErrorKind::Unauthorized);
        assert_eq!(client.status().await.unwrap_err().kind(), ErrorKind::Unauthorized);
        assert_eq!(client.list_devices().await.unwrap_err().kind(), ErrorKind::Unauthorized);
    }
    assert_eq!(phone.status().await.unwrap().change_count, 2, "the phone syncs on, and the lost push is not stored");
}

#[tokio::test]
async fn signing_in_after_a_few_typos_waits_out_the_throttle() {
    let server = TestServer::start_with(engine::embedded(), |s| {
        s.sign_in.account_burst = 2;
        s.sign_in.refill = Duration::from_secs(2);
    })
    .await;
    let email = email();
    let client = server.client();
    client.register(&email, "right").await.unwrap();
    for _ in 0..2 {
        assert_eq!(client.authenticate(&email, "wrong").await.unwrap_err().kind(), ErrorKind::WrongPassword);
    }
    // The server answers 429 with Retry-After: the SDK waits and tries again by itself.
    let started = tokio::time::Instant::now();
    client.authenticate(&email, "right").await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "the sign-in was throttled and waited out");
}

#[tokio::test]
async fn live_sync_of_a_removed_device_ends_unauthorized() {
    // Streams re-check their token at each heartbeat: one a second keeps the test short.
    let server = TestServer::start_with(engine::embedded(), |s| s.events.heartbeat = Duration::from_secs(1)).await;
    let email = email();
    let laptop = server.client();
    laptop.register(&email, "pw").await.unwrap();
    laptop.authenticate(&email, "pw").await.unwrap();
    laptop.setup_encryption_new("pw").await.unwrap();
    let device = laptop.register_device("laptop", "linux").await.unwrap();
    let options =
        LiveOptions { poll_interval: Duration::from_secs(3600), max_reconnect_delay: Duration::from_millis(200) };
    let mut live = laptop.live_with(device.id, 0, options);

    // The laptop listens: a change from the phone reaches it.
    let phone = server.client();
    phone.authenticate(&email, "pw").await.unwrap();
    phone.setup_encryption_existing("pw").await.unwrap();
    let phone_device = phone.register_device("phone", "ios").await.unwrap();
    phone.push(phone_device.id, [ChangeEntry::insert("notes", "n1", serde_json::json!({}))]).await.unwrap();
    let page = tokio::time::timeout(Duration::from_secs(10), live.next()).await.expect("a page").unwrap().unwrap();
    assert_eq!(page.changes.len(), 1);

    // Removed while listening: its stream closes, and reconnecting is refused for good.
    phone.delete_device(device.id).await.unwrap();
    let guard = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(guard, live.next()).await.expect("live sync ends") {
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
                break;
            }
            None => panic!("live sync stopped without saying why"),
        }
    }
}
