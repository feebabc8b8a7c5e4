//! Writes the fuzz targets' seed corpora into `fuzz/corpus/<target>/`: small, valid inputs made by the real code
//! (protocol types serialised, the SDK's own sealing, URLs the store signed), from which the fuzzer mutates.
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example seeds
//!
//! Rerun it when a format changes; it replaces the seeds it writes and leaves other corpus files alone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use synckit::ChangeEntry;
use synckit::crypto::blob::{BlobSealer, CHUNK_BYTES};
use synckit::crypto::{seal_recovery_envelope, wrap_master_key};
use synckit_blob::{LocalStore, ObjectKey, ObjectStore, UrlHolder};
use synckit_fuzz::*;
use synckit_http::KeyRing;
use synckit_protocol::Base64Bytes;
use synckit_protocol::accounts::{
    AuthRequest, ChangePasswordRequest, ConsoleAuthRequest, PreloginRequest, RegisterRequest,
};
use synckit_protocol::apps::{CreateAppRequest, RedirectUrisRequest};
use synckit_protocol::blobs::{BlobConfirmRequest, BlobDownloadRequest, BlobUploadRequest};
use synckit_protocol::devices::RegisterDeviceRequest;
use synckit_protocol::keys::{AppKeyRewrap, PutKeyRequest};
use synckit_protocol::recovery::{RecoverRequest, RecoveredKey, RecoveryRequest, SetRecoveryKeyRequest};
use synckit_protocol::sync::{PullRequest, PushEntry, PushRequest};
use synckit_store::StreamId;
use uuid::Uuid;

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    request_body(&corpus.join("request_body"));
    key_envelope(&corpus.join("key_envelope"));
    entry_payload(&corpus.join("entry_payload"));
    blob_stream(&corpus.join("blob_stream"));
    blob_url(&corpus.join("blob_url"));
    sse_events(&corpus.join("sse_events"));
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    println!("{} ({} bytes)", path.display(), bytes.len());
}

fn request_body(dir: &Path) {
    let b64 = |bytes: &[u8]| Base64Bytes::from(bytes);
    let hash = "ab".repeat(32);
    let seed = |kind: u8, value: &dyn erased::Json, name: &str| {
        let mut data = vec![kind];
        data.extend(value.json());
        write(dir, name, &data);
    };
    seed(
        0,
        &RegisterRequest { email: "a@example.com".into(), salt: b64(&[1; 32]), login_key: b64(&[2; 32]) },
        "register",
    );
    seed(1, &PreloginRequest { email: "a@example.com".into() }, "prelogin");
    let auth = AuthRequest { email: "a@example.com".into(), login_key: b64(&[2; 32]), api_key: "sk_test".into() };
    seed(2, &auth, "auth");
    let rewrap = AppKeyRewrap { app_id: APP, envelope: b64(&[9; 149]), expected_version: 4 };
    let change = ChangePasswordRequest {
        current_login_key: b64(&[2; 32]),
        salt: b64(&[3; 32]),
        login_key: b64(&[4; 32]),
        keys: vec![rewrap],
    };
    seed(3, &change, "change_password");
    seed(4, &RegisterDeviceRequest { name: "MacBook".into(), platform: "macos".into() }, "register_device");
    seed(5, &PutKeyRequest { envelope: b64(&[9; 149]), expected_version: Some(1) }, "put_key");
    let entry = |data| PushEntry { change_id: CHANGE, payload: keys().seal_entry(data, APP, USER, CHANGE).into() };
    let push = PushRequest { device_id: DEVICE, entries: vec![entry(b"{}"), entry(b"")] };
    seed(6, &push, "push");
    seed(7, &PullRequest { cursor: 42, limit: Some(500) }, "pull");
    let upload = BlobUploadRequest { hash: hash.clone(), size: 1234, checksum_sha256: "3q2+7w==".into() };
    seed(8, &upload, "blob_upload");
    seed(9, &BlobConfirmRequest { hash: hash.clone(), size: 1234 }, "blob_confirm");
    seed(10, &BlobDownloadRequest { hash }, "blob_download");
    let recovery_rewrap = AppKeyRewrap { app_id: APP, envelope: b64(&[8; 73]), expected_version: 4 };
    let set_recovery_key = SetRecoveryKeyRequest {
        current_login_key: b64(&[2; 32]),
        recovery_login_key: b64(&[5; 32]),
        keys: vec![recovery_rewrap],
    };
    seed(11, &set_recovery_key, "set_recovery_key");
    seed(12, &RecoveryRequest { email: "a@example.com".into(), recovery_login_key: b64(&[5; 32]) }, "recovery");
    let recovered =
        RecoveredKey { app_id: APP, envelope: b64(&[9; 149]), recovery_envelope: b64(&[8; 73]), expected_version: 4 };
    let recover = RecoverRequest {
        email: "a@example.com".into(),
        recovery_login_key: b64(&[5; 32]),
        api_key: "sk_test".into(),
        salt: b64(&[3; 32]),
        login_key: b64(&[4; 32]),
        new_recovery_login_key: b64(&[6; 32]),
        keys: vec![recovered],
    };
    seed(13, &recover, "recover");
    seed(14, &ConsoleAuthRequest { email: "a@example.com".into(), login_key: b64(&[2; 32]) }, "console_auth");
    let redirect_uris = vec!["https://app.example/callback".into(), "http://127.0.0.1/callback".into()];
    seed(15, &CreateAppRequest { name: "Notes".into(), redirect_uris: redirect_uris.clone() }, "create_app");
    seed(16, &RedirectUrisRequest { redirect_uris }, "redirect_uris");
}

/// Serialising behind a trait object, so one closure takes every request type.
mod erased {
    pub trait Json {
        fn json(&self) -> Vec<u8>;
    }
    impl<T: super::Serialize> Json for T {
        fn json(&self) -> Vec<u8> {
            serde_json::to_vec(self).unwrap()
        }
    }
}

fn key_envelope(dir: &Path) {
    let envelope = wrap_master_key(&master_key(), PASSWORD, APP, USER).unwrap();
    write(dir, "v2", &envelope);
    // Sealed for another user: opens with no user's key.
    let stranger = wrap_master_key(&master_key(), PASSWORD, APP, Uuid::from_u128(7)).unwrap();
    write(dir, "v2_other_user", &stranger);
    // The layout of a version 1 envelope.
    let mut legacy = envelope[..117].to_vec();
    legacy[0] = 1;
    write(dir, "v1", &legacy);
    write(dir, "recovery", &seal_recovery_envelope(&master_key(), &recovery_key(), APP, USER));
    write(dir, "recovery_other_user", &seal_recovery_envelope(&master_key(), &recovery_key(), APP, Uuid::from_u128(7)));
}

fn entry_payload(dir: &Path) {
    let seal = |plaintext: &[u8]| keys().seal_entry(plaintext, APP, USER, CHANGE);
    let insert = ChangeEntry::insert("notes", "n1", serde_json::json!({"title": "Hello", "tags": ["a", 1, null]}));
    write(dir, "insert", &seal(&serde_json::to_vec(&insert).unwrap()));
    write(dir, "delete", &seal(&serde_json::to_vec(&ChangeEntry::delete("notes", "n1")).unwrap()));
    write(dir, "not_a_change", &seal(b"[1, 2, 3]"));
    write(dir, "other_change", &keys().seal_entry(b"{}", APP, USER, Uuid::from_u128(9)));
    write(dir, "short", &[0; 39]);
}

fn blob_stream(dir: &Path) {
    let sealed = |plain: &[u8]| BlobSealer::new(keys(), &blob_id(), plain.len() as u64).seal_all(plain).unwrap();
    let own_length = |cuts: &[u32], body: &[u8]| [vec![0u8], join(cuts, body)].concat();
    let declared =
        |length: u64, cuts: &[u32], body: &[u8]| [vec![1u8], length.to_le_bytes().to_vec(), join(cuts, body)].concat();
    write(dir, "empty", &own_length(&[], &sealed(b"")));
    write(dir, "small", &own_length(&[3, 17], &sealed(b"a small file")));
    let two_chunks: Vec<u8> = (0..CHUNK_BYTES + 40).map(|i| (i % 251) as u8).collect();
    let two = sealed(&two_chunks);
    write(dir, "two_chunks", &own_length(&[100, 65552, 65560], &two));
    // A declared length longer than the body (a cut download), and a huge one.
    write(dir, "declared_longer", &declared(200, &[5], &sealed(b"a small file")));
    write(dir, "declared_huge", &declared(u64::MAX / 3, &[], &sealed(b"x")));
}

fn blob_url(dir: &Path) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::open(root.path(), KeyRing::new(&URL_SECRET, [&PREVIOUS_URL_SECRET[..]]).unwrap()).unwrap();
    let key = ObjectKey {
        stream: StreamId { app_id: APP, user_id: USER },
        hash: stored_object_hash(),
        upload_id: Some(UPLOAD_ID),
    };
    let holder = UrlHolder { device_id: URL_DEVICE, token_version: URL_TOKEN_VERSION };
    // Long enough that the committed seeds stay valid.
    let expires_in = Duration::from_secs(100 * 365 * 24 * 3600);
    let object = stored_object();
    let checksum: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&object).into();
    let put = runtime.block_on(store.presign_put(&key, object.len() as u64, &checksum, expires_in, holder)).unwrap();
    let get = runtime.block_on(store.presign_get(&key, expires_in, holder)).unwrap();
    let put_request = [format!("PUT {}\ncontent-length: {}\n\n", put.url, object.len()).into_bytes(), object].concat();
    write(dir, "put", &put_request);
    write(dir, "get", format!("GET {}\n\n", get.url).as_bytes());
    write(dir, "get_range", format!("GET {}\nrange: bytes=10-\n\n", get.url).as_bytes());
    write(dir, "get_past_end", format!("GET {}\nrange: bytes=100000-200000\n\n", get.url).as_bytes());
}

fn sse_events(dir: &Path) {
    // As the query service writes them: a hello with the cursor on connect, a commit per push, keep-alive comments.
    let hello = "event: hello\ndata: {\"cursor\":41}\n\n";
    let commit = format!("event: commit\nid: 42\ndata: {{\"cursor\":42,\"device_id\":\"{OTHER_DEVICE}\"}}\n\n");
    write(dir, "hello_commit", &join(&[7, 30], format!("{hello}{commit}").as_bytes()));
    write(dir, "keepalive", &join(&[1], format!(":\n\n{commit}: ping\n\n").as_bytes()));
    let crlf = format!("{hello}{commit}").replace('\n', "\r\n");
    write(dir, "crlf", &join(&[12], crlf.as_bytes()));
    write(
        dir,
        "multiline",
        &join(
            &[],
            "retry: 1000\nevent: other\ndata: a\ndata: é€\n\nevent: commit\ndata: {\"cursor\": 1e3}\n\n".as_bytes(),
        ),
    );
}
