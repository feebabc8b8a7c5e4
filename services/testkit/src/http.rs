//! Speaking the wire protocol to a [`TestServer`] as a client would: raw JSON requests, and signed-in users.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use synckit_protocol::paths;
use uuid::Uuid;

use crate::TestServer;

/// A signed-up user with a token and one device.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub email: String,
    pub login_key: Vec<u8>,
    /// The device's token once a device is registered ([`TestServer::user`] does), else the sign-in token.
    pub token: String,
    /// The token `POST /api/sync/auth` answered, bound to no device.
    pub sign_in_token: String,
    pub user_id: Uuid,
    pub app_id: Uuid,
    pub device_id: Uuid,
}

impl TestServer {
    /// Sends a request and returns the status and the JSON body (Null when there is none).
    pub async fn send(
        &self,
        method: Method,
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
        self.send(Method::POST, path, token, Some(body)).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.send(Method::GET, path, token, None).await
    }

    /// Signs up a new user, authenticates in this server's app and registers a device.
    pub async fn user(&self) -> TestUser {
        self.user_in_app(&self.api_key).await
    }

    /// Signs up a new user, authenticates in the app of `api_key` and registers a device.
    pub async fn user_in_app(&self, api_key: &str) -> TestUser {
        let email = email();
        let login_key = random_bytes(32);
        let (status, body) = self
            .post(
                paths::ACCOUNTS_REGISTER,
                None,
                json!({"email": email, "salt": b64(&random_bytes(32)), "login_key": b64(&login_key)}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let mut user = self.login(&email, &login_key, api_key).await;
        (user.device_id, user.token) = self.device(&user.sign_in_token, "laptop").await;
        user
    }

    /// Authenticates an existing user; `device_id` is left nil and `token` is the sign-in token.
    pub async fn login(&self, email: &str, login_key: &[u8], api_key: &str) -> TestUser {
        let (status, body) = self
            .post(paths::AUTH, None, json!({"email": email, "login_key": b64(login_key), "api_key": api_key}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let token = body["token"].as_str().unwrap().to_owned();
        TestUser {
            email: email.to_owned(),
            login_key: login_key.to_vec(),
            sign_in_token: token.clone(),
            token,
            user_id: body["user_id"].as_str().unwrap().parse().unwrap(),
            app_id: body["app_id"].as_str().unwrap().parse().unwrap(),
            device_id: Uuid::nil(),
        }
    }

    /// Signs `user` in to the console: a token of the account alone, which manages the apps it owns.
    pub async fn console_token(&self, user: &TestUser) -> String {
        let body = json!({"email": user.email, "login_key": b64(&user.login_key)});
        let (status, body) = self.post(paths::ACCOUNTS_CONSOLE_AUTH, None, body).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Registers a device named `name` with a sign-in token (or the device's own) and returns its id and token.
    pub async fn device(&self, token: &str, name: &str) -> (Uuid, String) {
        let (status, body) = self.post(paths::DEVICES, Some(token), json!({"name": name, "platform": "linux"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (body["id"].as_str().unwrap().parse().unwrap(), body["token"].as_str().unwrap().to_owned())
    }

    /// Signs `user` (of this server's app) in again and registers another device named `name`: the user as that
    /// device.
    pub async fn other_device(&self, user: &TestUser, name: &str) -> TestUser {
        assert_eq!(user.app_id, self.app_id, "other_device signs in to this server's app");
        let mut other = self.login(&user.email, &user.login_key, &self.api_key).await;
        (other.device_id, other.token) = self.device(&other.sign_in_token, name).await;
        other
    }

    /// Pushes `entries` as (change id, payload) and returns the response.
    pub async fn push(&self, user: &TestUser, entries: &[(Uuid, Vec<u8>)]) -> (StatusCode, Value) {
        let entries: Vec<Value> =
            entries.iter().map(|(id, payload)| json!({"change_id": id, "payload": b64(payload)})).collect();
        self.post(paths::PUSH, Some(&user.token), json!({"device_id": user.device_id, "entries": entries})).await
    }

    /// Pulls every entry after `cursor`, page by page, as (seq, change id, payload).
    pub async fn pull_all(&self, token: &str, mut cursor: u64) -> Vec<(u64, Uuid, Vec<u8>)> {
        let mut all = Vec::new();
        loop {
            let (status, body) = self.post(paths::PULL, Some(token), json!({"cursor": cursor})).await;
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

/// `n` entries of 64 random bytes, each with a new change id.
pub fn entries(n: usize) -> Vec<(Uuid, Vec<u8>)> {
    (0..n).map(|_| (Uuid::now_v7(), random_bytes(64))).collect()
}

/// An email address no other test uses.
pub fn email() -> String {
    format!("{}@example.com", Uuid::new_v4())
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    getrandom::fill(&mut bytes).expect("random bytes");
    bytes
}

/// Standard base64 with padding, as the protocol writes binary fields.
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
