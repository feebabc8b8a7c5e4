//! The push and pull statements, as a long-lived connection runs them: each reads rows in proportion to its batch,
//! never to the stream.
//!
//! The store prepares these statements once per pooled connection (`prepare_cached`), and after a few executions
//! Postgres runs them on a generic plan made from the table as it was then, often empty. A shape that lets that plan
//! scan the stream costs nothing in a fresh database and grows with every entry stored. The test models it exactly:
//! each statement is prepared and run once on an empty database with `plan_cache_mode = force_generic_plan`, the
//! stream is then filled with `STREAM_LEN` entries, and the same cached plan is run under `EXPLAIN ANALYZE`, counting
//! the rows it read from `changes`. Autovacuum is off for the test's tables, since an ANALYZE in the background
//! would invalidate the cached plans and let a bad shape pass; a busy server is not that lucky between analyses.

use serde_json::Value;
use uuid::Uuid;

use crate::accounts::TOKEN_STANDING;
use crate::changelog::{ADVANCE_HEAD, EXISTING_IDS, HEAD, LOCK_HEAD, READ_PAGE};
use crate::{PgOptions, PgStore};

const STREAM_LEN: i64 = 100_000;
/// The most entries one push or one page holds.
const BATCH: usize = 500;

#[tokio::test]
async fn cached_plans_read_a_batch_not_the_stream() {
    let url = synckit_testkit::fresh_database().await.expect("test database");
    PgStore::connect(&url, &PgOptions::default()).expect("pool").migrate().await.expect("migrations");
    let db = synckit_testkit::postgres::connect(&url).await.expect("connection");
    db.batch_execute(
        "ALTER TABLE changes SET (autovacuum_enabled = off); \
         ALTER TABLE streams SET (autovacuum_enabled = off); \
         SET plan_cache_mode = force_generic_plan",
    )
    .await
    .expect("settings");

    let (app, user) = (Uuid::new_v4(), Uuid::new_v4());
    let stream = format!("'{app}'::uuid, '{user}'::uuid");
    let statements = [
        ("lock_head", "uuid, uuid", LOCK_HEAD),
        ("existing_ids", "uuid, uuid, uuid[]", EXISTING_IDS),
        ("advance_head", "uuid, uuid, bigint, bigint", ADVANCE_HEAD),
        ("read_page", "uuid, uuid, bigint, bigint, bigint", READ_PAGE),
        ("head", "uuid, uuid", HEAD),
    ];
    for (name, types, sql) in statements {
        db.batch_execute(&format!("PREPARE {name} ({types}) AS {sql}")).await.expect("prepare");
    }
    // Half of a push already stored, half new, as a retried push after a partial failure looks.
    let fresh_ids = (0..BATCH / 2).map(|_| format!("'{}'", Uuid::now_v7())).collect::<Vec<_>>();
    let arguments = |stored_ids: &[String]| {
        let ids = stored_ids.iter().chain(&fresh_ids).cloned().collect::<Vec<_>>().join(", ");
        [
            ("lock_head", stream.clone()),
            ("existing_ids", format!("{stream}, ARRAY[{ids}]::uuid[]")),
            ("advance_head", format!("{stream}, 0, 0")),
            ("read_page", format!("{stream}, {}, {BATCH}, {}", STREAM_LEN / 2, i64::MAX)),
            ("head", stream.clone()),
        ]
    };
    // The first execution makes the generic plan, on empty tables.
    for (name, args) in arguments(&[]) {
        db.batch_execute(&format!("EXECUTE {name} ({args})")).await.expect("execute on the empty database");
    }

    db.batch_execute(&format!(
        "INSERT INTO streams (app_id, user_id, head) VALUES ('{app}', '{user}', {STREAM_LEN}); \
         INSERT INTO changes (app_id, user_id, seq, change_id, device_id, payload) \
             SELECT '{app}', '{user}', seq, gen_random_uuid(), gen_random_uuid(), '\\x00' \
             FROM generate_series(1, {STREAM_LEN}) AS seq"
    ))
    .await
    .expect("bulk fill");
    let stored_ids: Vec<String> = db
        .query(
            "SELECT change_id FROM changes WHERE app_id = $1 AND user_id = $2 ORDER BY seq DESC LIMIT $3",
            &[&app, &user, &((BATCH / 2) as i64)],
        )
        .await
        .expect("stored ids")
        .iter()
        .map(|r| format!("'{}'", r.get::<_, Uuid>(0)))
        .collect();

    for (name, args) in arguments(&stored_ids) {
        let explained = explain(&db, &format!("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE {name} ({args})")).await;
        let read = rows_read(&explained[0]["Plan"], "changes");
        assert!(
            read <= BATCH as f64,
            "{name} read {read} rows of changes in a stream of {STREAM_LEN} on the plan cached on an empty table; \
             it must read at most {BATCH}: {explained:#}"
        );
    }
}

/// The check of every authenticated request reads the token's one device row, however many devices the user has
/// registered, on the plan cached while the tables were empty.
#[tokio::test]
async fn the_token_check_reads_one_device_row() {
    const DEVICES: i64 = 5_000;
    let url = synckit_testkit::fresh_database().await.expect("test database");
    PgStore::connect(&url, &PgOptions::default()).expect("pool").migrate().await.expect("migrations");
    let db = synckit_testkit::postgres::connect(&url).await.expect("connection");
    db.batch_execute(&format!(
        "ALTER TABLE users SET (autovacuum_enabled = off); \
         ALTER TABLE devices SET (autovacuum_enabled = off); \
         SET plan_cache_mode = force_generic_plan; \
         PREPARE standing (uuid, uuid, uuid) AS {TOKEN_STANDING}"
    ))
    .await
    .expect("prepare");
    let (app, user, nobody) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    db.batch_execute(&format!("EXECUTE standing ('{nobody}', '{app}', '{nobody}')")).await.expect("empty tables");

    db.batch_execute(&format!(
        "INSERT INTO users (id, email, salt, login_key_hash) VALUES ('{user}', 'a@example.com', '\\x00', '\\x00'); \
         INSERT INTO devices (id, app_id, user_id, name, platform) \
             SELECT gen_random_uuid(), '{app}', '{user}', 'device ' || n, 'linux' FROM generate_series(1, {DEVICES}) AS n"
    ))
    .await
    .expect("many devices");
    // The last in (app, user, name) order, which a walk of the user's devices through that index reaches last.
    let device: Uuid =
        db.query_one("SELECT id FROM devices ORDER BY name DESC LIMIT 1", &[]).await.expect("a device").get(0);
    let standing = |app: Uuid| format!("'{user}', '{app}', '{device}'");
    let registered: bool = db.query_one(TOKEN_STANDING, &[&user, &app, &device]).await.expect("the check").get(1);
    assert!(registered, "the device is the user's in this app");
    let elsewhere: bool = db.query_one(TOKEN_STANDING, &[&user, &nobody, &device]).await.expect("the check").get(1);
    assert!(!elsewhere, "nor in another app");

    let explained = explain(&db, &format!("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE standing ({})", standing(app))).await;
    let read = rows_read(&explained[0]["Plan"], "devices");
    assert!(read <= 1.0, "the token check read {read} device rows of a user with {DEVICES}: {explained:#}");
}

async fn explain(db: &tokio_postgres::Client, sql: &str) -> Value {
    let messages = db.simple_query(sql).await.expect("explain");
    let text = messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0),
            _ => None,
        })
        .expect("a plan");
    serde_json::from_str(text).expect("a JSON plan")
}

/// Rows the plan's scans of `table` produced or threw away, over all their loops. EXPLAIN reports both per loop.
fn rows_read(node: &Value, table: &str) -> f64 {
    let number = |key: &str| node[key].as_f64().unwrap_or(0.0);
    let own = if node["Relation Name"] == table {
        (number("Actual Rows") + number("Rows Removed by Filter") + number("Rows Removed by Index Recheck"))
            * number("Actual Loops")
    } else {
        0.0
    };
    let children = node["Plans"].as_array().map_or(0.0, |plans| plans.iter().map(|p| rows_read(p, table)).sum());
    own + children
}
