//! The recovery key on a real server: a forgotten password recovered on a new device, and what is refused. The
//! hostile-server cases play the server through its own endpoint (`POST /api/accounts/recovery-key` with the user's
//! token and password), so the device reads the forged recovery envelopes exactly as a hostile server would serve
//! them.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::json;
use sha2::Sha256;
use synckit::crypto::{KdfParams, SecretKey, derive_key, random_bytes, seal_recovery_envelope};
use synckit::{ChangeEntry, ErrorKind, RecoveryKey, SyncKitClient};
use synckit_protocol::paths;
use synckit_testkit::{TestServer, b64, email, on_each_engine, unb64};
use uuid::Uuid;

use crate::Clients;
use crate::envelope::{device, first_device};

on_each_engine!(
    a_forgotten_password_is_recovered_with_the_recovery_key_on_a_new_device,
    a_wrong_recovery_key_has_its_own_error_and_a_malformed_one_is_caught_before_sending,
    a_password_change_ends_the_recovery_key,
    an_app_set_up_after_the_recovery_key_stops_recovery_and_nothing_changes,
    a_recovery_envelope_sealed_with_the_recovery_login_key_is_refused_and_nothing_is_kept,
    another_apps_recovery_envelope_is_refused_and_nothing_is_kept,
);

async fn a_forgotten_password_is_recovered_with_the_recovery_key_on_a_new_device(server: TestServer) {
    let email = email();
    let (laptop, _, written) = first_device(&server, &email).await;
    // The same account in a second app of the deployment, with its own key.
    let photos = synckit_server::admin::create_app(&*server.engines.accounts, "Photos", &[]).await.unwrap();
    let in_photos = server.client_in_app(&photos.api_key);
    in_photos.authenticate(&email, "pass").await.unwrap();
    in_photos.setup_encryption_new("pass").await.unwrap();
    let camera = in_photos.register_device("camera", "android").await.unwrap();
    let photo = ChangeEntry::insert("photos", "p1", json!({"caption": "in the photos app"}));
    in_photos.push(camera.id, vec![photo.clone()]).await.unwrap();

    assert_eq!(laptop.create_recovery_key("wrong").await.unwrap_err().kind(), ErrorKind::WrongPassword);
    let recovery_key = laptop.create_recovery_key("pass").await.unwrap();
    // Shown to the user, typed back on a new device.
    let typed: RecoveryKey = recovery_key.to_string().to_lowercase().parse().unwrap();

    // The password is forgotten. A new device recovers, and is signed in and unlocked.
    let (new_device, new_keys) = device(&server);
    let next = new_device.recover(&email, &typed, "a new passphrase").await.unwrap();
    assert_ne!(next, recovery_key, "the recovery key is replaced");
    assert!(new_device.is_unlocked());
    assert_eq!(new_keys.stored().len(), 1, "the app's key is kept, as after an unlock");
    let phone = new_device.register_device("phone", "ios").await.unwrap();
    assert_eq!(new_device.pull(phone.id, 0).await.unwrap().changes, vec![written.clone()]);

    // Every other session ended, in every app; the old password signs in nowhere.
    let laptop_device = laptop.list_devices().await.unwrap_err();
    assert_eq!(laptop_device.kind(), ErrorKind::Unauthorized, "{laptop_device}");
    assert_eq!(in_photos.pull(camera.id, 0).await.unwrap_err().kind(), ErrorKind::Unauthorized);
    let (third, _) = device(&server);
    assert_eq!(third.authenticate(&email, "pass").await.unwrap_err().kind(), ErrorKind::WrongPassword);

    // The new password works on a third device, which reads what was pushed before; in the other app too.
    third.authenticate(&email, "a new passphrase").await.unwrap();
    third.setup_encryption_existing("a new passphrase").await.unwrap();
    let tablet = third.register_device("tablet", "ios").await.unwrap();
    assert_eq!(third.pull(tablet.id, 0).await.unwrap().changes, vec![written]);
    let photos_again = server.client_in_app(&photos.api_key);
    photos_again.authenticate(&email, "a new passphrase").await.unwrap();
    photos_again.setup_encryption_existing("a new passphrase").await.unwrap();
    let frame = photos_again.register_device("frame", "linux").await.unwrap();
    assert_eq!(photos_again.pull(frame.id, 0).await.unwrap().changes, vec![photo]);

    // The recovery key used no longer works; the one it was replaced by does.
    let (fourth, fourth_keys) = device(&server);
    let used = fourth.recover(&email, &recovery_key, "yet another").await.unwrap_err();
    assert_eq!(used.kind(), ErrorKind::WrongRecoveryKey, "{used}");
    assert!(fourth_keys.stored().is_empty() && fourth.session().is_none());
    fourth.recover(&email, &next, "yet another").await.unwrap();
    assert!(fourth.is_unlocked());
}

async fn a_wrong_recovery_key_has_its_own_error_and_a_malformed_one_is_caught_before_sending(server: TestServer) {
    let email = email();
    let (laptop, _, _) = first_device(&server, &email).await;
    let recovery_key = laptop.create_recovery_key("pass").await.unwrap();

    let (other, other_keys) = device(&server);
    let wrong = other.recover(&email, &RecoveryKey::generate(), "new").await.unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::WrongRecoveryKey, "{wrong}");
    assert_eq!(wrong.code(), Some(synckit::ErrorCode::InvalidRecoveryKey));
    // The same answer for an unknown email, and for an account that has no recovery key.
    let unknown = other.recover(&synckit_testkit::email(), &recovery_key, "new").await.unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::WrongRecoveryKey);
    let without = synckit_testkit::email();
    first_device(&server, &without).await;
    assert_eq!(other.recover(&without, &recovery_key, "new").await.unwrap_err().kind(), ErrorKind::WrongRecoveryKey);
    assert!(other_keys.stored().is_empty() && other.session().is_none());
    // Nothing changed: the password still signs in and unlocks, and the real recovery key still works.
    laptop.authenticate(&email, "pass").await.unwrap();
    laptop.setup_encryption_existing("pass").await.unwrap();

    // A typo is caught by the checksum before any request; so is anything that is not a recovery key.
    let printed = recovery_key.to_string();
    let last = printed.chars().last().unwrap();
    let typo = format!("{}{}", &printed[..printed.len() - 1], if last == 'X' { 'Y' } else { 'X' });
    for (malformed, says) in [(typo.as_str(), "checksum"), (&printed[..20], "36 characters"), ("hunter2", "'U'")] {
        let err = malformed.parse::<RecoveryKey>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{malformed}");
        assert!(err.to_string().contains(says), "{err} should say {says}");
    }
    other.recover(&email, &printed.parse().unwrap(), "new").await.unwrap();
}

/// Whoever learned the password could have set a recovery key of their own; changing the password must lock them
/// out for good, so it ends every recovery key of the account.
async fn a_password_change_ends_the_recovery_key(server: TestServer) {
    let email = email();
    let (laptop, _, _) = first_device(&server, &email).await;
    let planted = laptop.create_recovery_key("pass").await.unwrap();
    laptop.change_password("pass", "changed").await.unwrap();

    let (other, other_keys) = device(&server);
    let refused = other.recover(&email, &planted, "taken over").await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::WrongRecoveryKey, "{refused}");
    assert!(other_keys.stored().is_empty() && other.session().is_none());
    // The changed password still signs in, and a new recovery key works.
    laptop.authenticate(&email, "changed").await.unwrap();
    laptop.setup_encryption_existing("changed").await.unwrap();
    let fresh = laptop.create_recovery_key("changed").await.unwrap();
    other.recover(&email, &fresh, "recovered").await.unwrap();
}

async fn an_app_set_up_after_the_recovery_key_stops_recovery_and_nothing_changes(server: TestServer) {
    let email = email();
    let (laptop, _, _) = first_device(&server, &email).await;
    let recovery_key = laptop.create_recovery_key("pass").await.unwrap();
    let photos = synckit_server::admin::create_app(&*server.engines.accounts, "Photos", &[]).await.unwrap();
    let in_photos = server.client_in_app(&photos.api_key);
    in_photos.authenticate(&email, "pass").await.unwrap();
    in_photos.setup_encryption_new("pass").await.unwrap();

    let (other, other_keys) = device(&server);
    let err = other.recover(&email, &recovery_key, "new").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains(&photos.app_id.to_string()), "{err} names the app");
    assert!(other_keys.stored().is_empty());
    laptop.authenticate(&email, "pass").await.unwrap();

    // A new recovery key covers it.
    let recovery_key = laptop.create_recovery_key("pass").await.unwrap();
    other.recover(&email, &recovery_key, "new").await.unwrap();
    let in_photos = server.client_in_app(&photos.api_key);
    in_photos.authenticate(&email, "new").await.unwrap();
    in_photos.setup_encryption_existing("new").await.unwrap();
}

/// Stores `envelope` as the recovery envelope of the session's app, as a server's operator could, keeping the
/// recovery key's hash as it is.
async fn plant(server: &TestServer, client: &SyncKitClient, email: &str, recovery_key: &RecoveryKey, envelope: &[u8]) {
    let token = client.session().unwrap().token;
    let (_, key) = server.get(paths::KEYS, Some(&token)).await;
    let (_, pre) = server.post(paths::ACCOUNTS_PRELOGIN, None, json!({"email": email})).await;
    let login_key = derive_key("pass", &unb64(&pre["salt"]), KdfParams::DEFAULT).unwrap();
    let body = json!({
        "current_login_key": b64(login_key.as_bytes()),
        "recovery_login_key": b64(recovery_key.login_key().as_bytes()),
        "keys": [{"app_id": client.session().unwrap().app_id, "envelope": b64(envelope), "expected_version": key["version"]}],
    });
    let (status, body) = server.post(paths::ACCOUNTS_RECOVERY_KEY, Some(&token), body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn a_recovery_envelope_sealed_with_the_recovery_login_key_is_refused_and_nothing_is_kept(server: TestServer) {
    let email = email();
    let (laptop, _, _) = first_device(&server, &email).await;
    let recovery_key = laptop.create_recovery_key("pass").await.unwrap();
    // The server receives the recovery login key (at set-up and at every recovery). With it as the wrapping key it
    // seals a master key of its own, with the key check every SyncKit envelope carries.
    let session = laptop.session().unwrap();
    let servers_key = SecretKey::generate();
    let forged = seal_by_hand(&servers_key, &recovery_key.login_key(), session.app_id, session.user_id);
    plant(&server, &laptop, &email, &recovery_key, &forged).await;

    let (new_device, new_keys) = device(&server);
    let err = new_device.recover(&email, &recovery_key, "a new passphrase").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Crypto, "{err}");
    assert!(new_keys.stored().is_empty(), "the server's key is not kept");
    assert!(!new_device.is_unlocked() && new_device.session().is_none());
    // Nothing was sent: the password still works, and the recovery key still proves itself.
    laptop.authenticate(&email, "pass").await.unwrap();
    let (status, _) = server
        .post(
            paths::ACCOUNTS_RECOVERY,
            None,
            json!({"email": email, "recovery_login_key": b64(recovery_key.login_key().as_bytes())}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

async fn another_apps_recovery_envelope_is_refused_and_nothing_is_kept(server: TestServer) {
    let email = email();
    let (laptop, _, _) = first_device(&server, &email).await;
    let recovery_key = laptop.create_recovery_key("pass").await.unwrap();
    // A genuine recovery envelope, sealed by this recovery key for this user, but in another app: served as this
    // app's, its key would decrypt nothing here, and its adoption would lock the app's data away.
    let session = laptop.session().unwrap();
    let other_app = Uuid::now_v7();
    let elsewhere = seal_recovery_envelope(&SecretKey::generate(), &recovery_key, other_app, session.user_id);
    plant(&server, &laptop, &email, &recovery_key, &elsewhere).await;

    let (new_device, new_keys) = device(&server);
    let err = new_device.recover(&email, &recovery_key, "a new passphrase").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Crypto, "{err}");
    assert!(new_keys.stored().is_empty());
    assert!(!new_device.is_unlocked());
    laptop.authenticate(&email, "pass").await.unwrap();
}

/// A recovery envelope as anyone holding `wrapping` can make one: the documented format, with a valid key check.
fn seal_by_hand(master: &SecretKey, wrapping: &SecretKey, app: Uuid, user: Uuid) -> Vec<u8> {
    let mut check = <Hmac<Sha256> as Mac>::new_from_slice(master.as_bytes()).unwrap();
    check.update(b"synckit/key-check/v2");
    check.update(app.as_bytes());
    check.update(user.as_bytes());
    let plaintext = [master.as_bytes().as_slice(), &check.finalize().into_bytes()].concat();
    let aad = [b"synckit/recovery-envelope/v1".as_slice(), app.as_bytes(), user.as_bytes(), &[3]].concat();
    let nonce: [u8; 24] = random_bytes();
    let sealed = XChaCha20Poly1305::new(wrapping.as_bytes().into())
        .encrypt(&XNonce::from(nonce), Payload { msg: &plaintext, aad: &aad })
        .unwrap();
    [&[3u8][..], &nonce, &sealed].concat()
}
