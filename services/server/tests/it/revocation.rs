//! Tokens bound to devices: a removed device is shut out of every route at once, open streams and signed blob URLs
//! included; a device's token acts only as its device; a sign-in token sets up but does not sync; and a stream
//! does not outlive its token.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use synckit_testkit::{Engine, TestServer, TestUser, b64, code, entries, on_each_engine, random_bytes};
use uuid::Uuid;

use crate::events::EventStream;

on_each_engine!(
    a_removed_device_is_shut_out_of_every_route,
    a_devices_token_pushes_only_as_its_device,
    a_sign_in_token_sets_up_but_does_not_sync,
    an_event_stream_ends_when_its_token_expires,
);

/// A server whose event streams beat (and check their token) every second.
async fn quick_heartbeats(engine: Engine) -> TestServer {
    TestServer::start_with(engine, |s| s.events.heartbeat = Duration::from_secs(1)).await
}

/// Asks for an upload URL for `bytes` under a new hash; returns the hash and the answer.
async fn begin_upload(app: &TestServer, user: &TestUser, bytes: &[u8]) -> (String, Value) {
    let hash = hex::encode(random_bytes(32));
    let request = json!({"hash": hash, "size": bytes.len(), "checksum_sha256": b64(&Sha256::digest(bytes))});
    let (status, body) = app.post("/api/sync/blobs/upload", Some(&user.token), request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (hash, body)
}

/// PUTs `bytes` to a signed upload URL; returns the store's status.
async fn put(app: &TestServer, url: &str, bytes: &[u8]) -> StatusCode {
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    http.put(format!("{}{url}", app.url)).body(bytes.to_vec()).send().await.unwrap().status()
}

async fn get(app: &TestServer, url: &str) -> StatusCode {
    app.http.get(format!("{}{url}", app.url)).send().await.unwrap().status()
}

async fn a_removed_device_is_shut_out_of_every_route(engine: Engine) {
    let app = quick_heartbeats(engine).await;
    let laptop = app.user().await;
    let phone = app.other_device(&laptop, "phone").await;
    let t = Some(laptop.token.as_str());

    // The laptop syncs, holds a signed URL of each kind, and listens.
    assert_eq!(app.push(&laptop, &entries(2)).await.0, StatusCode::OK);
    let stored = b"ciphertext".to_vec();
    let (hash, begun) = begin_upload(&app, &laptop, &stored).await;
    assert!(put(&app, begun["upload_url"].as_str().unwrap(), &stored).await.is_success());
    let (status, _) = app.post("/api/sync/blobs/confirm", t, json!({"hash": hash, "size": stored.len()})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, download) = app.post("/api/sync/blobs/download", t, json!({"hash": hash})).await;
    let download_url = download["download_url"].as_str().unwrap().to_owned();
    assert_eq!(get(&app, &download_url).await, StatusCode::OK);
    let pending = b"more ciphertext".to_vec();
    let (pending_hash, begun) = begin_upload(&app, &laptop, &pending).await;
    let upload_url = begun["upload_url"].as_str().unwrap().to_owned();
    let mut events = EventStream::open(&app, &laptop.token, None).await.unwrap();
    events.until("event: hello").await;

    // The laptop is lost: the phone removes it.
    let path = format!("/api/sync/devices/{}", laptop.device_id);
    assert_eq!(app.send(Method::DELETE, &path, Some(&phone.token), None).await.0, StatusCode::NO_CONTENT);

    // Every route refuses the laptop's token from now on.
    let refused = |(status, body): (StatusCode, Value), route: &str| {
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "device_removed"), "{route}: {body}");
    };
    refused(app.push(&laptop, &entries(1)).await, "push");
    refused(app.post("/api/sync/pull", t, json!({"cursor": 0})).await, "pull");
    refused(app.get("/api/sync/status", t).await, "status");
    refused(app.get("/api/sync/keys", t).await, "get keys");
    refused(app.send(Method::PUT, "/api/sync/keys", t, Some(json!({"envelope": b64(b"evil")}))).await, "put keys");
    refused(app.get("/api/sync/devices", t).await, "list devices");
    refused(app.post("/api/sync/devices", t, json!({"name": "laptop", "platform": "linux"})).await, "re-register");
    refused(app.post("/api/sync/devices", t, json!({"name": "evil", "platform": "linux"})).await, "register");
    refused(app.send(Method::DELETE, &format!("/api/sync/devices/{}", phone.device_id), t, None).await, "delete");
    let (status, body) = app
        .post(
            "/api/accounts/password",
            t,
            json!({"current_login_key": b64(&laptop.login_key), "salt": b64(&random_bytes(32)),
                   "login_key": b64(&random_bytes(32))}),
        )
        .await;
    refused((status, body), "password");
    refused(upload_of_nothing(&app, &laptop).await, "blob upload");
    refused(app.post("/api/sync/blobs/confirm", t, json!({"hash": hash, "size": stored.len()})).await, "confirm");
    refused(app.post("/api/sync/blobs/download", t, json!({"hash": hash})).await, "download");
    // The signed URLs it already holds, too.
    assert_eq!(get(&app, &download_url).await, StatusCode::UNAUTHORIZED, "a signed download URL");
    assert_eq!(put(&app, &upload_url, &pending).await, StatusCode::UNAUTHORIZED, "a signed upload URL");
    let (status, _) =
        app.post("/api/sync/blobs/confirm", Some(&phone.token), json!({"hash": pending_hash, "size": 15})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was uploaded through the revoked URL");
    // Its open stream closes within a heartbeat, and it cannot open another.
    assert!(events.closes().await, "the removed device's event stream is closed");
    let (status, body) = EventStream::open(&app, &laptop.token, None).await.err().expect("refused");
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "device_removed"));

    // The phone is untouched, and nothing the laptop tried was stored.
    let (status, body) = app.get("/api/sync/status", Some(&phone.token)).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"change_count": 2, "cursor": 2})));
    let (_, key) = app.get("/api/sync/keys", Some(&phone.token)).await;
    assert_eq!(code(&key), "key_not_found");
    let (_, devices) = app.get("/api/sync/devices", Some(&phone.token)).await;
    assert_eq!(devices.as_array().unwrap().len(), 1, "{devices}");
}

/// Asks for an upload URL, with a token expected to be refused.
async fn upload_of_nothing(app: &TestServer, user: &TestUser) -> (StatusCode, Value) {
    let request = json!({"hash": hex::encode(random_bytes(32)), "size": 1, "checksum_sha256": b64(&[0; 32])});
    app.post("/api/sync/blobs/upload", Some(&user.token), request).await
}

async fn a_devices_token_pushes_only_as_its_device(engine: Engine) {
    let app = TestServer::start(engine).await;
    let laptop = app.user().await;
    let phone = app.other_device(&laptop, "phone").await;

    // The laptop's token, claiming to be the phone.
    let mut impostor = laptop.clone();
    impostor.device_id = phone.device_id;
    let (status, body) = app.push(&impostor, &entries(1)).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "device_mismatch"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains(&laptop.device_id.to_string()), "{body}");
    let (_, status) = app.get("/api/sync/status", Some(&phone.token)).await;
    assert_eq!(status["change_count"], 0, "nothing was stored");

    // Each pushes as itself, and pulls see who pushed.
    assert_eq!(app.push(&laptop, &entries(1)).await.0, StatusCode::OK);
    assert_eq!(app.push(&phone, &entries(1)).await.0, StatusCode::OK);
    let (_, page) = app.post("/api/sync/pull", Some(&phone.token), json!({"cursor": 0})).await;
    let pushers: Vec<&str> =
        page["entries"].as_array().unwrap().iter().map(|e| e["device_id"].as_str().unwrap()).collect();
    assert_eq!(pushers, [laptop.device_id.to_string(), phone.device_id.to_string()]);
}

async fn a_sign_in_token_sets_up_but_does_not_sync(engine: Engine) {
    let app = TestServer::start(engine).await;
    let existing = app.user().await;
    let user = app.login(&existing.email, &existing.login_key, &app.api_key).await;
    let t = Some(user.token.as_str());

    // Short-lived.
    let (_, body) = app
        .post(
            "/api/sync/auth",
            None,
            json!({"email": user.email, "login_key": b64(&user.login_key), "api_key": app.api_key}),
        )
        .await;
    let expires_at = time::OffsetDateTime::parse(
        body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(expires_at <= time::OffsetDateTime::now_utc() + time::Duration::minutes(15), "{body}");

    // It does not sync.
    let needs_device = |(status, body): (StatusCode, Value), route: &str| {
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "device_token_required"), "{route}: {body}");
    };
    let push =
        json!({"device_id": existing.device_id, "entries": [{"change_id": Uuid::now_v7(), "payload": b64(b"x")}]});
    needs_device(app.post("/api/sync/push", t, push).await, "push");
    needs_device(app.post("/api/sync/pull", t, json!({"cursor": 0})).await, "pull");
    needs_device(app.get("/api/sync/status", t).await, "status");
    needs_device(EventStream::open(&app, &user.token, None).await.err().expect("refused"), "events");
    needs_device(upload_of_nothing(&app, &user).await, "blob upload");

    // It sets up: the key envelope, the device list, a device (whose token then syncs).
    let (status, _) = app.send(Method::PUT, "/api/sync/keys", t, Some(json!({"envelope": b64(b"wrapped")}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.get("/api/sync/keys", t).await.0, StatusCode::OK);
    assert_eq!(app.get("/api/sync/devices", t).await.1.as_array().unwrap().len(), 1);
    let (device_id, token) = app.device(&user.token, "desktop").await;
    let desktop = TestUser { device_id, token, ..user.clone() };
    assert_eq!(app.push(&desktop, &entries(1)).await.0, StatusCode::OK);
    assert_ne!(existing.device_id, desktop.device_id);
}

async fn an_event_stream_ends_when_its_token_expires(engine: Engine) {
    use jsonwebtoken::{EncodingKey, Header, encode};
    // Heartbeats far apart: the stream must end at the token's expiry, not at the next check.
    let app = TestServer::start_with(engine, |s| s.events.heartbeat = Duration::from_secs(60)).await;
    let user = app.user().await;
    let expires = time::OffsetDateTime::now_utc().unix_timestamp() + 2;
    let claims = json!({"sub": user.user_id, "app": user.app_id, "tv": 0, "dev": user.device_id, "iss": "synckit",
                        "aud": "synckit-sync", "iat": expires - 10, "exp": expires});
    let secret = EncodingKey::from_secret(synckit_testkit::TOKEN_SECRET.as_bytes());
    let short_lived = encode(&Header::default(), &claims, &secret).unwrap();

    let mut events = EventStream::open(&app, &short_lived, None).await.unwrap();
    events.until("event: hello").await;
    assert!(events.closes().await, "the stream ends when its token expires");
    let (status, body) = EventStream::open(&app, &short_lived, None).await.err().expect("refused");
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "token_expired"));
}
