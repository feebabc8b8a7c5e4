//! The storage conformance suite on the embedded SQLite adapter, each case on a file of its own.

use std::sync::Arc;

use synckit_store::conformance::Stores;
use synckit_store_sqlite::SqliteStore;

async fn fresh_stores() -> Stores {
    // The directory must outlive the store; a test process is short, so it is simply leaked.
    let dir = tempfile::tempdir().expect("temp dir").keep();
    let store = Arc::new(SqliteStore::open(&dir.join("synckit.db")).expect("open"));
    Stores::all_on(store)
}

synckit_store::conformance_suite!(fresh_stores());
