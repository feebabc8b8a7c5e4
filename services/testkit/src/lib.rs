//! Test support for SyncKit: throwaway databases on the real Postgres the test environment runs, and the Garage
//! S3 store `ops/ensure-garage` starts.
//!
//! Set `SYNCKIT_TEST_DATABASE_URL` to use another server than `postgres://postgres@127.0.0.1:5432/test`. A test
//! that needs Postgres or Garage fails loudly when it cannot reach it: `ops/test` starts both first.

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

/// Where the test Garage listens and how to sign in to it: the values `ops/ensure-garage` starts it with.
#[derive(Debug, Clone)]
pub struct TestS3 {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// The test Garage, after checking that it answers. Tests keep apart by key prefix: every test makes its own app.
pub async fn garage() -> Result<TestS3> {
    let s3 = TestS3 {
        endpoint: "http://127.0.0.1:3900".to_owned(),
        region: "garage".to_owned(),
        bucket: "synckit-test".to_owned(),
        access_key_id: "GK5a11ed5ecdeadbeef0123456".to_owned(),
        secret_access_key: "7e57ab1e5ecde7c0ffee0ddba11b0a7c0ffeec0deca7f00dfacadebeaded1e55".to_owned(),
    };
    tokio::net::TcpStream::connect("127.0.0.1:3900").await.with_context(|| {
        format!("cannot reach the test Garage at {}: run ops/test, or ops/ensure-garage", s3.endpoint)
    })?;
    Ok(s3)
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
