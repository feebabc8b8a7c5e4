//! The storage conformance suite on PostgreSQL, each case in a database of its own.

use std::sync::Arc;

use synckit_store::conformance::Stores;
use synckit_store_postgres::{PgOptions, PgStore};

async fn fresh_stores() -> Stores {
    let url = synckit_testkit::fresh_database().await.expect("test database");
    let store = Arc::new(PgStore::connect(&url, &PgOptions::default()).expect("pool"));
    store.migrate().await.expect("migrations");
    Stores::all_on(store)
}

synckit_store::conformance_suite!(fresh_stores());
