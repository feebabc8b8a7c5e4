//! The key envelope against a server that lies: it serves an envelope of its own making through
//! `GET /api/sync/keys`, which a real server's operator can do by writing to its store. Here the test plays that
//! operator through `PUT /api/sync/keys` with the user's token, so the device reads the forged bytes exactly as a
//! hostile server would serve them.

use std::sync::{Arc, Mutex};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use reqwest::{Method, StatusCode};
use serde_json::json;
use synckit::crypto::{KdfParams, SecretKey, derive_key, random_bytes, wrap_master_key};
use synckit::keystore::{KeyStore, MemoryKeyStore};
use synckit::{ChangeEntry, ErrorKind, SyncKitClient, SyncKitConfig};
use synckit_protocol::paths;
use synckit_testkit::{TestServer, b64, email, on_each_engine, unb64};

on_each_engine!(
    an_envelope_sealed_with_the_login_key_is_refused_and_nothing_is_kept,
    an_envelope_asking_for_other_kdf_costs_is_refused_before_deriving,
    a_genuine_envelope_unlocks_a_second_device_that_then_syncs,
    a_version_1_envelope_is_upgraded_only_by_a_device_that_holds_its_key,
);

/// A device's key store that remembers every key it was asked to keep.
#[derive(Debug, Default)]
pub(crate) struct WatchedKeys {
    inner: MemoryKeyStore,
    stored: Mutex<Vec<SecretKey>>,
}

impl KeyStore for WatchedKeys {
    fn load(&self, account: &str) -> synckit::Result<Option<SecretKey>> {
        self.inner.load(account)
    }

    fn store(&self, account: &str, key: &SecretKey) -> synckit::Result<()> {
        self.stored.lock().unwrap().push(key.clone());
        self.inner.store(account, key)
    }

    fn delete(&self, account: &str) -> synckit::Result<()> {
        self.inner.delete(account)
    }
}

impl WatchedKeys {
    pub(crate) fn stored(&self) -> Vec<SecretKey> {
        self.stored.lock().unwrap().clone()
    }
}

/// A device: a client with its own watched key store.
pub(crate) fn device(server: &TestServer) -> (SyncKitClient, Arc<WatchedKeys>) {
    let keys = Arc::new(WatchedKeys::default());
    let dir = tempfile::tempdir().unwrap().keep();
    let config = SyncKitConfig::new(&server.url, &server.api_key).key_store(keys.clone()).data_dir(dir).max_retries(3);
    (SyncKitClient::new(config), keys)
}

/// Registers `email`, sets up encryption on a first device and pushes one change from it.
pub(crate) async fn first_device(server: &TestServer, email: &str) -> (SyncKitClient, Arc<WatchedKeys>, ChangeEntry) {
    let (client, keys) = device(server);
    client.register(email, "pass").await.unwrap();
    client.authenticate(email, "pass").await.unwrap();
    client.setup_encryption_new("pass").await.unwrap();
    let device = client.register_device("laptop", "linux").await.unwrap();
    let change = ChangeEntry::insert("notes", "n1", json!({"title": "written on the first device"}));
    client.push(device.id, vec![change.clone()]).await.unwrap();
    (client, keys, change)
}

/// The stored envelope and its version, as the server serves them.
async fn stored_envelope(server: &TestServer, client: &SyncKitClient) -> (Vec<u8>, u64) {
    let (status, body) = server.get(paths::KEYS, Some(&client.session().unwrap().token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (unb64(&body["envelope"]), body["version"].as_u64().unwrap())
}

/// Replaces the stored envelope with `envelope`, as the server's operator could.
async fn plant(server: &TestServer, client: &SyncKitClient, envelope: &[u8]) {
    let (_, version) = stored_envelope(server, client).await;
    let token = client.session().unwrap().token;
    let body = json!({"envelope": b64(envelope), "expected_version": version});
    let (status, body) = server.send(Method::PUT, paths::KEYS, Some(&token), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A version 1 envelope sealed by hand under `wrapping`: the format SDKs wrote before version 2, which any holder
/// of the wrapping key can make.
fn seal_v1(
    master: &SecretKey,
    wrapping: &SecretKey,
    salt: &[u8],
    params: KdfParams,
    client: &SyncKitClient,
) -> Vec<u8> {
    let session = client.session().unwrap();
    let aad = [b"synckit/envelope/v1".as_slice(), session.app_id.as_bytes(), session.user_id.as_bytes()].concat();
    let nonce: [u8; 24] = random_bytes();
    let sealed = XChaCha20Poly1305::new(wrapping.as_bytes().into())
        .encrypt(&XNonce::from(nonce), Payload { msg: master.as_bytes(), aad: &aad })
        .unwrap();
    let params = [params.memory_kib, params.iterations, params.parallelism].map(u32::to_le_bytes).concat();
    [&[1u8][..], &params, salt, &nonce, &sealed].concat()
}

/// The account's login salt, which pre-login hands to anyone.
async fn login_salt(server: &TestServer, email: &str) -> Vec<u8> {
    let (status, body) = server.post(paths::ACCOUNTS_PRELOGIN, None, json!({"email": email})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    unb64(&body["salt"])
}

async fn an_envelope_sealed_with_the_login_key_is_refused_and_nothing_is_kept(server: TestServer) {
    let email = email();
    let (first, _, _) = first_device(&server, &email).await;

    // The server knows the login salt and the login key (every sign-in sends it), so it can seal a key of its own
    // choosing into an envelope with the login salt and the default parameters.
    let salt = login_salt(&server, &email).await;
    let login_key = derive_key("pass", &salt, KdfParams::DEFAULT).unwrap();
    let servers_key = SecretKey::generate();
    plant(&server, &first, &seal_v1(&servers_key, &login_key, &salt, KdfParams::DEFAULT, &first)).await;

    let (second, second_keys) = device(&server);
    second.authenticate(&email, "pass").await.unwrap();
    let err = second.setup_encryption_existing("pass").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Crypto, "{err}");
    assert!(err.to_string().contains("version 1"), "the error says what to do: {err}");
    assert!(second_keys.stored().is_empty(), "a refused key is not kept");
    assert!(!second.is_unlocked());
    let device = second.register_device("phone", "ios").await.unwrap();
    let push = second.push(device.id, vec![ChangeEntry::delete("notes", "n1")]).await.unwrap_err();
    assert_eq!(push.kind(), ErrorKind::Locked, "nothing is encrypted under the server's key");

    // Labelled version 2, the same forgery does not open: the login key is not a wrapping key.
    let mut relabelled = seal_v1(&servers_key, &login_key, &salt, KdfParams::DEFAULT, &first);
    relabelled[0] = 2;
    relabelled.extend_from_slice(&[0; 32]);
    plant(&server, &first, &relabelled).await;
    assert!(second.setup_encryption_existing("pass").await.is_err());
    assert!(second_keys.stored().is_empty());
}

async fn an_envelope_asking_for_other_kdf_costs_is_refused_before_deriving(server: TestServer) {
    let email = email();
    let (first, _, _) = first_device(&server, &email).await;
    let (second, second_keys) = device(&server);
    second.authenticate(&email, "pass").await.unwrap();
    let session = second.session().unwrap();
    let genuine = wrap_master_key(&SecretKey::generate(), "pass", session.app_id, session.user_id).unwrap();

    // Cheap first, so that code that derives whatever it is asked to fails here quickly, before the costly ones.
    let cheap = KdfParams { memory_kib: 8, iterations: 1, parallelism: 1 };
    let absurd = KdfParams { memory_kib: 4 << 20, iterations: 64, parallelism: 1 };
    let salt: [u8; 32] = random_bytes();
    let cheap_v1 = seal_v1(&SecretKey::generate(), &derive_key("pass", &salt, cheap).unwrap(), &salt, cheap, &first);
    let mut absurd_v2 = genuine.clone();
    absurd_v2[1..13].copy_from_slice(&[absurd.memory_kib, absurd.iterations, 1].map(u32::to_le_bytes).concat());
    let mut absurd_v1 = cheap_v1.clone();
    absurd_v1[1..13].copy_from_slice(&absurd_v2[1..13]);

    for envelope in [cheap_v1, absurd_v2, absurd_v1] {
        plant(&server, &first, &envelope).await;
        // 4 GiB and 64 passes would run for many minutes: a refusal within the minute is a refusal before deriving.
        let unlock = second.setup_encryption_existing("pass");
        let err = tokio::time::timeout(std::time::Duration::from_secs(60), unlock).await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Crypto, "{err}");
        assert!(err.to_string().contains("before deriving"), "{err}");
        assert!(second_keys.stored().is_empty());
    }
}

async fn a_genuine_envelope_unlocks_a_second_device_that_then_syncs(server: TestServer) {
    let email = email();
    let (first, first_keys, change) = first_device(&server, &email).await;
    let (envelope, _) = stored_envelope(&server, &first).await;
    assert_eq!((envelope[0], envelope.len()), (2, 149), "new envelopes are version 2");

    let (second, second_keys) = device(&server);
    second.authenticate(&email, "pass").await.unwrap();
    assert_eq!(second.setup_encryption_existing("wrong").await.unwrap_err().kind(), ErrorKind::WrongPassword);
    second.setup_encryption_existing("pass").await.unwrap();
    assert_eq!(second_keys.stored(), first_keys.stored(), "both devices hold the one master key");

    let phone = second.register_device("phone", "ios").await.unwrap();
    assert_eq!(second.pull(phone.id, 0).await.unwrap().changes, vec![change]);
    let reply = ChangeEntry::upsert("notes", "n1", json!({"title": "edited on the second device"}));
    second.push(phone.id, vec![reply.clone()]).await.unwrap();
    let laptop = first.register_device("laptop", "linux").await.unwrap();
    assert_eq!(first.pull(laptop.id, 1).await.unwrap().changes, vec![reply]);
}

async fn a_version_1_envelope_is_upgraded_only_by_a_device_that_holds_its_key(server: TestServer) {
    let email = email();
    let (first, first_keys, change) = first_device(&server, &email).await;
    // The account as an older SDK left it: the first device holds the master key, the server a version 1
    // envelope of it (the login derivation with a fresh salt as the wrapping key).
    let master = first_keys.stored().pop().unwrap();
    let salt: [u8; 32] = random_bytes();
    let wrapping = derive_key("pass", &salt, KdfParams::DEFAULT).unwrap();
    plant(&server, &first, &seal_v1(&master, &wrapping, &salt, KdfParams::DEFAULT, &first)).await;
    let (_, legacy_version) = stored_envelope(&server, &first).await;

    // A new device cannot tell it from a forgery: refused, with what to do.
    let (second, second_keys) = device(&server);
    second.authenticate(&email, "pass").await.unwrap();
    let err = second.setup_encryption_existing("pass").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Crypto, "{err}");
    assert!(err.to_string().contains("on a device of this account that has unlocked before"), "{err}");
    assert!(second_keys.stored().is_empty());

    // The first device, restarted (its key store kept), upgrades it; a mistyped password upgrades nothing.
    let restarted = SyncKitClient::new(
        SyncKitConfig::new(&server.url, &server.api_key)
            .key_store(first_keys.clone())
            .data_dir(tempfile::tempdir().unwrap().keep()),
    );
    restarted.authenticate(&email, "pass").await.unwrap();
    assert_eq!(restarted.setup_encryption_existing("wrong").await.unwrap_err().kind(), ErrorKind::WrongPassword);
    assert_eq!(stored_envelope(&server, &first).await.0[0], 1);
    restarted.setup_encryption_existing("pass").await.unwrap();
    let (upgraded, version) = stored_envelope(&server, &first).await;
    assert_eq!((upgraded[0], version), (2, legacy_version + 1));

    // Now the new device unlocks the same key and reads what the first one wrote.
    second.setup_encryption_existing("pass").await.unwrap();
    assert_eq!(second_keys.stored(), vec![master]);
    let phone = second.register_device("phone", "ios").await.unwrap();
    assert_eq!(second.pull(phone.id, 0).await.unwrap().changes, vec![change]);
}
