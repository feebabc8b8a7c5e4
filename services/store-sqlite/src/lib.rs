//! SyncKit storage on one SQLite file: the embedded default for a single box.
//!
//! [`SqliteStore`] implements every port. SQLite allows one writer at a time, so the store keeps one connection for
//! writes and one for reads (WAL mode lets reads proceed while a write is under way), each behind a mutex and used
//! from tokio's blocking pool so the async runtime never waits on disk. A push takes the write lock for its whole
//! transaction, which gives the same ordering guarantees as the Postgres head-row lock (for every stream at once,
//! which a single box can afford).
//!
//! Calls wait for a connection in an async queue of bounded length ([`SqliteOptions::max_queued`]); past it they are
//! answered unavailable (503, Retry-After) at once. Only the call holding a connection occupies a blocking thread,
//! so a burst of requests cannot pile up in tokio's blocking pool. A call whose caller has gone (its request timed
//! out and the future was dropped) never touches the database: it is dropped while it waits, and a call already
//! handed to its thread checks before it starts, and a push again once it holds SQLite's write lock.
//!
//! # Layout
//! - `changelog.rs`, `accounts.rs`, `blobs.rs`, `usage.rs`: the ports.
//! - `plans.rs` (tests): every hot statement searches an index, on an empty database and on a full one.
//! - this file: opening, pragmas, migrations, and the blocking-call helper.

mod accounts;
mod blobs;
mod changelog;
#[cfg(test)]
mod plans;
mod usage;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::{Connection, ErrorCode};
use synckit_store::StoreError;
use time::OffsetDateTime;
use tokio::sync::{Mutex, Semaphore};

refinery::embed_migrations!("../../migrations/sqlite");

/// Settings for [`SqliteStore::open_with`].
#[derive(Debug, Clone, Copy)]
pub struct SqliteOptions {
    /// Calls waiting for the writer, and separately for the reader, at most (the one running included). Past it a
    /// call fails at once as unavailable, rather than join a queue that only grows.
    pub max_queued: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self { max_queued: 128 }
    }
}

/// The SQLite adapter: a cheap handle over a writer and a reader connection.
#[derive(Clone)]
pub struct SqliteStore {
    writer: Slot,
    reader: Slot,
}

/// One connection and the calls queued for it.
#[derive(Clone)]
struct Slot {
    /// A fair (first come, first served) async lock: waiting for it costs a task, not a thread.
    conn: Arc<Mutex<Connection>>,
    /// One permit per call waiting or running: `max_queued` of them.
    queue: Arc<Semaphore>,
    max_queued: usize,
    /// `writer` or `reader`, for the error a full queue gives.
    name: &'static str,
}

impl Slot {
    fn new(conn: Connection, max_queued: usize, name: &'static str) -> Self {
        let max_queued = max_queued.max(1);
        Self { conn: Arc::new(Mutex::new(conn)), queue: Arc::new(Semaphore::new(max_queued)), max_queued, name }
    }
}

/// Whether the caller of a database call is still waiting for its answer. A call handed to a blocking thread runs
/// even when the future that spawned it is dropped (a request answered 408 by its deadline): it checks this first.
#[derive(Clone, Default)]
pub(crate) struct Caller(Arc<AtomicBool>);

impl Caller {
    /// An error (SQLite's "interrupted", which reads as unavailable) once the caller has gone.
    pub(crate) fn check(&self) -> rusqlite::Result<()> {
        if self.0.load(Ordering::Acquire) {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERRUPT),
                Some("the caller gave up before the call ran".into()),
            ));
        }
        Ok(())
    }
}

/// Marks the caller gone when dropped: held by the future that waits for the call.
struct Gone(Caller);

impl Drop for Gone {
    fn drop(&mut self) {
        (self.0).0.store(true, Ordering::Release);
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations, with default options.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, &SqliteOptions::default())
    }

    /// Opens (creating if needed) the database file and applies pending migrations.
    pub fn open_with(path: &Path, options: &SqliteOptions) -> Result<Self, StoreError> {
        let mut writer = connect(path)?;
        let report = migrations::runner().run(&mut writer).map_err(StoreError::other)?;
        for m in report.applied_migrations() {
            tracing::info!(migration = %m, "applied migration");
        }
        let reader = connect(path)?;
        Ok(Self {
            writer: Slot::new(writer, options.max_queued, "writer"),
            reader: Slot::new(reader, options.max_queued, "reader"),
        })
    }

    async fn with_writer<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        call(&self.writer, |conn, _| f(conn)).await
    }

    /// Like `with_writer`, for a call that checks again that its caller still waits once it holds the write lock.
    async fn with_writer_for<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &Caller) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        call(&self.writer, f).await
    }

    async fn with_reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        call(&self.reader, |conn, _| f(conn)).await
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

/// A slot's queue is full: how many wait, and for which connection.
#[derive(Debug)]
struct QueueFull(usize, &'static str);

impl std::fmt::Display for QueueFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} calls already wait for the database's {}", self.0, self.1)
    }
}

impl std::error::Error for QueueFull {}

/// Runs `f` on the slot's connection on a blocking thread, once the calls queued before it are done.
async fn call<T: Send + 'static>(
    slot: &Slot,
    f: impl FnOnce(&mut Connection, &Caller) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, StoreError> {
    let Ok(_place) = slot.queue.clone().try_acquire_owned() else {
        return Err(StoreError::unavailable(QueueFull(slot.max_queued, slot.name)));
    };
    // Dropped while waiting here, a call never reaches a thread.
    let mut conn = slot.conn.clone().lock_owned().await;
    let caller = Caller::default();
    let _gone = Gone(caller.clone());
    tokio::task::spawn_blocking(move || {
        caller.check()?;
        // A panic inside `f` leaves SQLite consistent: its transaction rolls back as it unwinds.
        f(&mut conn, &caller)
    })
    .await
    .map_err(StoreError::other)?
    .map_err(sqlite_error)
}

fn sqlite_error(err: rusqlite::Error) -> StoreError {
    match err.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::AlreadyExists,
        Some(
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::DiskFull | ErrorCode::OperationInterrupted,
        ) => StoreError::unavailable(err),
        _ => StoreError::other(err),
    }
}

fn uuid_at(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<uuid::Uuid> {
    row.get::<_, [u8; 16]>(idx).map(uuid::Uuid::from_bytes)
}

fn now_micros() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64
}

fn to_micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).expect("a time of this era fits in 64 bits of microseconds")
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
