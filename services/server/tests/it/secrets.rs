//! Signing secrets: configured ones live outside the database, files work like variables, Postgres refuses to start
//! without them, and a rotated key keeps verifying what it signed while it is kept as a previous one.

use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use synckit_http::TokenKeys;
use synckit_server::Server;
use synckit_server::secrets::{SecretSetting, SecretSettings};
use synckit_testkit::{TOKEN_SECRET, TestServer, b64, code, engine, on_each_engine, random_bytes};

on_each_engine!(configured_secrets_do_not_depend_on_the_database, a_rotated_key_verifies_while_it_is_kept);

/// A secret none of the tests configure.
const NEW_SECRET: &str = "a-new-secret-after-rotation-a-new-secret-0";

/// What a reader of the database would need to forge tokens, upload URLs and pre-login salts: once configured, the
/// server keeps none of it there, so wiping the secrets table and restarting changes nothing.
async fn configured_secrets_do_not_depend_on_the_database(app: TestServer) {
    let user = app.user().await;
    let unknown = json!({"email": synckit_testkit::email()});
    let (_, salt) = app.post("/api/accounts/prelogin", None, unknown.clone()).await;
    let (bytes, begun) = begin_upload(&app, &user.token).await;

    app.execute("DELETE FROM server_secrets").await;
    let app = app.restart().await;

    assert_eq!(app.get("/api/sync/devices", Some(&user.token)).await.0, StatusCode::OK, "the token still verifies");
    let (_, salt_after) = app.post("/api/accounts/prelogin", None, unknown).await;
    assert_eq!(salt_after["salt"], salt["salt"], "made-up salts do not change");
    assert_eq!(put(&app, &begun, bytes).await, StatusCode::OK, "the upload URL still verifies");
}

/// After a rotation the new key signs and the previous one still verifies; once it is dropped, what it signed is
/// refused, and a token naming a key the server does not know never verifies.
async fn a_rotated_key_verifies_while_it_is_kept(mut app: TestServer) {
    let user = app.user().await;
    let before = user.token.clone();
    let (during_grace, to_drop) = (begin_upload(&app, &user.token).await, begin_upload(&app, &user.token).await);

    // Rotate: new secrets, the old ones kept as previous.
    let rotated = |current: &SecretSetting| SecretSetting {
        value: Some(SecretString::from(NEW_SECRET)),
        file: None,
        previous: current.value.iter().cloned().collect(),
    };
    app.settings.secrets.token = rotated(&app.settings.secrets.token);
    app.settings.secrets.url = rotated(&app.settings.secrets.url);
    let mut app = app.restart().await;

    assert_eq!(app.get("/api/sync/devices", Some(&before)).await.0, StatusCode::OK, "the previous key verifies");
    assert_eq!(put(&app, &during_grace.1, during_grace.0).await, StatusCode::OK, "so does the previous URL key");
    let after = app.login(&user.email, &user.login_key, &app.api_key).await.token;
    assert_eq!(kid(&after), kid_of(NEW_SECRET), "the new key signs");
    assert_ne!(kid(&before), kid(&after));
    assert_eq!(app.get("/api/sync/devices", Some(&after)).await.0, StatusCode::OK);
    let unknown = TokenKeys::new(b"a-key-this-deployment-never-had-a-key-000").unwrap();
    let claims = synckit_http::auth::TokenClaims {
        user_id: user.user_id,
        app_id: user.app_id,
        token_version: 0,
        device_id: None,
    };
    let (foreign, _) = unknown.issue(claims);
    let (status, body) = app.get("/api/sync/devices", Some(&foreign)).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_token"));

    // Drop the previous keys: what they signed no longer verifies, what the new key signed still does.
    app.settings.secrets.token.previous.clear();
    app.settings.secrets.url.previous.clear();
    let app = app.restart().await;
    let (status, body) = app.get("/api/sync/devices", Some(&before)).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_token"));
    assert_eq!(app.get("/api/sync/devices", Some(&after)).await.0, StatusCode::OK);
    assert_eq!(put(&app, &to_drop.1, to_drop.0).await, StatusCode::FORBIDDEN, "the old key's URL is refused");
}

/// Secrets from files: each read at start-up, its trailing newline ignored.
#[tokio::test]
async fn secrets_come_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, value: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{value}\n")).unwrap();
        SecretSetting { file: Some(path), ..SecretSetting::default() }
    };
    let secrets = SecretSettings {
        token: file("token", NEW_SECRET),
        url: file("url", &"u".repeat(40)),
        prelogin: file("prelogin", &"p".repeat(40)),
    };
    let app = TestServer::start_with(engine::postgres(), |s| s.secrets = secrets).await;
    let user = app.user().await;
    assert_eq!(kid(&user.token), kid_of(NEW_SECRET));
    assert!(TokenKeys::new(NEW_SECRET.as_bytes()).unwrap().verify(&user.token).is_ok(), "signed by the file's secret");
    let (bytes, begun) = begin_upload(&app, &user.token).await;
    assert_eq!(put(&app, &begun, bytes).await, StatusCode::OK);
}

/// On Postgres every secret must be configured: the start-up error names the variables to set.
#[tokio::test]
async fn postgres_does_not_start_without_its_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let configured = engine::postgres().settings(dir.path()).await;
    for (var, clear) in [
        ("TOKEN", (|s| s.token = SecretSetting::default()) as fn(&mut SecretSettings)),
        ("URL", |s| s.url = SecretSetting::default()),
        ("PRELOGIN", |s| s.prelogin = SecretSetting::default()),
    ] {
        let mut settings = configured.clone();
        clear(&mut settings.secrets);
        let err = Server::build(&settings).await.expect_err(var).to_string();
        assert!(err.contains(&format!("set SYNCKIT_{var}_SECRET or SYNCKIT_{var}_SECRET_FILE")), "{err}");
    }
}

/// The embedded default still runs with no configuration, its secrets made once and kept in its database.
#[tokio::test]
async fn the_embedded_default_keeps_its_secrets_in_its_database() {
    let app = TestServer::start_with(engine::embedded(), |s| s.secrets = SecretSettings::default()).await;
    let user = app.user().await;
    assert!(TokenKeys::new(TOKEN_SECRET.as_bytes()).unwrap().verify(&user.token).is_err());
    let app = app.restart().await;
    assert_eq!(app.get("/api/sync/devices", Some(&user.token)).await.0, StatusCode::OK);
}

/// Asks for an upload URL of some bytes.
async fn begin_upload(app: &TestServer, token: &str) -> (Vec<u8>, Value) {
    let bytes = random_bytes(100);
    let request =
        json!({"hash": hex::encode(random_bytes(32)), "size": 100, "checksum_sha256": b64(&Sha256::digest(&bytes))});
    let (status, body) = app.post("/api/sync/blobs/upload", Some(token), request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (bytes, body)
}

/// PUTs to an upload URL as a device does.
async fn put(app: &TestServer, begun: &Value, bytes: Vec<u8>) -> StatusCode {
    let url = begun["upload_url"].as_str().unwrap();
    let url = if url.starts_with('/') { format!("{}{url}", app.url) } else { url.to_owned() };
    let mut request = reqwest::Client::new().put(url);
    for (name, value) in begun["headers"].as_object().unwrap() {
        request = request.header(name, value.as_str().unwrap());
    }
    request.body(bytes).send().await.unwrap().status()
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.expect("tokens name their key")
}

fn kid_of(secret: &str) -> String {
    synckit_http::KeyRing::new(secret.as_bytes(), []).unwrap().current().id().to_owned()
}
