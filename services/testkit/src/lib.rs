//! Test support for SyncKit: throwaway databases on the real Postgres the test environment runs.
//!
//! Set `SYNCKIT_TEST_DATABASE_URL` to use another server than `postgres://postgres@127.0.0.1:5432/test`. A test
//! that needs Postgres fails loudly when it cannot reach it: `ops/test` starts it first.

use anyhow::{Context, Result};
use tokio_postgres::NoTls;
use uuid::Uuid;

/// The admin connection tests create their databases through.
pub fn admin_url() -> String {
    std::env::var("SYNCKIT_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Creates an empty database with a unique name and returns its URL. Databases are left behind for inspection;
/// `ops/test` drops the old ones before each run.
pub async fn fresh_database() -> Result<String> {
    let admin = admin_url();
    let (client, connection) = tokio_postgres::connect(&admin, NoTls)
        .await
        .with_context(|| format!("cannot reach the test Postgres at {admin}: run ops/test, or ops/ensure-postgres"))?;
    let conn = tokio::spawn(connection);
    let name = format!("synckit_test_{}", Uuid::new_v4().simple());
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.context("creating the test database")?;
    drop(client);
    let _ = conn.await;

    Ok(url_with_dbname(&admin, &name))
}

fn url_with_dbname(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a postgres URL has a database path");
    let query = url.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
    format!("{base}/{name}{query}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_database_name() {
        assert_eq!(super::url_with_dbname("postgres://u@h:1/test", "x"), "postgres://u@h:1/x");
        assert_eq!(
            super::url_with_dbname("postgres://u@h:1/test?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
    }
}
