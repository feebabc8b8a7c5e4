//! Postgres over TLS, as `sslmode` in `SYNCKIT_DATABASE_URL` asks, against the test Postgres, whose certificate
//! `ops/ensure-postgres` made with a CA of its own.

use std::path::Path;

use reqwest::StatusCode;
use synckit_server::Server;
use synckit_store::ChangelogStore;
use synckit_store_postgres::{PgOptions, PgStore};
use synckit_testkit::postgres::tls_ca;
use synckit_testkit::{TestServer, engine, fresh_database};

/// The test database URL with TLS parameters and a name to find its connections by.
async fn url_with(params: &str) -> String {
    format!("{}?application_name=synckit-tls-test-{}&{params}", fresh_database().await.unwrap(), uuid::Uuid::new_v4())
}

#[tokio::test]
async fn verify_full_with_the_right_ca_serves_over_tls() {
    let url = url_with(&format!("sslmode=verify-full&sslrootcert={}", tls_ca().display())).await;
    let app = TestServer::start_with(engine::postgres(), |s| s.database.url = Some(url.clone().into())).await;
    let user = app.user().await;
    let (status, body) = app.push(&user, &synckit_testkit::entries(3)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Every connection the server holds is encrypted.
    let name = url.split("application_name=").nth(1).unwrap().split('&').next().unwrap();
    let admin = synckit_testkit::postgres::connect(&synckit_testkit::postgres::admin_url()).await.unwrap();
    let row = admin
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.application_name = $1",
            &[&name],
        )
        .await
        .unwrap();
    let (all, encrypted): (i64, i64) = (row.get(0), row.get(1));
    assert!(all > 0 && encrypted == all, "{encrypted} of {all} connections use TLS");
}

#[tokio::test]
async fn require_encrypts_without_a_ca() {
    let store = PgStore::connect(&url_with("sslmode=require").await, &PgOptions::default()).unwrap();
    store.ping().await.unwrap();
}

#[tokio::test]
async fn verify_full_with_another_ca_fails_at_once_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let other_ca = another_ca(dir.path());
    let url = url_with(&format!("sslmode=verify-full&sslrootcert={}", other_ca.display())).await;

    let store = PgStore::connect(&url, &PgOptions::default()).unwrap();
    let err = format!("{:#}", anyhow::Error::new(store.ping().await.unwrap_err()));
    assert!(err.contains("TLS certificate was refused") && err.contains("sslrootcert"), "{err}");

    // The server does not start, and does not spend its start-up retries on it: no retry can fix a wrong CA.
    let data = tempfile::tempdir().unwrap();
    let mut settings = engine::postgres().settings(data.path()).await;
    settings.database.url = Some(url.into());
    let started = std::time::Instant::now();
    let err = format!("{:#}", Server::build(&settings).await.unwrap_err());
    assert!(err.contains("TLS certificate was refused"), "{err}");
    assert!(started.elapsed() < settings.database.startup_retry / 2, "{:?}", started.elapsed());

    // A CA file that is not there is a start-up error too, naming it.
    let missing = url_with("sslmode=verify-ca&sslrootcert=/nonexistent/ca.crt").await;
    let err = format!("{:#}", anyhow::Error::new(PgStore::connect(&missing, &PgOptions::default()).unwrap_err()));
    assert!(err.contains("sslrootcert=/nonexistent/ca.crt"), "{err}");
}

/// A CA that did not sign the test Postgres's certificate.
fn another_ca(dir: &Path) -> std::path::PathBuf {
    let (key, cert) = (dir.join("ca.key"), dir.join("ca.crt"));
    let status = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=Another CA", "-addext", "basicConstraints=critical,CA:TRUE", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success());
    cert
}
