//! Two devices of one user syncing through a running server: a laptop sets up encryption and writes a note, a
//! phone unlocks with the password, reads it and answers.
//!
//! ```sh
//! cargo run --release -p synckit-server &
//! export SYNCKIT_API_KEY=$(cargo run -q -p synckit-server -- admin create-app --name Demo | jq -r .api_key)
//! cargo run -p synckit --example two_devices
//! ```

use std::sync::Arc;

use synckit::keystore::MemoryKeyStore;
use synckit::{ChangeEntry, SyncKitClient, SyncKitConfig};

fn device(url: &str, key: &str) -> SyncKitClient {
    // Each device keeps its own keys; in memory here, the OS keychain by default.
    SyncKitClient::new(SyncKitConfig::new(url, key).key_store(Arc::new(MemoryKeyStore::default())))
}

#[tokio::main]
async fn main() -> synckit::Result<()> {
    let url = std::env::var("SYNCKIT_SERVER").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let key = std::env::var("SYNCKIT_API_KEY").expect("set SYNCKIT_API_KEY to an app's API key");
    let email = format!("demo-{}@example.com", uuid::Uuid::new_v4());
    let password = "correct horse battery staple";

    let laptop = device(&url, &key);
    laptop.register(&email, password).await?;
    laptop.authenticate(&email, password).await?;
    laptop.setup_encryption_new(password).await?;
    let laptop_id = laptop.register_device("laptop", "linux").await?.id;
    laptop.push(laptop_id, [ChangeEntry::insert("notes", "n1", serde_json::json!({"title": "Buy milk"}))]).await?;

    let phone = device(&url, &key);
    phone.authenticate(&email, password).await?;
    phone.setup_encryption_existing(password).await?;
    let phone_id = phone.register_device("phone", "ios").await?.id;
    let page = phone.pull(phone_id, 0).await?;
    let phone_cursor = page.cursor;
    println!("phone received: {}", serde_json::to_string(&page.changes).expect("serialisable"));
    phone.push(phone_id, [ChangeEntry::upsert("notes", "n1", serde_json::json!({"title": "Buy oat milk"}))]).await?;

    let page = laptop.pull(laptop_id, 1).await?;
    println!("laptop received: {}", serde_json::to_string(&page.changes).expect("serialisable"));
    println!("phone is at cursor {phone_cursor}; the server holds {} changes", laptop.status().await?.change_count);
    Ok(())
}
