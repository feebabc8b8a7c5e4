//! Operator commands: `synckit-server admin create-app`, `list-apps`, `rotate-key`, `quote`, `set-plan` and `usage`, on any
//! app of the deployment. They do what an app's owner does at `/api/apps`, through the same operations; apps they
//! create have no owner, and plans they set apply at once.

use anyhow::Context;
use serde::Serialize;
use synckit_auth::plans::{Change, change_plan};
use synckit_protocol::apps::{AppList, RotatedApiKey};
use synckit_protocol::plans::{AppPlan, Plan, Quote};
use synckit_store::{AccountStore, UsageStore};
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

/// Creates an app with no owner, its API key and client id, and the redirect URIs given.
pub async fn create_app(
    accounts: &dyn AccountStore,
    name: &str,
    redirect_uris: &[String],
) -> anyhow::Result<CreatedApp> {
    let created = synckit_auth::apps::register(accounts, None, name, redirect_uris.to_vec()).await?;
    Ok(CreatedApp { app_id: created.app.app_id, api_key: created.api_key, client_id: created.app.client_id })
}

/// Every app of the deployment, oldest first, with no secret.
pub async fn list_apps(accounts: &dyn AccountStore) -> anyhow::Result<AppList> {
    let apps = accounts.apps(None).await?;
    Ok(AppList { apps: apps.into_iter().map(synckit_auth::apps::to_wire).collect() })
}

/// Gives the app a new API key; the one before stops working at once.
pub async fn rotate_key(accounts: &dyn AccountStore, app_id: Uuid) -> anyhow::Result<RotatedApiKey> {
    synckit_auth::apps::rotate_api_key(accounts, app_id).await?.with_context(|| format!("there is no app {app_id}"))
}

/// The monthly price of `storage_gb` GB at `burst` (Simple mode's 5 when `None`).
pub fn quote(storage_gb: &str, burst: Option<u32>) -> anyhow::Result<Quote> {
    Ok(Quote::of(&Plan::from_gb(storage_gb, burst)?))
}

/// Puts the app on the plan at once, whatever it lowers, and answers the app's plan.
pub async fn set_plan(
    accounts: &dyn AccountStore,
    app_id: Uuid,
    storage_gb: &str,
    burst: Option<u32>,
) -> anyhow::Result<AppPlan> {
    let plan = Plan::from_gb(storage_gb, burst)?;
    change_plan(accounts, app_id, plan, Change::AtOnce).await?.with_context(|| format!("there is no app {app_id}"))
}

/// What `synckit-server admin usage` prints: the app's usage this billing period against its limits.
#[derive(Debug, Serialize)]
pub struct Usage {
    pub period: String,
    pub stored_bytes: u64,
    pub transfer_bytes: u64,
    /// `null` while the app has no plan.
    pub storage_limit_bytes: Option<u64>,
    pub transfer_limit_bytes: Option<u64>,
}

/// The app's usage this billing period.
pub async fn usage(accounts: &dyn AccountStore, usage: &dyn UsageStore, app_id: Uuid) -> anyhow::Result<Usage> {
    let usage = synckit_auth::usage::usage_of(accounts, usage, app_id)
        .await?
        .with_context(|| format!("there is no app {app_id}"))?;
    Ok(Usage {
        period: usage.period,
        stored_bytes: usage.stored_bytes,
        transfer_bytes: usage.transfer_bytes,
        storage_limit_bytes: usage.storage_limit_bytes,
        transfer_limit_bytes: usage.transfer_limit_bytes,
    })
}
