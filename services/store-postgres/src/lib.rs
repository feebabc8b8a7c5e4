//! SyncKit storage on PostgreSQL, the production engine.
//!
//! [`PgStore`] implements every port over a deadpool connection pool, and keeps a second, small pool for the token
//! check every authenticated request makes, so that no load on the first (pushes waiting on a stream's lock, long
//! pulls) can turn every other request away at the door. The schema lives in `migrations/postgres`
//! at the top of the repository and is embedded here; [`PgStore::migrate`] applies it with refinery under an
//! advisory lock, so instances starting together do not race.
//!
//! Every call of a port is a `debug` span named `postgres <call>`, exported as a client span when the server exports
//! traces.
//!
//! # Layout
//! - `changelog.rs`: the push and pull paths, the ones that must be fast.
//! - `accounts.rs`: users, apps, devices, keys, secrets.
//! - `blobs.rs`: the blob catalogue.
//! - `usage.rs`: stored and transferred bytes per stream and day.
//! - `plans.rs` (tests): the hot statements' cached plans read a batch, never the whole stream.
//! - `error.rs`: which engine failures mean "unavailable, retry" and which are bugs.
//! - `tls.rs`: TLS with rustls, as the URL's `sslmode` and `sslrootcert` ask.

mod accounts;
mod blobs;
mod changelog;
mod error;
#[cfg(test)]
mod plans;
mod tls;
mod usage;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolConfig, RecyclingMethod, Runtime, Timeouts};
use synckit_store::StoreError;

use error::db_error;

refinery::embed_migrations!("../../migrations/postgres");

/// Arbitrary but fixed: the advisory lock instances take while migrating.
const MIGRATION_LOCK: i64 = 0x0053_594e_434b_4954; // "SYNCKIT" in ASCII

/// Connection settings for [`PgStore::connect`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections kept at most, for everything but token checks.
    pub max_connections: usize,
    /// Connections kept at most for token checks alone, on top of `max_connections`.
    pub token_connections: usize,
    /// How long a request waits for a connection (or for a new one to be made) before it is answered 503.
    pub acquire_timeout: Duration,
    /// How long a push waits for its stream's head-row lock (`lock_timeout`) before it gives up as unavailable.
    pub lock_timeout: Duration,
    /// How long one statement of a push may run (`statement_timeout`).
    pub statement_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            token_connections: 2,
            acquire_timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(20),
        }
    }
}

/// The Postgres adapter: a cheap handle over the connection pools.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// Token checks only: one primary-key read each, so a couple of connections serve many requests, and they never
    /// wait behind whatever holds the main pool.
    token_pool: Pool,
    /// `SET LOCAL lock_timeout …; SET LOCAL statement_timeout …`, the first statement of every push transaction.
    push_limits: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (main, token) = (self.pool.status(), self.token_pool.status());
        f.debug_struct("PgStore")
            .field("size", &main.size)
            .field("available", &main.available)
            .field("token_pool_size", &token.size)
            .finish()
    }
}

impl PgStore {
    /// Builds the pool. Connections are made on demand, so this succeeds while the database is down; requests made
    /// then fail as unavailable, and the pool recovers by itself when the database returns. The URL's `sslmode`
    /// and `sslrootcert` say how connections use TLS (see `tls.rs`); a CA file that cannot be read fails here.
    pub fn connect(url: &str, options: &PgOptions) -> Result<Self, StoreError> {
        let (url, tls) = tls::split(url)?;
        let mut pg: tokio_postgres::Config = url.parse().map_err(StoreError::other)?;
        pg.ssl_mode(tls.mode);
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(options.acquire_timeout);
        }
        let timeouts = Timeouts {
            wait: Some(options.acquire_timeout),
            create: Some(options.acquire_timeout),
            recycle: Some(options.acquire_timeout),
        };
        let pool = |max_size: usize| {
            let manager = Manager::from_config(
                pg.clone(),
                tls.connector()?,
                ManagerConfig { recycling_method: RecyclingMethod::Fast },
            );
            Pool::builder(manager)
                .config(PoolConfig { max_size: max_size.max(1), timeouts, ..Default::default() })
                .runtime(Runtime::Tokio1)
                .build()
                .map_err(StoreError::other)
        };
        let push_limits = format!(
            "SET LOCAL lock_timeout = {}; SET LOCAL statement_timeout = {}",
            options.lock_timeout.as_millis().max(1),
            options.statement_timeout.as_millis().max(1)
        );
        Ok(Self { pool: pool(options.max_connections)?, token_pool: pool(options.token_connections)?, push_limits })
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await.map_err(db_error)?;
        let report = migrations::runner().run_async(&mut **client).await;
        // Unlock even when migrating failed; the connection going away would release it too.
        client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await.map_err(db_error)?;
        let report = report.map_err(StoreError::other)?;
        for m in report.applied_migrations() {
            tracing::info!(migration = %m, "applied migration");
        }
        Ok(())
    }

    /// The two pools' sizes and waiters right now, for metrics: `("main", …)` and `("token", …)`.
    pub fn pool_status(&self) -> [(&'static str, deadpool_postgres::Status); 2] {
        [("main", self.pool.status()), ("token", self.token_pool.status())]
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(error::pool_error)
    }

    /// A connection of the token-check pool.
    async fn token_client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.token_pool.get().await.map_err(error::pool_error)
    }
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).expect("stored sequence numbers and versions are never negative")
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
