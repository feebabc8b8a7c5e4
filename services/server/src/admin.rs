//! Operator commands.

use serde::Serialize;
use synckit_auth::credentials::{api_key_hash, new_api_key};
use synckit_store::{AccountStore, App};
use uuid::Uuid;

/// What `synckit-server admin create-app` prints.
#[derive(Debug, Serialize)]
pub struct CreatedApp {
    pub app_id: Uuid,
    /// Shown once; only its hash is stored.
    pub api_key: String,
}

/// Creates an app and its API key.
pub async fn create_app(accounts: &dyn AccountStore, name: &str) -> anyhow::Result<CreatedApp> {
    let name = name.trim();
    anyhow::ensure!(!name.is_empty(), "the app name must not be empty");
    let app = App { id: Uuid::now_v7(), name: name.to_owned() };
    let api_key = new_api_key();
    accounts.create_app(app.clone(), &api_key_hash(&api_key)).await?;
    Ok(CreatedApp { app_id: app.id, api_key })
}
