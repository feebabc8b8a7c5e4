//! The SDK against a real server, on the embedded default and on Postgres.

use std::sync::Arc;

use crate::Clients;
use serde_json::json;
use synckit::keystore::MemoryKeyStore;
use synckit::{ChangeEntry, ChangeOp, ErrorKind, SyncKitClient, UndecryptableReason};
use synckit_testkit::{TestServer, email, on_each_engine};
use uuid::Uuid;

on_each_engine!(
    quickstart_and_two_devices_converge,
    a_second_device_unlocks_with_the_password,
    the_documented_start_up_takes_the_right_branch,
    wrong_password_fails_and_changes_nothing,
    change_password_then_unlock_elsewhere,
    change_password_reaches_every_app,
    many_changes_are_split_into_pushes_and_pages,
    a_payload_moved_to_another_entry_is_reported_not_applied,
    calls_need_a_session_and_a_key,
);

/// Signs up and unlocks on a fresh client; returns it and its device id.
async fn first_device(server: &TestServer, email: &str, password: &str) -> (SyncKitClient, Uuid) {
    let client = server.client();
    client.register(email, password).await.unwrap();
    client.authenticate(email, password).await.unwrap();
    client.setup_encryption_new(password).await.unwrap();
    let device = client.register_device("laptop", "linux").await.unwrap();
    (client, device.id)
}

async fn other_device(server: &TestServer, email: &str, password: &str, name: &str) -> (SyncKitClient, Uuid) {
    let client = server.client();
    client.authenticate(email, password).await.unwrap();
    client.setup_encryption_existing(password).await.unwrap();
    let device = client.register_device(name, "ios").await.unwrap();
    (client, device.id)
}

async fn pull_everything(client: &SyncKitClient, device: Uuid, mut cursor: u64) -> (Vec<ChangeEntry>, u64) {
    let mut all = Vec::new();
    loop {
        let page = client.pull(device, cursor).await.unwrap();
        assert_eq!(page.undecryptable, [], "every entry an honest device pushed reads back");
        all.extend(page.changes);
        cursor = page.cursor;
        if !page.has_more {
            return (all, cursor);
        }
    }
}

async fn quickstart_and_two_devices_converge(server: TestServer) {
    let email = email();
    server.client().register(&email, "pass").await.unwrap();

    // The five lines of the README.
    let client = server.client();
    let (user_id, app_id) = client.authenticate(&email, "pass").await.unwrap();
    client.setup_encryption_new("pass").await.unwrap();
    let device = client.register_device("MacBook", "macos").await.unwrap();
    let changes = vec![
        ChangeEntry::insert("notes", "n1", json!({"title": "Groceries", "body": "milk"})),
        ChangeEntry::insert("notes", "n2", json!({"title": "Ideas"})),
    ];
    let cursor = client.push(device.id, changes.clone()).await.unwrap();
    assert_eq!(cursor, 2);
    let page = client.pull(device.id, 0).await.unwrap();
    assert!(page.changes.is_empty(), "a device does not get its own changes back");
    assert_eq!((page.cursor, page.has_more), (2, false));
    let new_cursor = page.cursor;
    assert_eq!(client.session().unwrap().user_id, user_id);
    assert_eq!(client.session().unwrap().app_id, app_id);

    // A second device sees them, decrypted, and its own changes reach the first.
    let (phone, phone_id) = other_device(&server, &email, "pass", "iPhone").await;
    let (seen, phone_cursor) = pull_everything(&phone, phone_id, 0).await;
    assert_eq!(seen, changes);
    let edit = ChangeEntry::upsert("notes", "n1", json!({"title": "Groceries", "body": "milk, eggs"}));
    let gone = ChangeEntry::delete("notes", "n2");
    phone.push(phone_id, vec![edit.clone(), gone.clone()]).await.unwrap();
    let (seen, cursor) = pull_everything(&client, device.id, new_cursor).await;
    assert_eq!(seen, vec![edit, gone]);
    assert_eq!(cursor, 4);
    assert_eq!(pull_everything(&phone, phone_id, phone_cursor).await.0, vec![]);
    assert_eq!(client.status().await.unwrap().change_count, 4);

    // The cursor store lets a device resume.
    client.save_cursor(device.id, cursor).unwrap();
    assert_eq!(client.load_cursor(device.id).unwrap(), 4);
    assert_eq!(client.load_cursor(phone_id).unwrap(), 0);
}

async fn a_second_device_unlocks_with_the_password(server: TestServer) {
    let email = email();
    let (_laptop, _) = first_device(&server, &email, "correct horse").await;
    let phone_keys = Arc::new(MemoryKeyStore::default());
    let phone = server.client_with(&server.url, phone_keys.clone());
    phone.authenticate(&email, "correct horse").await.unwrap();
    assert!(phone.has_server_key().await.unwrap());
    let nothing_cached = phone.try_load_key_from_keychain().await.unwrap_err();
    assert_eq!(nothing_cached.kind(), ErrorKind::Locked, "nothing cached on a new device: {nothing_cached}");
    assert!(!phone.is_unlocked());
    // Setting up "new" encryption on a second device must not replace the key.
    assert_eq!(phone.setup_encryption_new("correct horse").await.unwrap_err().kind(), ErrorKind::Conflict);
    phone.setup_encryption_existing("correct horse").await.unwrap();
    assert!(phone.is_unlocked());

    // The key is cached: a restored session unlocks without the password.
    let session = phone.session().unwrap();
    let restarted = server.client_with(&server.url, phone_keys);
    restarted.restore_session(session);
    restarted.try_load_key_from_keychain().await.unwrap();
    // Logging out forgets it.
    restarted.logout().unwrap();
    assert!(restarted.session().is_none());
}

/// The app start-up the SDK documents (`try_load_key_from_keychain`'s example), verbatim; which branch it took.
async fn documented_start_up(client: &SyncKitClient, password: &str) -> synckit::Result<&'static str> {
    let branch = if client.try_load_key_from_keychain().await.is_ok() {
        "ready"
    } else if client.has_server_key().await? {
        client.setup_encryption_existing(password).await?;
        "existing"
    } else {
        client.setup_encryption_new(password).await?;
        "new"
    };
    Ok(branch)
}

async fn the_documented_start_up_takes_the_right_branch(server: TestServer) {
    let email = email();
    let laptop_keys = Arc::new(MemoryKeyStore::default());
    let laptop = server.client_with(&server.url, laptop_keys.clone());
    laptop.register(&email, "pw").await.unwrap();
    laptop.authenticate(&email, "pw").await.unwrap();
    assert_eq!(documented_start_up(&laptop, "pw").await.unwrap(), "new", "the account's first device");
    let laptop_id = laptop.register_device("laptop", "linux").await.unwrap().id;
    laptop.push(laptop_id, [ChangeEntry::insert("notes", "n1", json!({"t": "from the laptop"}))]).await.unwrap();

    let phone = server.client();
    phone.authenticate(&email, "pw").await.unwrap();
    assert_eq!(documented_start_up(&phone, "pw").await.unwrap(), "existing", "a second device");
    let phone_id = phone.register_device("phone", "ios").await.unwrap().id;
    assert_eq!(phone.pull(phone_id, 0).await.unwrap().changes[0].data, Some(json!({"t": "from the laptop"})));

    // The laptop restarts: its session restored, the key comes from its key store, and no password is needed.
    let restarted = server.client_with(&server.url, laptop_keys);
    restarted.restore_session(laptop.session().unwrap());
    assert_eq!(documented_start_up(&restarted, "not asked").await.unwrap(), "ready", "a restart");
    assert!(restarted.is_unlocked());
    phone.push(phone_id, [ChangeEntry::insert("notes", "n2", json!({"t": "from the phone"}))]).await.unwrap();
    assert_eq!(restarted.pull(laptop_id, 0).await.unwrap().changes[0].data, Some(json!({"t": "from the phone"})));
}

async fn wrong_password_fails_and_changes_nothing(server: TestServer) {
    let email = email();
    let (laptop, laptop_id) = first_device(&server, &email, "right").await;
    laptop.push(laptop_id, vec![ChangeEntry::insert("t", "r", json!(1))]).await.unwrap();

    let phone = server.client();
    assert_eq!(phone.authenticate(&email, "wrong").await.unwrap_err().kind(), ErrorKind::WrongPassword);
    assert!(phone.session().is_none());
    phone.authenticate(&email, "right").await.unwrap();
    assert_eq!(phone.setup_encryption_existing("wrong").await.unwrap_err().kind(), ErrorKind::WrongPassword);
    assert!(!phone.is_unlocked());
    assert_eq!(phone.pull(Uuid::nil(), 0).await.unwrap_err().kind(), ErrorKind::Locked);
    assert_eq!(laptop.change_password("wrong", "new").await.unwrap_err().kind(), ErrorKind::WrongPassword);

    // Nothing changed: the right password still signs in and unlocks, the data is intact.
    let (again, again_id) = other_device(&server, &email, "right", "tablet").await;
    assert_eq!(pull_everything(&again, again_id, 0).await.0.len(), 1);
}

async fn change_password_then_unlock_elsewhere(server: TestServer) {
    let email = email();
    let (laptop, laptop_id) = first_device(&server, &email, "old password").await;
    laptop.push(laptop_id, vec![ChangeEntry::insert("t", "r", json!("before"))]).await.unwrap();
    let (phone, _) = other_device(&server, &email, "old password", "phone").await;

    laptop.change_password("old password", "new password").await.unwrap();
    // The laptop carries on with its new token.
    laptop.push(laptop_id, vec![ChangeEntry::insert("t", "r", json!("after"))]).await.unwrap();
    // The phone's session was revoked.
    assert_eq!(phone.status().await.unwrap_err().kind(), ErrorKind::Unauthorized);

    let fresh = server.client();
    assert_eq!(fresh.authenticate(&email, "old password").await.unwrap_err().kind(), ErrorKind::WrongPassword);
    fresh.authenticate(&email, "new password").await.unwrap();
    fresh.setup_encryption_existing("new password").await.unwrap();
    let device = fresh.register_device("desktop", "linux").await.unwrap();
    let (seen, _) = pull_everything(&fresh, device.id, 0).await;
    assert_eq!(seen.iter().map(|c| c.data.clone().unwrap()).collect::<Vec<_>>(), [json!("before"), json!("after")]);
}

/// The account is shared by the deployment's apps: a password changed in one app opens every app's key, and the
/// old password no longer opens any.
async fn change_password_reaches_every_app(server: TestServer) {
    let email = email();
    let (notes, notes_device) = first_device(&server, &email, "old password").await;
    notes.push(notes_device, vec![ChangeEntry::insert("t", "n", json!("note"))]).await.unwrap();
    let photos_app = synckit_server::admin::create_app(&*server.engines.accounts, "Photos", &[]).await.unwrap();
    let photos = server.client_in_app(&photos_app.api_key);
    photos.authenticate(&email, "old password").await.unwrap();
    photos.setup_encryption_new("old password").await.unwrap();
    let phone = photos.register_device("phone", "ios").await.unwrap();
    photos.push(phone.id, vec![ChangeEntry::insert("t", "p", json!("photo"))]).await.unwrap();

    notes.change_password("old password", "new password").await.unwrap();

    let later = server.client_in_app(&photos_app.api_key);
    later.authenticate(&email, "new password").await.unwrap();
    assert_eq!(later.setup_encryption_existing("old password").await.unwrap_err().kind(), ErrorKind::WrongPassword);
    later.setup_encryption_existing("new password").await.unwrap();
    let tablet = later.register_device("tablet", "linux").await.unwrap();
    let (seen, _) = pull_everything(&later, tablet.id, 0).await;
    assert_eq!(seen.iter().map(|c| c.data.clone().unwrap()).collect::<Vec<_>>(), [json!("photo")]);
}

async fn many_changes_are_split_into_pushes_and_pages(server: TestServer) {
    let email = email();
    let (laptop, laptop_id) = first_device(&server, &email, "pw").await;
    let changes: Vec<ChangeEntry> =
        (0..1203).map(|i| ChangeEntry::insert("items", format!("row-{i}"), json!({"i": i}))).collect();
    assert_eq!(laptop.push(laptop_id, changes.clone()).await.unwrap(), 1203);
    let (phone, phone_id) = other_device(&server, &email, "pw", "phone").await;
    let first = phone.pull(phone_id, 0).await.unwrap();
    assert_eq!((first.changes.len(), first.cursor, first.has_more), (500, 500, true));
    let (rest, cursor) = pull_everything(&phone, phone_id, first.cursor).await;
    assert_eq!(cursor, 1203);
    assert_eq!([first.changes, rest].concat(), changes);
}

async fn a_payload_moved_to_another_entry_is_reported_not_applied(server: TestServer) {
    let email = email();
    let (laptop, laptop_id) = first_device(&server, &email, "pw").await;
    let b = ChangeEntry::insert("t", "b", json!("B"));
    laptop.push(laptop_id, vec![ChangeEntry::insert("t", "a", json!("A")), b.clone()]).await.unwrap();
    let stored = server.pull_all(&laptop.session().unwrap().token, 0).await;
    // A hostile server moves one entry's payload onto another entry: B's ciphertext, under A's change id.
    server.execute("UPDATE changes SET payload = (SELECT payload FROM changes WHERE seq = 2) WHERE seq = 1").await;
    let (phone, phone_id) = other_device(&server, &email, "pw", "phone").await;
    let page = phone.pull(phone_id, 0).await.unwrap();
    assert_eq!(page.changes, [b], "B is applied once, not twice");
    let [skipped] = &page.undecryptable[..] else { panic!("one entry reported: {:?}", page.undecryptable) };
    assert_eq!(
        (skipped.seq, skipped.change_id, skipped.device_id, skipped.reason),
        (1, stored[0].1, laptop_id, UndecryptableReason::AuthenticationFailed)
    );
    assert_eq!((page.cursor, page.has_more), (2, false));
}

async fn calls_need_a_session_and_a_key(server: TestServer) {
    let client = server.client();
    assert_eq!(client.status().await.unwrap_err().kind(), ErrorKind::Unauthorized);
    assert_eq!(client.setup_encryption_new("pw").await.unwrap_err().kind(), ErrorKind::Unauthorized);
    let email = email();
    client.register(&email, "pw").await.unwrap();
    assert_eq!(client.register(&email, "pw").await.unwrap_err().kind(), ErrorKind::Conflict);
    client.authenticate(&email, "pw").await.unwrap();
    let device = client.register_device("d", "linux").await.unwrap();
    let err = client.push(device.id, vec![ChangeEntry::delete("t", "r")]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked);
    assert!(!client.has_server_key().await.unwrap());
    assert_eq!(client.setup_encryption_existing("pw").await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(client.delete_device(Uuid::now_v7()).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(client.register("x@example.com", "").await.unwrap_err().kind(), ErrorKind::InvalidInput);
    let _ = ChangeOp::Insert;
}
