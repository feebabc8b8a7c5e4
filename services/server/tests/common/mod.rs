//! The test harness: a real server on a real port, on either engine, and helpers that speak the wire protocol.
#![allow(dead_code)] // each test binary uses its own part of the harness

use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use synckit_server::{Engines, Server, Settings, admin};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use uuid::Uuid;

/// The signing secret test servers use, so tests can forge tokens with it.
pub const TOKEN_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// Emits each listed test twice: once on the embedded default and once on Postgres.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::common::TestApp::embedded().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::common::TestApp::postgres().await).await
                }
            )*
        }
    };
}

/// A running server and an app registered on it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub url: String,
    pub http: reqwest::Client,
    pub engines: Engines,
    pub api_key: String,
    pub app_id: Uuid,
    pub database_url: Option<String>,
    pub data_dir: tempfile::TempDir,
    _shutdown: oneshot::Sender<()>,
}

/// A signed-up user with a token and one device.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub email: String,
    pub login_key: Vec<u8>,
    pub token: String,
    pub user_id: Uuid,
    pub app_id: Uuid,
    pub device_id: Uuid,
}

pub fn settings_for(database_url: Option<String>, data_dir: &std::path::Path) -> Settings {
    Settings {
        data_dir: data_dir.to_owned(),
        database_url: database_url.map(SecretString::from),
        token_secret: Some(SecretString::from(TOKEN_SECRET)),
        ..Settings::default()
    }
}

/// Settings that put blobs in the test Garage.
pub async fn s3_settings() -> impl FnOnce(Settings) -> Settings {
    let s3 = synckit_testkit::garage().await.expect("the test Garage");
    move |s| Settings {
        s3_endpoint: Some(s3.endpoint),
        s3_region: s3.region,
        s3_bucket: Some(s3.bucket),
        s3_access_key_id: Some(s3.access_key_id),
        s3_secret_access_key: Some(SecretString::from(s3.secret_access_key)),
        ..s
    }
}

impl TestApp {
    pub async fn embedded() -> Self {
        Self::start(|s| s).await
    }

    pub async fn postgres() -> Self {
        let url = synckit_testkit::fresh_database().await.expect("a test database");
        Self::start(move |s| Settings { database_url: Some(SecretString::from(url)), ..s }).await
    }

    /// The production engines: Postgres, and blobs in the test Garage.
    pub async fn postgres_and_s3() -> Self {
        let url = synckit_testkit::fresh_database().await.expect("a test database");
        let s3 = s3_settings().await;
        Self::start(move |s| Settings { database_url: Some(SecretString::from(url)), ..s3(s) }).await
    }

    /// A server with settings adjusted by `adjust` (embedded unless it sets a database URL).
    pub async fn start(adjust: impl FnOnce(Settings) -> Settings) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let settings = adjust(settings_for(None, data_dir.path()));
        let database_url = settings.database_url.as_ref().map(|u| secrecy::ExposeSecret::expose_secret(u).to_owned());
        let server = Server::build(&settings).await.expect("server builds");
        let engines = server.engines.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(server.run(listener, async {
            let _ = rx.await;
        }));
        let created = admin::create_app(&engines, "Test app").await.expect("create app");
        Self {
            addr,
            url: format!("http://{addr}"),
            http: reqwest::Client::new(),
            engines,
            api_key: created.api_key,
            app_id: created.app_id,
            database_url,
            data_dir,
            _shutdown: tx,
        }
    }

    /// Sends a request and returns the status and the JSON body (Null when there is none).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let bytes = resp.bytes().await.expect("body");
        let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON body") };
        (status, value)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, token, Some(body)).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    /// Signs up a new user, authenticates in this app and registers a device.
    pub async fn user(&self) -> TestUser {
        self.user_in_app(&self.api_key).await
    }

    pub async fn user_in_app(&self, api_key: &str) -> TestUser {
        let email = format!("{}@example.com", Uuid::new_v4());
        let login_key = random_bytes(32);
        let (status, body) = self
            .post(
                "/api/accounts/register",
                None,
                json!({"email": email, "salt": b64(&random_bytes(32)), "login_key": b64(&login_key)}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let mut user = self.login(&email, &login_key, api_key).await;
        user.device_id = self.device(&user.token, "laptop").await;
        user
    }

    /// Authenticates an existing user; `device_id` is left nil.
    pub async fn login(&self, email: &str, login_key: &[u8], api_key: &str) -> TestUser {
        let (status, body) = self
            .post("/api/sync/auth", None, json!({"email": email, "login_key": b64(login_key), "api_key": api_key}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        TestUser {
            email: email.to_owned(),
            login_key: login_key.to_vec(),
            token: body["token"].as_str().unwrap().to_owned(),
            user_id: body["user_id"].as_str().unwrap().parse().unwrap(),
            app_id: body["app_id"].as_str().unwrap().parse().unwrap(),
            device_id: Uuid::nil(),
        }
    }

    pub async fn device(&self, token: &str, name: &str) -> Uuid {
        let (status, body) =
            self.post("/api/sync/devices", Some(token), json!({"name": name, "platform": "linux"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["id"].as_str().unwrap().parse().unwrap()
    }

    /// Pushes `entries` as (change id, payload) and returns the response.
    pub async fn push(&self, user: &TestUser, entries: &[(Uuid, Vec<u8>)]) -> (StatusCode, Value) {
        let entries: Vec<Value> =
            entries.iter().map(|(id, payload)| json!({"change_id": id, "payload": b64(payload)})).collect();
        self.post("/api/sync/push", Some(&user.token), json!({"device_id": user.device_id, "entries": entries})).await
    }

    /// Pulls every entry after `cursor`, page by page, as (seq, change id, payload).
    pub async fn pull_all(&self, token: &str, mut cursor: u64) -> Vec<(u64, Uuid, Vec<u8>)> {
        let mut all = Vec::new();
        loop {
            let (status, body) = self.post("/api/sync/pull", Some(token), json!({"cursor": cursor})).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let has_more = body["has_more"].as_bool().unwrap();
            assert!(!(has_more && body["entries"].as_array().unwrap().is_empty()), "an empty page cannot have more");
            for e in body["entries"].as_array().unwrap() {
                all.push((
                    e["seq"].as_u64().unwrap(),
                    e["change_id"].as_str().unwrap().parse().unwrap(),
                    unb64(&e["payload"]),
                ));
            }
            cursor = body["cursor"].as_u64().unwrap();
            if !has_more {
                return all;
            }
        }
    }
}

pub fn entries(n: usize) -> Vec<(Uuid, Vec<u8>)> {
    (0..n).map(|_| (Uuid::now_v7(), random_bytes(64))).collect()
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    getrandom::fill(&mut bytes).expect("random bytes");
    bytes
}

pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub fn unb64(v: &Value) -> Vec<u8> {
    STANDARD.decode(v.as_str().expect("a base64 string")).expect("valid base64")
}

/// The error code of an error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error body: {body}"))
}
