//! The server's storage holds no plaintext: after pushing known table names, row ids and values, none of those
//! strings appears anywhere in what the server stored.

mod common;

use common::{TestServer, email};
use serde_json::json;
use synckit::ChangeEntry;

on_both_engines!(nothing_pushed_is_stored_in_the_clear);

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
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
