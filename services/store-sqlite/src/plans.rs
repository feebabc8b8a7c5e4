//! The hot statements search an index, never scan a table: their cost follows the batch, not the stream's length.
//!
//! SQLite plans a statement when it is prepared, from the schema and, once `ANALYZE` has run, from `sqlite_stat1`;
//! a change of either re-prepares it. So each statement is checked with `EXPLAIN QUERY PLAN` twice: on an empty
//! database as it was just migrated, and after one stream holds `STREAM_LEN` entries and `ANALYZE` has run.

use rusqlite::{Connection, params};

use crate::SqliteStore;
use crate::blobs::{BLOB, CONFIRM, CONFIRMED, SWEEP};
use crate::changelog::{EXISTS, HEAD, READ_PAGE, SUPERSEDABLE, SUPERSEDE};

const STREAM_LEN: i64 = 100_000;

/// Each statement, and the index constraint its search must use: the whole key of one row, or a range that starts at
/// the cursor and ends at the LIMIT. A search on (app_id, user_id) alone would walk the whole stream.
const STATEMENTS: [(&str, &str, &str); 9] = [
    ("head", HEAD, "streams USING PRIMARY KEY (app_id=? AND user_id=?)"),
    (
        "duplicate check",
        EXISTS,
        "changes USING COVERING INDEX changes_change_id (app_id=? AND user_id=? AND change_id=?)",
    ),
    ("pull page", READ_PAGE, "changes USING INDEX sqlite_autoindex_changes_1 (app_id=? AND user_id=? AND seq>?)"),
    (
        "supersedable entry",
        SUPERSEDABLE,
        "changes USING INDEX sqlite_autoindex_changes_1 (app_id=? AND user_id=? AND seq=?)",
    ),
    ("supersession", SUPERSEDE, "changes USING INDEX sqlite_autoindex_changes_1 (app_id=? AND user_id=? AND seq=?)"),
    ("blob lookup", BLOB, "blobs USING INDEX sqlite_autoindex_blobs_1 (app_id=? AND user_id=? AND hash=?)"),
    ("confirmed blob", CONFIRMED, "blobs USING INDEX sqlite_autoindex_blobs_1 (app_id=? AND user_id=? AND hash=?)"),
    ("blob confirmation", CONFIRM, "blobs USING INDEX sqlite_autoindex_blobs_1 (app_id=? AND user_id=? AND hash=?)"),
    // Pending uploads only, oldest first, up to the LIMIT.
    ("upload sweep", SWEEP, "blobs USING INDEX blobs_pending (created_at<?)"),
];

#[test]
fn hot_statements_search_an_index_empty_or_full() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("synckit.db");
    drop(SqliteStore::open(&path).expect("migrated database"));
    let mut conn = Connection::open(&path).expect("connection");
    assert_searches(&conn, "on an empty database");

    let tx = conn.transaction().expect("transaction");
    let (app, user) = ([1u8; 16], [2u8; 16]);
    tx.execute("INSERT INTO streams (app_id, user_id, head) VALUES (?1, ?2, ?3)", params![app, user, STREAM_LEN])
        .expect("head");
    tx.execute(
        "WITH RECURSIVE n(seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM n WHERE seq < ?3) \
         INSERT INTO changes (app_id, user_id, seq, change_id, device_id, payload, created_at) \
         SELECT ?1, ?2, seq, randomblob(16), randomblob(16), x'00', 0 FROM n",
        params![app, user, STREAM_LEN],
    )
    .expect("bulk fill");
    tx.commit().expect("commit");
    conn.execute_batch("ANALYZE").expect("analyze");
    assert_searches(&conn, &format!("after {STREAM_LEN} entries and ANALYZE"));
}

fn assert_searches(conn: &Connection, when: &str) {
    for (name, sql, search) in STATEMENTS {
        let mut explain = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("explain");
        // The parameters stay unbound: a plan does not depend on their values.
        let mut rows = explain.raw_query();
        let mut details: Vec<String> = Vec::new();
        while let Some(row) = rows.next().expect("plan row") {
            details.push(row.get(3).expect("detail"));
        }
        let scans = details.iter().any(|d| d.starts_with("SCAN"));
        let searches = details.iter().any(|d| *d == format!("SEARCH {search}"));
        assert!(!scans && searches, "the {name} must search {search} and scan nothing, {when}: {details:#?}");
    }
}
