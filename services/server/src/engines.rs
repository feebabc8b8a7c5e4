//! The storage engines a deployment runs on, chosen by the settings.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use synckit_blob::{LocalStore, ObjectStore, S3Store};
use synckit_bus::{CommitBus, InProcessBus, NatsBus};
use synckit_store::{AccountStore, BlobCatalog, ChangelogStore, StoreError, Stores, UsageStore};
use synckit_store_postgres::{PgOptions, PgStore};
use synckit_store_sqlite::{SqliteOptions, SqliteStore};

use crate::Settings;
use crate::secrets::{self, Secret};

/// The storage ports, on Postgres or on the embedded SQLite file; the commit bus, NATS or in process; and the object
/// store, S3 or a local directory.
#[derive(Clone, Debug)]
pub struct Engines {
    pub changelog: Arc<dyn ChangelogStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub blobs: Arc<dyn BlobCatalog>,
    pub usage: Arc<dyn UsageStore>,
    pub bus: Arc<dyn CommitBus>,
    pub objects: Arc<dyn ObjectStore>,
}

impl Engines {
    /// Opens the engines and applies pending migrations. The embedded blob store needs its URL secret (see
    /// [`crate::secrets`]).
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        let bus: Arc<dyn CommitBus> = match &settings.nats_url {
            Some(url) => {
                tracing::info!(url = %synckit_bus::without_credentials(url), "commit bus: nats");
                Arc::new(NatsBus::connect(url).await.context("SYNCKIT_NATS_URL")?)
            }
            None => Arc::new(InProcessBus::default()),
        };
        let Stores { changelog, accounts, blobs, usage } = Self::open_storage(settings).await?;
        let objects = Self::open_objects(settings, &*accounts).await?;
        Ok(Self { changelog, accounts, blobs, usage, bus, objects })
    }

    async fn open_objects(settings: &Settings, accounts: &dyn AccountStore) -> anyhow::Result<Arc<dyn ObjectStore>> {
        if let Some(s3) = &settings.s3 {
            tracing::info!(endpoint = %s3.endpoint, bucket = %s3.bucket, "blob store: s3");
            return Ok(Arc::new(S3Store::new(s3)));
        }
        let dir = settings.data_dir.join("blobs");
        let keys = secrets::keys(Secret::Url, settings, accounts).await?;
        let store =
            LocalStore::open(&dir, keys).with_context(|| format!("opening the blob directory {}", dir.display()))?;
        tracing::info!(path = %dir.display(), "blob store: local directory");
        Ok(Arc::new(store))
    }

    /// Opens the database alone and applies pending migrations: all that `migrate` and the admin commands need, so
    /// they run without the signing secrets.
    pub async fn open_storage(settings: &Settings) -> anyhow::Result<Stores> {
        match &settings.database.url {
            Some(url) => {
                let db = &settings.database;
                let options = PgOptions {
                    max_connections: db.max_connections,
                    token_connections: db.token_connections,
                    lock_timeout: db.lock_timeout,
                    statement_timeout: db.statement_timeout,
                    ..PgOptions::default()
                };
                let store = Arc::new(PgStore::connect(url.expose_secret(), &options).context("SYNCKIT_DATABASE_URL")?);
                migrate_with_retry(&store, settings.database.startup_retry).await?;
                crate::telemetry::observe_pools(&store);
                tracing::info!("storage: postgres");
                Ok(Stores::all_on(store))
            }
            None => {
                let dir = &settings.data_dir;
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating the data directory {}", dir.display()))?;
                let path = dir.join("synckit.db");
                let options = SqliteOptions { max_queued: settings.database.max_queued };
                let store = Arc::new(
                    SqliteStore::open_with(&path, &options)
                        .with_context(|| format!("opening the database {}", path.display()))?,
                );
                tracing::info!(path = %path.display(), "storage: embedded sqlite");
                Ok(Stores::all_on(store))
            }
        }
    }
}

async fn migrate_with_retry(store: &PgStore, retry_for: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + retry_for;
    loop {
        match store.migrate().await {
            Ok(()) => return Ok(()),
            Err(StoreError::Unavailable(e)) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "database not answering yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e).context("migrating the database"),
        }
    }
}
