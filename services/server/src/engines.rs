//! The storage engines a deployment runs on, chosen by the settings.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use synckit_bus::{CommitBus, InProcessBus, NatsBus};
use synckit_store::{AccountStore, ChangelogStore, StoreError};
use synckit_store_postgres::{PgOptions, PgStore};
use synckit_store_sqlite::SqliteStore;

use crate::Settings;

/// The storage ports, on Postgres or on the embedded SQLite file, and the commit bus, NATS or in process.
#[derive(Clone, Debug)]
pub struct Engines {
    pub changelog: Arc<dyn ChangelogStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub bus: Arc<dyn CommitBus>,
}

/// Deployment-wide secrets, the same in every instance.
pub(crate) struct Secrets {
    pub token_key: Vec<u8>,
    pub prelogin_key: [u8; 32],
}

impl Engines {
    /// Opens the engines and applies pending migrations.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        let bus: Arc<dyn CommitBus> = match &settings.nats_url {
            Some(url) => {
                tracing::info!(%url, "commit bus: nats");
                Arc::new(NatsBus::connect(url).await.context("SYNCKIT_NATS_URL")?)
            }
            None => Arc::new(InProcessBus::default()),
        };
        let (changelog, accounts) = Self::open_stores(settings).await?;
        Ok(Self { changelog, accounts, bus })
    }

    async fn open_stores(settings: &Settings) -> anyhow::Result<(Arc<dyn ChangelogStore>, Arc<dyn AccountStore>)> {
        match &settings.database_url {
            Some(url) => {
                let options = PgOptions { max_connections: settings.db_max_connections, ..PgOptions::default() };
                let store = Arc::new(PgStore::connect(url.expose_secret(), &options).context("SYNCKIT_DATABASE_URL")?);
                migrate_with_retry(&store, Duration::from_secs(settings.db_startup_retry_secs)).await?;
                tracing::info!("storage: postgres");
                Ok((store.clone(), store))
            }
            None => {
                let dir = &settings.data_dir;
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating the data directory {}", dir.display()))?;
                let path = dir.join("synckit.db");
                let store = Arc::new(
                    SqliteStore::open(&path).with_context(|| format!("opening the database {}", path.display()))?,
                );
                tracing::info!(path = %path.display(), "storage: embedded sqlite");
                Ok((store.clone(), store))
            }
        }
    }

    /// The deployment's secrets: stored in the database on first use, so every instance agrees on them.
    pub(crate) async fn secrets(&self, settings: &Settings) -> anyhow::Result<Secrets> {
        let token_key = match &settings.token_secret {
            Some(secret) => {
                let secret = secret.expose_secret().as_bytes().to_vec();
                anyhow::ensure!(secret.len() >= 32, "SYNCKIT_TOKEN_SECRET must be at least 32 bytes");
                secret
            }
            None => self.accounts.secret("token-signing-key", &random_32()).await?,
        };
        let prelogin_key = self.accounts.secret("prelogin-salt-key", &random_32()).await?;
        let prelogin_key =
            prelogin_key.try_into().map_err(|_| anyhow::anyhow!("stored prelogin key is not 32 bytes"))?;
        Ok(Secrets { token_key, prelogin_key })
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

fn random_32() -> [u8; 32] {
    let mut bytes = [0; 32];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    bytes
}
