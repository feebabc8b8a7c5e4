//! SyncKit storage on one SQLite file: the embedded default for a single box.
//!
//! [`SqliteStore`] implements every port. SQLite allows one writer at a time, so the store keeps one connection for
//! writes and one for reads (WAL mode lets reads proceed while a write is under way), each behind a mutex and used
//! from tokio's blocking pool so the async runtime never waits on disk. A push takes the write lock for its whole
//! transaction, which gives the same ordering guarantees as the Postgres head-row lock (for every stream at once,
//! which a single box can afford).
//!
//! # Layout
//! - `changelog.rs`, `accounts.rs`, `blobs.rs`: the ports.
//! - `plans.rs` (tests): every hot statement searches an index, on an empty database and on a full one.
//! - this file: opening, pragmas, migrations, and the blocking-call helper.

mod accounts;
mod blobs;
mod changelog;
#[cfg(test)]
mod plans;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, ErrorCode};
use synckit_store::StoreError;
use time::OffsetDateTime;

refinery::embed_migrations!("../../migrations/sqlite");

/// The SQLite adapter: a cheap handle over a writer and a reader connection.
#[derive(Clone)]
pub struct SqliteStore {
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut writer = connect(path)?;
        let report = migrations::runner().run(&mut writer).map_err(StoreError::other)?;
        for m in report.applied_migrations() {
            tracing::info!(migration = %m, "applied migration");
        }
        let reader = connect(path)?;
        Ok(Self { writer: Arc::new(Mutex::new(writer)), reader: Arc::new(Mutex::new(reader)) })
    }

    async fn with_writer<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        call(self.writer.clone(), f).await
    }

    async fn with_reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        call(self.reader.clone(), f).await
    }
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(sqlite_error)?;
    // WAL: readers do not block the writer. synchronous=FULL: an acknowledged push survives a power cut.
    conn.pragma_update(None, "journal_mode", "WAL").map_err(sqlite_error)?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(sqlite_error)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(sqlite_error)?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sqlite_error)?;
    Ok(conn)
}

async fn call<T: Send + 'static>(
    conn: Arc<Mutex<Connection>>,
    f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(move || {
        // A panic inside a closure poisons the mutex but leaves SQLite consistent (the transaction rolled back).
        let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut conn)
    })
    .await
    .map_err(StoreError::other)?
    .map_err(sqlite_error)
}

fn sqlite_error(err: rusqlite::Error) -> StoreError {
    match err.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::AlreadyExists,
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::DiskFull) => StoreError::unavailable(err),
        _ => StoreError::other(err),
    }
}

fn uuid_at(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<uuid::Uuid> {
    row.get::<_, [u8; 16]>(idx).map(uuid::Uuid::from_bytes)
}

fn now_micros() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64
}

fn from_micros(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).expect("stored timestamps are in range")
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).expect("stored sequence numbers and versions are never negative")
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
