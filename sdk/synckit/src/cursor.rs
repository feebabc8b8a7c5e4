//! Where each device remembers how far it has pulled, so an app resumes where it left off.
//!
//! ```
//! use std::sync::Arc;
//! use synckit::{SyncKitConfig, cursor::FileCursorStore};
//! let config = SyncKitConfig::new("https://sync.example.com", "sk_…")
//!     .cursor_store(Arc::new(FileCursorStore::new("/var/lib/myapp/cursors.json")));
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::error::{Error, ErrorKind, Result};

/// Cursors by name (one per server, app, user and device). Implement it to keep cursors with the app's own data
/// (e.g. in the same database transaction as the pulled changes) and pass it to
/// [`SyncKitConfig::cursor_store`](crate::SyncKitConfig::cursor_store).
///
/// ```
/// use std::sync::Arc;
/// use synckit::cursor::{CursorStore, MemoryCursorStore};
/// let store: Arc<dyn CursorStore> = Arc::new(MemoryCursorStore::default());
/// let config = synckit::SyncKitConfig::new("https://sync.example.com", "sk_…").cursor_store(store);
/// ```
pub trait CursorStore: Send + Sync + std::fmt::Debug {
    /// The saved cursor, if any.
    ///
    /// ```
    /// use synckit::cursor::{CursorStore, MemoryCursorStore};
    /// let start = MemoryCursorStore::default().load("laptop").unwrap().unwrap_or(0);
    /// assert_eq!(start, 0);
    /// ```
    fn load(&self, name: &str) -> Result<Option<u64>>;
    /// Saves a cursor, replacing the one saved under `name`.
    ///
    /// ```
    /// use synckit::cursor::{CursorStore, MemoryCursorStore};
    /// let store = MemoryCursorStore::default();
    /// store.save("laptop", 10).unwrap();
    /// store.save("laptop", 12).unwrap();
    /// assert_eq!(store.load("laptop").unwrap(), Some(12));
    /// ```
    fn save(&self, name: &str, cursor: u64) -> Result<()>;
}

/// Cursors in memory.
///
/// ```
/// use synckit::cursor::{CursorStore, MemoryCursorStore};
/// let store = MemoryCursorStore::default();
/// store.save("laptop", 42).unwrap();
/// assert_eq!(store.load("laptop").unwrap(), Some(42));
/// ```
#[derive(Debug, Default)]
pub struct MemoryCursorStore {
    cursors: Mutex<BTreeMap<String, u64>>,
}

impl CursorStore for MemoryCursorStore {
    fn load(&self, name: &str) -> Result<Option<u64>> {
        Ok(self.cursors.lock().expect("not poisoned").get(name).copied())
    }

    fn save(&self, name: &str, cursor: u64) -> Result<()> {
        self.cursors.lock().expect("not poisoned").insert(name.to_owned(), cursor);
        Ok(())
    }
}

/// Cursors in one JSON file, rewritten atomically on every save.
///
/// ```
/// use synckit::cursor::{CursorStore, FileCursorStore};
/// let dir = tempfile::tempdir().unwrap();
/// FileCursorStore::new(dir.path().join("cursors.json")).save("laptop", 7).unwrap();
/// assert_eq!(FileCursorStore::new(dir.path().join("cursors.json")).load("laptop").unwrap(), Some(7));
/// ```
#[derive(Debug)]
pub struct FileCursorStore {
    path: PathBuf,
    lock: Mutex<()>,
}

impl FileCursorStore {
    /// A store in the file at `path` (created on first save, with its directory).
    ///
    /// ```
    /// use synckit::cursor::{CursorStore, FileCursorStore};
    /// let dir = tempfile::tempdir().unwrap();
    /// FileCursorStore::new(dir.path().join("sync/cursors.json")).save("laptop", 1).unwrap();
    /// assert!(dir.path().join("sync/cursors.json").is_file());
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), lock: Mutex::new(()) }
    }

    fn read(&self) -> Result<BTreeMap<String, u64>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::new(ErrorKind::InvalidInput, "the cursor file is damaged").with_source(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(Error::new(ErrorKind::InvalidInput, "cannot read the cursor file").with_source(e)),
        }
    }
}

impl CursorStore for FileCursorStore {
    fn load(&self, name: &str) -> Result<Option<u64>> {
        let _guard = self.lock.lock().expect("not poisoned");
        Ok(self.read()?.get(name).copied())
    }

    fn save(&self, name: &str, cursor: u64) -> Result<()> {
        let _guard = self.lock.lock().expect("not poisoned");
        let mut all = self.read()?;
        all.insert(name.to_owned(), cursor);
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::new(ErrorKind::InvalidInput, "cannot create the cursor directory").with_source(e)
            })?;
        }
        let json = serde_json::to_vec_pretty(&all).expect("a map of numbers serialises");
        crate::fs::write_atomic(&self.path, &json)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, "cannot write the cursor file").with_source(e))
    }
}
