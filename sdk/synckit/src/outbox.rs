//! The device's outbox: changes the app made, encrypted and waiting for the server.
//!
//! [`SyncKitClient::enqueue`](crate::SyncKitClient::enqueue) seals each change under its change id and appends it
//! here before it returns; [`SyncKitClient::sync`](crate::SyncKitClient::sync) (and live sync) pushes the oldest
//! entries and removes them only once the server acknowledged them. A change is encrypted once, so every attempt to
//! push it sends the same bytes under the same id, and the server stores it once however often that happens.
//!
//! - [`SqliteOutboxStore`]: the default, a SQLite database in the SDK's data directory (`outbox.sqlite3`), written
//!   ahead (WAL) with `synchronous=FULL`: an enqueue that returned survives a crash of the app or of the machine.
//! - [`MemoryOutboxStore`]: for tests, and for apps that keep no changes across restarts.
//!
//! Entries are kept per queue, one per server, app and user, so two accounts on one profile never mix.
//!
//! ```
//! use std::sync::Arc;
//! use synckit::{SyncKitConfig, outbox::MemoryOutboxStore};
//! let config = SyncKitConfig::new("https://sync.example.com", "sk_…").outbox_store(Arc::new(MemoryOutboxStore::default()));
//! ```

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::error::{Error, ErrorKind, Result};

/// One change waiting in the outbox: its place in line, its change id and its encrypted payload.
///
/// ```
/// use synckit::outbox::{MemoryOutboxStore, OutboxStore};
/// let store = MemoryOutboxStore::default();
/// let id = uuid::Uuid::now_v7();
/// store.append("laptop", &[(id, b"sealed".to_vec())]).unwrap();
/// let entries = store.oldest("laptop", 10, 1 << 20).unwrap();
/// assert_eq!((entries[0].change_id, entries[0].payload.as_slice()), (id, &b"sealed"[..]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Its place in line: larger for every entry appended later, never reused, whatever was removed.
    pub seq: u64,
    /// The change id it is pushed under.
    pub change_id: Uuid,
    /// The change, sealed as [`Keys::seal_entry`](crate::crypto::Keys::seal_entry) seals it.
    pub payload: Vec<u8>,
}

/// Encrypted changes by queue (one per server, app and user), oldest first. Implement it to keep the outbox
/// with the app's own data and pass it to [`SyncKitConfig::outbox_store`](crate::SyncKitConfig::outbox_store).
///
/// An implementation must keep an append whole or not at all, keep what it acknowledged through a crash if the app
/// relies on that, and hand entries back in the order they were appended.
///
/// ```
/// use std::sync::Arc;
/// use synckit::outbox::{OutboxStore, SqliteOutboxStore};
/// let dir = tempfile::tempdir().unwrap();
/// let store: Arc<dyn OutboxStore> = Arc::new(SqliteOutboxStore::new(dir.path().join("outbox.sqlite3")));
/// let config = synckit::SyncKitConfig::new("https://sync.example.com", "sk_…").outbox_store(store);
/// ```
pub trait OutboxStore: Send + Sync + std::fmt::Debug {
    /// Appends `entries` to `queue` after everything already there, all of them or none.
    ///
    /// ```
    /// use synckit::outbox::{MemoryOutboxStore, OutboxStore};
    /// let store = MemoryOutboxStore::default();
    /// store.append("laptop", &[(uuid::Uuid::now_v7(), vec![1]), (uuid::Uuid::now_v7(), vec![2])]).unwrap();
    /// assert_eq!(store.len("laptop").unwrap(), 2);
    /// ```
    fn append(&self, queue: &str, entries: &[(Uuid, Vec<u8>)]) -> Result<()>;

    /// The oldest entries of `queue`, in order: at most `max_entries`, and no more payload bytes than `max_bytes`
    /// (but at least one entry whatever its size, so a large entry never blocks the queue).
    ///
    /// ```
    /// use synckit::outbox::{MemoryOutboxStore, OutboxStore};
    /// let store = MemoryOutboxStore::default();
    /// let entries: Vec<_> = (0..5).map(|_| (uuid::Uuid::now_v7(), vec![0; 100])).collect();
    /// store.append("laptop", &entries).unwrap();
    /// assert_eq!(store.oldest("laptop", 3, 1 << 20).unwrap().len(), 3);
    /// assert_eq!(store.oldest("laptop", 10, 250).unwrap().len(), 2);
    /// assert_eq!(store.oldest("laptop", 10, 1).unwrap().len(), 1);
    /// ```
    fn oldest(&self, queue: &str, max_entries: usize, max_bytes: usize) -> Result<Vec<OutboxEntry>>;

    /// Removes the entries of `queue` up to and including `seq` (the server acknowledged them). Removing what is
    /// already gone is not an error. Returns how many were removed.
    ///
    /// ```
    /// use synckit::outbox::{MemoryOutboxStore, OutboxStore};
    /// let store = MemoryOutboxStore::default();
    /// store.append("laptop", &[(uuid::Uuid::now_v7(), vec![1]), (uuid::Uuid::now_v7(), vec![2])]).unwrap();
    /// let first = store.oldest("laptop", 1, 1 << 20).unwrap()[0].seq;
    /// assert_eq!(store.remove_through("laptop", first).unwrap(), 1);
    /// assert_eq!(store.remove_through("laptop", first).unwrap(), 0);
    /// assert_eq!(store.len("laptop").unwrap(), 1);
    /// ```
    fn remove_through(&self, queue: &str, seq: u64) -> Result<u64>;

    /// How many entries wait in `queue`.
    ///
    /// ```
    /// use synckit::outbox::{MemoryOutboxStore, OutboxStore};
    /// assert_eq!(MemoryOutboxStore::default().len("laptop").unwrap(), 0);
    /// ```
    fn len(&self, queue: &str) -> Result<u64>;
}

/// The outbox in memory: lost when the process ends.
///
/// ```
/// use synckit::outbox::{MemoryOutboxStore, OutboxStore};
/// let store = MemoryOutboxStore::default();
/// store.append("laptop", &[(uuid::Uuid::now_v7(), vec![1])]).unwrap();
/// assert_eq!(store.len("phone").unwrap(), 0, "queues are apart");
/// ```
#[derive(Debug, Default)]
pub struct MemoryOutboxStore {
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    last_seq: u64,
    queues: HashMap<String, VecDeque<OutboxEntry>>,
}

impl OutboxStore for MemoryOutboxStore {
    fn append(&self, queue: &str, entries: &[(Uuid, Vec<u8>)]) -> Result<()> {
        let mut state = self.state.lock().expect("not poisoned");
        let mut seq = state.last_seq;
        let appended: Vec<OutboxEntry> = entries
            .iter()
            .map(|(change_id, payload)| {
                seq += 1;
                OutboxEntry { seq, change_id: *change_id, payload: payload.clone() }
            })
            .collect();
        state.last_seq = seq;
        state.queues.entry(queue.to_owned()).or_default().extend(appended);
        Ok(())
    }

    fn oldest(&self, queue: &str, max_entries: usize, max_bytes: usize) -> Result<Vec<OutboxEntry>> {
        let state = self.state.lock().expect("not poisoned");
        let Some(entries) = state.queues.get(queue) else { return Ok(Vec::new()) };
        let mut bytes = 0usize;
        let mut taken = Vec::new();
        for entry in entries.iter().take(max_entries) {
            bytes += entry.payload.len();
            if !taken.is_empty() && bytes > max_bytes {
                break;
            }
            taken.push(entry.clone());
        }
        Ok(taken)
    }

    fn remove_through(&self, queue: &str, seq: u64) -> Result<u64> {
        let mut state = self.state.lock().expect("not poisoned");
        let Some(entries) = state.queues.get_mut(queue) else { return Ok(0) };
        let mut removed = 0;
        while entries.front().is_some_and(|e| e.seq <= seq) {
            entries.pop_front();
            removed += 1;
        }
        Ok(removed)
    }

    fn len(&self, queue: &str) -> Result<u64> {
        Ok(self.state.lock().expect("not poisoned").queues.get(queue).map_or(0, |q| q.len() as u64))
    }
}

/// The outbox in a SQLite database file, opened on first use (with its directory). Written ahead (WAL) with
/// `synchronous=FULL`: each append is one transaction, synced to disk before it returns, so an enqueue that
/// returned survives a crash or power loss, and one that did not return left nothing or everything. Sequence
/// numbers come from `AUTOINCREMENT`, so they are never reused after removals. Several processes may share the file.
///
/// ```
/// use synckit::outbox::{OutboxStore, SqliteOutboxStore};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("outbox.sqlite3");
/// SqliteOutboxStore::new(&path).append("laptop", &[(uuid::Uuid::now_v7(), vec![1])]).unwrap();
/// assert_eq!(SqliteOutboxStore::new(&path).len("laptop").unwrap(), 1, "it is still there after a restart");
/// ```
#[derive(Debug)]
pub struct SqliteOutboxStore {
    path: PathBuf,
    conn: Mutex<Option<Connection>>,
}

const SCHEMA: &str = "
    PRAGMA synchronous = FULL;
    PRAGMA busy_timeout = 5000;
    CREATE TABLE IF NOT EXISTS outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        change_id BLOB NOT NULL,
        payload BLOB NOT NULL
    );
    CREATE INDEX IF NOT EXISTS outbox_by_queue ON outbox (queue, seq);
";

impl SqliteOutboxStore {
    /// A store in the database file at `path` (created on first use, with its directory).
    ///
    /// ```
    /// use synckit::outbox::{OutboxStore, SqliteOutboxStore};
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = SqliteOutboxStore::new(dir.path().join("sync/outbox.sqlite3"));
    /// assert_eq!(store.len("laptop").unwrap(), 0);
    /// assert!(dir.path().join("sync/outbox.sqlite3").is_file());
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), conn: Mutex::new(None) }
    }

    /// The database file.
    ///
    /// ```
    /// let store = synckit::outbox::SqliteOutboxStore::new("/var/lib/myapp/outbox.sqlite3");
    /// assert_eq!(store.path(), std::path::Path::new("/var/lib/myapp/outbox.sqlite3"));
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(&self, what: &str, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if conn.is_none() {
            *conn = Some(self.open()?);
        }
        f(conn.as_mut().expect("opened above")).map_err(|e| self.error(what, e))
    }

    fn open(&self) -> Result<Connection> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.error("creating its directory", e))?;
        }
        let conn = Connection::open(&self.path).map_err(|e| self.error("opening it", e))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(|e| self.error("switching it to WAL", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::new(
                ErrorKind::Storage,
                format!("the outbox {} cannot be written ahead (journal mode {mode})", self.path.display()),
            ));
        }
        conn.execute_batch(SCHEMA).map_err(|e| self.error("creating its table", e))?;
        Ok(conn)
    }

    fn error(&self, what: &str, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        Error::new(ErrorKind::Storage, format!("the outbox {}: {what} failed", self.path.display())).with_source(e)
    }
}

impl OutboxStore for SqliteOutboxStore {
    fn append(&self, queue: &str, entries: &[(Uuid, Vec<u8>)]) -> Result<()> {
        self.with("appending", |conn| {
            let tx = conn.transaction()?;
            {
                let mut insert =
                    tx.prepare_cached("INSERT INTO outbox (queue, change_id, payload) VALUES (?1, ?2, ?3)")?;
                for (change_id, payload) in entries {
                    insert.execute(params![queue, change_id.as_bytes().as_slice(), payload])?;
                }
            }
            tx.commit()
        })
    }

    fn oldest(&self, queue: &str, max_entries: usize, max_bytes: usize) -> Result<Vec<OutboxEntry>> {
        self.with("reading", |conn| {
            let mut select = conn
                .prepare_cached("SELECT seq, change_id, payload FROM outbox WHERE queue = ?1 ORDER BY seq LIMIT ?2")?;
            let limit = i64::try_from(max_entries).unwrap_or(i64::MAX);
            let mut rows = select.query(params![queue, limit])?;
            let (mut taken, mut bytes) = (Vec::new(), 0usize);
            while let Some(row) = rows.next()? {
                let payload: Vec<u8> = row.get(2)?;
                bytes += payload.len();
                if !taken.is_empty() && bytes > max_bytes {
                    break;
                }
                let id: Vec<u8> = row.get(1)?;
                let change_id = Uuid::from_slice(&id).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Blob, Box::new(e))
                })?;
                taken.push(OutboxEntry { seq: row.get::<_, i64>(0)? as u64, change_id, payload });
            }
            Ok(taken)
        })
    }

    fn remove_through(&self, queue: &str, seq: u64) -> Result<u64> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        self.with("removing acknowledged entries", |conn| {
            conn.prepare_cached("DELETE FROM outbox WHERE queue = ?1 AND seq <= ?2")?
                .execute(params![queue, seq])
                .map(|n| n as u64)
        })
    }

    fn len(&self, queue: &str) -> Result<u64> {
        self.with("counting", |conn| {
            conn.prepare_cached("SELECT count(*) FROM outbox WHERE queue = ?1")?
                .query_row(params![queue], |row| row.get::<_, i64>(0))
                .optional()
                .map(|n| n.unwrap_or(0) as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    //! One conformance suite, run against each store.

    use std::sync::Arc;

    use super::*;

    fn ids(entries: &[OutboxEntry]) -> Vec<Uuid> {
        entries.iter().map(|e| e.change_id).collect()
    }

    fn changes(n: usize, size: usize) -> Vec<(Uuid, Vec<u8>)> {
        (0..n).map(|i| (Uuid::now_v7(), vec![i as u8; size])).collect()
    }

    fn entries_come_back_in_order_with_their_bytes(store: &dyn OutboxStore) {
        let first = changes(3, 10);
        let second = changes(2, 20);
        store.append("q", &first).unwrap();
        store.append("q", &second).unwrap();
        let all = store.oldest("q", 100, usize::MAX).unwrap();
        let expected: Vec<(Uuid, Vec<u8>)> = [first, second].concat();
        assert_eq!(all.iter().map(|e| (e.change_id, e.payload.clone())).collect::<Vec<_>>(), expected);
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "seqs increase: {all:?}");
        assert_eq!(store.len("q").unwrap(), 5);
    }

    fn batches_are_bounded_by_count_and_bytes_but_never_empty(store: &dyn OutboxStore) {
        store.append("q", &changes(10, 100)).unwrap();
        assert_eq!(store.oldest("q", 4, usize::MAX).unwrap().len(), 4);
        assert_eq!(store.oldest("q", 100, 350).unwrap().len(), 3, "350 bytes hold three entries of 100");
        assert_eq!(store.oldest("q", 100, 300).unwrap().len(), 3, "the limit is inclusive");
        assert_eq!(store.oldest("q", 100, 10).unwrap().len(), 1, "an entry larger than the limit still goes");
        assert_eq!(store.oldest("empty", 100, 100).unwrap(), []);
    }

    fn removal_takes_only_what_was_acknowledged(store: &dyn OutboxStore) {
        let appended = changes(5, 1);
        store.append("q", &appended).unwrap();
        let batch = store.oldest("q", 2, usize::MAX).unwrap();
        // Appended while the batch was on its way: not acknowledged, so it stays.
        let later = changes(1, 1);
        store.append("q", &later).unwrap();
        assert_eq!(store.remove_through("q", batch[1].seq).unwrap(), 2);
        assert_eq!(store.remove_through("q", batch[1].seq).unwrap(), 0, "a repeat removes nothing");
        let rest = store.oldest("q", 100, usize::MAX).unwrap();
        assert_eq!(ids(&rest), [appended[2].0, appended[3].0, appended[4].0, later[0].0]);
        assert_eq!(store.remove_through("q", rest[3].seq).unwrap(), 4);
        assert_eq!(store.len("q").unwrap(), 0);
        // Seqs are never reused: what comes next sorts after everything removed.
        store.append("q", &changes(1, 1)).unwrap();
        assert!(store.oldest("q", 1, usize::MAX).unwrap()[0].seq > rest[3].seq);
    }

    fn queues_do_not_mix(store: &dyn OutboxStore) {
        let (a, b) = (changes(2, 1), changes(3, 1));
        store.append("server|app|alice|laptop", &a).unwrap();
        store.append("server|app|bob|laptop", &b).unwrap();
        let alice = store.oldest("server|app|alice|laptop", 100, usize::MAX).unwrap();
        assert_eq!(ids(&alice), [a[0].0, a[1].0]);
        // Removing through a seq of one queue leaves the other's entries, even older-numbered ones, alone.
        let bob = store.oldest("server|app|bob|laptop", 100, usize::MAX).unwrap();
        assert_eq!(store.remove_through("server|app|alice|laptop", bob[2].seq).unwrap(), 2);
        assert_eq!(store.len("server|app|bob|laptop").unwrap(), 3);
        assert_eq!(store.len("server|app|alice|laptop").unwrap(), 0);
    }

    fn concurrent_appends_each_stay_whole(store: Arc<dyn OutboxStore>) {
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let mine = changes(50, 8);
                    for chunk in mine.chunks(10) {
                        store.append("q", chunk).unwrap();
                    }
                    mine.into_iter().map(|(id, _)| id).collect::<Vec<_>>()
                })
            })
            .collect();
        let written: Vec<Vec<Uuid>> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        let stored = ids(&store.oldest("q", 1000, usize::MAX).unwrap());
        assert_eq!(stored.len(), 200);
        // Each writer's changes come back in the order it appended them.
        for mine in written {
            let positions: Vec<usize> = mine.iter().map(|id| stored.iter().position(|s| s == id).unwrap()).collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]));
        }
    }

    fn suite(make: impl Fn() -> Arc<dyn OutboxStore>) {
        entries_come_back_in_order_with_their_bytes(&*make());
        batches_are_bounded_by_count_and_bytes_but_never_empty(&*make());
        removal_takes_only_what_was_acknowledged(&*make());
        queues_do_not_mix(&*make());
        concurrent_appends_each_stay_whole(make());
    }

    #[test]
    fn memory_store_conforms() {
        suite(|| Arc::new(MemoryOutboxStore::default()));
    }

    #[test]
    fn sqlite_store_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let n = std::sync::atomic::AtomicUsize::new(0);
        suite(|| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Arc::new(SqliteOutboxStore::new(dir.path().join(format!("{i}/outbox.sqlite3"))))
        });
    }

    #[test]
    fn the_sqlite_store_is_written_ahead_and_synced_and_keeps_entries_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.sqlite3");
        let appended = changes(3, 5);
        SqliteOutboxStore::new(&path).append("q", &appended).unwrap();
        let reopened = SqliteOutboxStore::new(&path);
        assert_eq!(ids(&reopened.oldest("q", 10, usize::MAX).unwrap()), ids_of(&appended));
        reopened
            .with("checking", |conn| {
                let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
                let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
                assert_eq!((mode.as_str(), sync), ("wal", 2), "WAL, synchronous=FULL");
                Ok(())
            })
            .unwrap();
    }

    fn ids_of(changes: &[(Uuid, Vec<u8>)]) -> Vec<Uuid> {
        changes.iter().map(|(id, _)| *id).collect()
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_storage_error_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.sqlite3");
        std::fs::write(&path, vec![0x42; 8192]).unwrap();
        let err = SqliteOutboxStore::new(&path).append("q", &changes(1, 1)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Storage, "{err}");
        assert!(err.to_string().contains("outbox.sqlite3"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), vec![0x42; 8192]);
    }
}
