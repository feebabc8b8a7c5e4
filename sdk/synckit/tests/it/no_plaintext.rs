//! The server's storage holds no plaintext: after pushing known table names, row ids and values, none of those
//! strings appears anywhere in what the server stored; after uploading a known file, neither its bytes nor its plain
//! SHA-256 appear in the server's database or in the object store.

use crate::Clients;
use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};
use synckit::ChangeEntry;
use synckit_testkit::{Engine, TestServer, email, on_each_engine};

on_each_engine!(nothing_pushed_is_stored_in_the_clear);

mod files {
    use super::*;
    on_each_engine!([embedded, garage] files_are_stored_as_ciphertext_under_keyed_names);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn hex(bytes: impl AsRef<[u8]>) -> String {
    bytes.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

async fn nothing_pushed_is_stored_in_the_clear(server: TestServer) {
    let email = email();
    let client = server.client();
    client.register(&email, "pw").await.unwrap();
    client.authenticate(&email, "pw").await.unwrap();
    client.setup_encryption_new("pw").await.unwrap();
    let device = client.register_device("laptop", "linux").await.unwrap();
    let secrets = ["zebra_table_name", "row-id-platypus-42", "the narwhal sings at dawn"];
    client
        .push(device.id, vec![ChangeEntry::insert(secrets[0], secrets[1], json!({"note": secrets[2]}))])
        .await
        .unwrap();

    let stored = server.stored_bytes().await;
    assert!(stored.len() > 1000, "the dump covers the stored data");
    // The check can fail: the account's email is stored as is and must be found.
    assert!(contains(&stored, email.as_bytes()), "the dump includes the users table");
    for secret in secrets {
        assert!(!contains(&stored, secret.as_bytes()), "{secret:?} is stored in the clear");
        assert!(!contains(&stored, hex(secret).as_bytes()), "{secret:?} is stored in the clear (hex)");
    }
}

async fn files_are_stored_as_ciphertext_under_keyed_names(store: Engine) {
    let server = TestServer::start(store).await;
    let email = email();
    let client = server.client();
    client.register(&email, "pw").await.unwrap();
    client.authenticate(&email, "pw").await.unwrap();
    client.setup_encryption_new("pw").await.unwrap();
    client.register_device("laptop", "linux").await.unwrap();
    let file = "the narwhal sings at dawn; ".repeat(10_000).into_bytes();
    let blob = client.upload_blob(file.clone()).await.unwrap();

    // What the store holds, fetched as any device would, and (for the embedded store) the files on disk.
    let source = client.blob_download_url(&blob.id).await.unwrap();
    let object = reqwest::get(&source.url).await.unwrap().bytes().await.unwrap().to_vec();
    assert_eq!(object.len() as u64, synckit::crypto::blob::encrypted_len(file.len() as u64));
    let mut stored = server.stored_bytes().await;
    // The check can fail: the blob's id is in the server's records (raw bytes on SQLite, hex in a Postgres dump).
    assert!(
        contains(&stored, &blob.id.0) || contains(&stored, blob.id.to_hex().as_bytes()),
        "the dump includes the blob records"
    );
    stored.extend(&object);
    if !store.garage {
        stored.extend(files_under(&server.data_dir.path().join("blobs")));
    }

    let plain_hash = Sha256::digest(&file);
    let needles: [(&str, Vec<u8>); 4] = [
        ("the file", b"the narwhal sings".to_vec()),
        ("its SHA-256", plain_hash.to_vec()),
        ("its SHA-256 in hex", hex(plain_hash).into_bytes()),
        ("its SHA-256 in base64", base64::engine::general_purpose::STANDARD.encode(plain_hash).into_bytes()),
    ];
    for (what, needle) in needles {
        assert!(!contains(&stored, &needle), "{what} is stored");
    }
    assert!(!source.url.contains(&hex(plain_hash)), "the object's name is not the plain hash");
}

fn files_under(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(files_under(&path));
        } else {
            all.extend(std::fs::read(path).unwrap());
        }
    }
    all
}
