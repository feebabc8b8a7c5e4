//! The token-check pool: with every connection of the main pool held by pushes waiting on their streams' locks, the
//! token check every authenticated request makes still finds a connection.

use std::sync::Arc;
use std::time::Duration;

use synckit_store::{AccountStore, ChangelogStore, NewEntry, StoreError, StreamId};
use synckit_store_postgres::{PgOptions, PgStore};
use uuid::Uuid;

fn entry() -> Vec<NewEntry> {
    vec![NewEntry { change_id: Uuid::now_v7(), payload: b"ciphertext".to_vec() }]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_checks_answer_while_pushes_hold_every_connection() {
    let url = synckit_testkit::fresh_database().await.expect("test database");
    let options = PgOptions {
        max_connections: 2,
        token_connections: 1,
        acquire_timeout: Duration::from_secs(1),
        lock_timeout: Duration::from_secs(60),
        ..PgOptions::default()
    };
    let store = Arc::new(PgStore::connect(&url, &options).expect("pool"));
    store.migrate().await.expect("migrations");
    let streams: Vec<StreamId> = (0..2).map(|_| StreamId { app_id: Uuid::now_v7(), user_id: Uuid::now_v7() }).collect();
    for s in &streams {
        store.append(*s, Uuid::now_v7(), entry()).await.unwrap();
    }

    let holder = synckit_testkit::postgres::connect(&url).await.unwrap();
    holder.batch_execute("BEGIN").await.unwrap();
    for s in &streams {
        holder
            .execute("SELECT head FROM streams WHERE app_id = $1 AND user_id = $2 FOR UPDATE", &[&s.app_id, &s.user_id])
            .await
            .unwrap();
    }
    let blocked: Vec<_> = streams
        .iter()
        .map(|s| {
            let (store, s) = (store.clone(), *s);
            tokio::spawn(async move { store.append(s, Uuid::now_v7(), entry()).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Both connections of the main pool wait on the locks: anything else on it waits out the acquire timeout.
    assert!(matches!(store.head(streams[0]).await, Err(StoreError::Unavailable(_))), "the main pool is taken");
    // The token check has a connection of its own.
    let someone = StreamId { app_id: Uuid::now_v7(), user_id: Uuid::now_v7() };
    let standing = store.token_standing(someone, None).await.expect("a token check while pushes hold the pool");
    assert!(standing.is_none(), "no such user");

    holder.batch_execute("ROLLBACK").await.unwrap();
    for push in blocked {
        assert_eq!(push.await.unwrap().unwrap().head, 2);
    }
}
