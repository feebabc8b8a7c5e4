//! A device of the SDK against a server, as the tests that run real processes (the fault suite, `ops/cluster`) make
//! them: retries enough to ride over an instance's restart or death.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use synckit::keystore::MemoryKeyStore;
use synckit::{SyncKitClient, SyncKitConfig};
use uuid::Uuid;

/// A device of the user `email` (password "pw") on `url`, its own SDK client with its data in `dir/name`: the first
/// signs up and sets up the account's key; the others unlock it with the password.
pub async fn device(
    url: &str,
    api_key: &str,
    email: &str,
    first: bool,
    name: &str,
    dir: &Path,
) -> (SyncKitClient, Uuid) {
    let client = SyncKitClient::new(
        SyncKitConfig::new(url, api_key)
            .key_store(Arc::new(MemoryKeyStore::default()))
            .data_dir(dir.join(name))
            .max_retries(6)
            .attempt_timeout(Duration::from_secs(5))
            .total_timeout(Duration::from_secs(20)),
    );
    if first {
        client.register(email, "pw").await.unwrap();
    }
    client.authenticate(email, "pw").await.unwrap();
    if first {
        client.setup_encryption_new("pw").await.unwrap();
    } else {
        client.setup_encryption_existing("pw").await.unwrap();
    }
    let id = client.register_device(name, "linux").await.unwrap().id;
    (client, id)
}
