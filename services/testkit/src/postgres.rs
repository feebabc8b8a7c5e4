//! Throwaway databases on the test Postgres (`ops/ensure-postgres`), and SQL against them.

use anyhow::{Context, Result};
use tokio_postgres::NoTls;
use uuid::Uuid;

/// The admin connection tests create their databases through: `SYNCKIT_TEST_DATABASE_URL`, or the local test
/// Postgres.
pub fn admin_url() -> String {
    std::env::var("SYNCKIT_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Creates an empty database with a unique name and returns its URL. Databases are left behind for inspection;
/// `ops/test` drops the old ones before each run.
pub async fn fresh_database() -> Result<String> {
    let admin = admin_url();
    let client = connect(&admin)
        .await
        .with_context(|| format!("cannot reach the test Postgres at {admin}: run ops/test, or ops/ensure-postgres"))?;
    let name = format!("synckit_test_{}", Uuid::new_v4().simple());
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.context("creating the test database")?;
    Ok(url_with_dbname(&admin, &name))
}

/// A connection to `url`, driven in the background until the client is dropped.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// A transaction on `url` that holds the head-row lock of each `(app_id, user_id)` stream, as another instance's
/// push would, until `ROLLBACK` is sent on the returned connection (or it is dropped).
pub async fn hold_stream_locks(url: &str, streams: &[(Uuid, Uuid)]) -> Result<tokio_postgres::Client> {
    let holder = connect(url).await?;
    holder.batch_execute("BEGIN").await?;
    for (app_id, user_id) in streams {
        holder
            .execute("SELECT head FROM streams WHERE app_id = $1 AND user_id = $2 FOR UPDATE", &[app_id, user_id])
            .await?;
    }
    Ok(holder)
}

/// The CA that signed the test Postgres's TLS certificate (`ops/ensure-postgres` makes it).
pub fn tls_ca() -> std::path::PathBuf {
    let dir = std::env::var_os("SYNCKIT_POSTGRES_TLS_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| {
        std::path::PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/synckit/postgres-tls")
    });
    let ca = dir.join("ca.crt");
    assert!(ca.exists(), "{} is missing: run ops/ensure-postgres, which switches TLS on", ca.display());
    ca
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
