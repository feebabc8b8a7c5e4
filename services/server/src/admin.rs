//! Operator commands.

use serde::Serialize;
use synckit_auth::credentials::{api_key_hash, new_api_key, new_client_id};
use synckit_store::{AccountStore, NewApp};
use uuid::Uuid;

/// What `synckit-server admin create-app` prints.
#[derive(Debug, Serialize)]
pub struct CreatedApp {
    pub app_id: Uuid,
    /// Shown once; only its hash is stored.
    pub api_key: String,
    /// The app's OAuth client id: public.
    pub client_id: String,
}

/// Creates an app with no owner, its API key and client id.
pub async fn create_app(accounts: &dyn AccountStore, name: &str) -> anyhow::Result<CreatedApp> {
    let name = name.trim();
    anyhow::ensure!(!name.is_empty(), "the app name must not be empty");
    let api_key = new_api_key();
    let app = NewApp {
        id: Uuid::now_v7(),
        name: name.to_owned(),
        owner_id: None,
        client_id: new_client_id(),
        redirect_uris: Vec::new(),
        api_key_hash: api_key_hash(&api_key),
    };
    let app = accounts.create_app(app).await?;
    Ok(CreatedApp { app_id: app.id, api_key, client_id: app.client_id })
}
