//! The five-line quickstart against a running server.
//!
//! ```sh
//! cargo run --release -p synckit-server &                                   # a server on 127.0.0.1:8080
//! export SYNCKIT_API_KEY=$(cargo run -q -p synckit-server -- admin create-app --name Demo | jq -r .api_key)
//! cargo run -p synckit --example quickstart
//! ```

use synckit::{ChangeEntry, ErrorKind, SyncKitClient, SyncKitConfig};

#[tokio::main]
async fn main() -> synckit::Result<()> {
    let url = std::env::var("SYNCKIT_SERVER").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let key = std::env::var("SYNCKIT_API_KEY").expect("set SYNCKIT_API_KEY to an app's API key");
    let email = format!("demo-{}@example.com", uuid::Uuid::new_v4());

    let client = SyncKitClient::new(SyncKitConfig { server_url: url, api_key: key, ..Default::default() });
    client.register(&email, "pass").await?;

    let (user_id, app_id) = client.authenticate(&email, "pass").await?;
    match client.setup_encryption_new("pass").await {
        Err(e) if e.kind() == ErrorKind::Conflict => client.setup_encryption_existing("pass").await?,
        other => other?,
    }
    let device = client.register_device("MacBook", "macos").await?;
    let changes = vec![ChangeEntry::insert("notes", "n1", serde_json::json!({"title": "Hello"}))];
    client.enqueue(changes).await?; // into the device's outbox, online or not
    let mut applied = 0;
    let report = client
        .sync(device.id, |page| {
            // An app writes them to its own store here; its own come back too, with their place in the stream.
            applied += page.changes.iter().filter(|c| c.device_id != device.id).count();
            Ok(())
        })
        .await?;

    println!("user {user_id} in app {app_id}: pushed {} changes, {} still pending", report.pushed, report.pending);
    println!(
        "applied {applied} changes from other devices ({} unreadable, skipped), now at cursor {}",
        report.undecryptable.len(),
        report.cursor
    );
    Ok(())
}
