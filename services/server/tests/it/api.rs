//! Every endpoint over real HTTP, on the embedded default and on Postgres.

use reqwest::StatusCode;
use serde_json::{Value, json};
use synckit_testkit::{TestServer, b64, code, entries, on_each_engine, random_bytes, unb64};
use uuid::Uuid;

on_each_engine!(
    register_prelogin_and_authenticate,
    wrong_credentials_are_refused,
    password_change_revokes_older_tokens,
    password_change_rewraps_the_key_together,
    devices_upsert_list_delete,
    key_envelopes_are_versioned,
    push_pull_status_round_trip,
    retried_push_stores_nothing_twice,
    pull_pages_of_500,
    pull_pages_stop_at_4_mib,
    bad_push_requests_change_nothing,
    bad_pull_requests,
    tokens_must_be_valid,
    users_and_apps_are_isolated,
    health_openapi_and_unknown_routes,
    every_answer_is_documented,
);

async fn register_prelogin_and_authenticate(app: TestServer) {
    let salt = random_bytes(32);
    let login_key = random_bytes(32);
    let (status, body) = app
        .post(
            "/api/accounts/register",
            None,
            json!({"email": " Ada@Example.com ", "salt": b64(&salt), "login_key": b64(&login_key)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let user_id = body["user_id"].as_str().unwrap().to_owned();

    // The same email in another case is the same account.
    let (status, body) = app
        .post(
            "/api/accounts/register",
            None,
            json!({"email": "ada@example.COM", "salt": b64(&salt), "login_key": b64(&login_key)}),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "email_taken"));

    let (status, body) = app.post("/api/accounts/prelogin", None, json!({"email": "ada@example.com"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(unb64(&body["salt"]), salt);
    assert_eq!(body["kdf"], json!({"algorithm": "argon2id", "memory_kib": 65536, "iterations": 3, "parallelism": 1}));

    // Unknown emails get a salt too, the same one every time, so pre-login does not reveal who has an account.
    let (_, first) = app.post("/api/accounts/prelogin", None, json!({"email": "nobody@example.com"})).await;
    let (_, second) = app.post("/api/accounts/prelogin", None, json!({"email": "nobody@example.com"})).await;
    let (_, other) = app.post("/api/accounts/prelogin", None, json!({"email": "someone@example.com"})).await;
    assert_eq!(first["salt"], second["salt"]);
    assert_ne!(first["salt"], other["salt"]);
    assert_eq!(unb64(&first["salt"]).len(), salt.len());

    let user = app.login("ada@example.com", &login_key, &app.api_key).await;
    assert_eq!(user.user_id.to_string(), user_id);
    assert_eq!(user.app_id, app.app_id);
    // The sign-in token sets up; the device's token syncs.
    let (status, body) = app.get("/api/sync/status", Some(&user.token)).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "device_token_required"));
    let (_, device_token) = app.device(&user.token, "laptop").await;
    let (status, body) = app.get("/api/sync/status", Some(&device_token)).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"change_count": 0, "cursor": 0})));
}

async fn wrong_credentials_are_refused(app: TestServer) {
    let user = app.user().await;
    let (status, body) = app
        .post(
            "/api/sync/auth",
            None,
            json!({"email": user.email, "login_key": b64(&random_bytes(32)), "api_key": app.api_key}),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_credentials"));
    let (status, body) = app
        .post(
            "/api/sync/auth",
            None,
            json!({"email": "nobody@example.com", "login_key": b64(&user.login_key), "api_key": app.api_key}),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_credentials"));
    let (status, body) = app
        .post(
            "/api/sync/auth",
            None,
            json!({"email": user.email, "login_key": b64(&user.login_key), "api_key": "sk_wrong"}),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_api_key"));

    // Malformed sign-ups name the problem.
    for (body, needle) in [
        (json!({"email": "not-an-email", "salt": b64(&[0; 32]), "login_key": b64(&[0; 32])}), "email"),
        (json!({"email": "x@example.com", "salt": b64(&[0; 16]), "login_key": b64(&[0; 32])}), "salt"),
        (json!({"email": "x@example.com", "salt": b64(&[0; 32]), "login_key": b64(&[0; 31])}), "login_key"),
        (json!({"email": "x@example.com", "salt": "%%%", "login_key": b64(&[0; 32])}), "base64"),
        (
            json!({"email": "x@example.com", "salt": b64(&[0; 32]), "login_key": b64(&[0; 32]), "password": "hunter2"}),
            "unknown field",
        ),
    ] {
        let (status, resp) = app.post("/api/accounts/register", None, body).await;
        assert_eq!((status, code(&resp)), (StatusCode::BAD_REQUEST, "invalid_request"), "{resp}");
        assert!(resp["error"]["message"].as_str().unwrap().contains(needle), "{resp} should mention {needle}");
    }
    let (_, body) = app.post("/api/accounts/prelogin", None, json!({"email": "x@example.com"})).await;
    assert!(body["salt"].is_string(), "none of the refused sign-ups created an account");
}

async fn password_change_revokes_older_tokens(app: TestServer) {
    let user = app.user().await;
    let other_session = app.login(&user.email, &user.login_key, &app.api_key).await;
    let new_key = random_bytes(32);
    let new_salt = random_bytes(32);

    let (status, body) = app
        .post(
            "/api/accounts/password",
            Some(&user.token),
            json!({"current_login_key": b64(&random_bytes(32)), "salt": b64(&new_salt), "login_key": b64(&new_key)}),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_credentials"));

    let (status, body) = app
        .post(
            "/api/accounts/password",
            Some(&user.token),
            json!({"current_login_key": b64(&user.login_key), "salt": b64(&new_salt), "login_key": b64(&new_key)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fresh = body["token"].as_str().unwrap().to_owned();

    for old in [&user.token, &other_session.token] {
        let (status, body) = app.get("/api/sync/status", Some(old)).await;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_token"), "old tokens are revoked");
    }
    assert_eq!(app.get("/api/sync/status", Some(&fresh)).await.0, StatusCode::OK);

    // The old login key no longer works; the new one does, and pre-login hands out the new salt.
    let (status, _) = app
        .post(
            "/api/sync/auth",
            None,
            json!({"email": user.email, "login_key": b64(&user.login_key), "api_key": app.api_key}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.login(&user.email, &new_key, &app.api_key).await;
    let (_, body) = app.post("/api/accounts/prelogin", None, json!({"email": user.email})).await;
    assert_eq!(unb64(&body["salt"]), new_salt);
}

async fn password_change_rewraps_the_key_together(app: TestServer) {
    let user = app.user().await;
    let t = Some(user.token.as_str());
    let put = json!({"envelope": b64(b"notes-v1")});
    assert_eq!(app.send(reqwest::Method::PUT, "/api/sync/keys", t, Some(put)).await.0, StatusCode::OK);
    // The same account in a second app of the deployment, with its own envelope.
    let photos = synckit_server::admin::create_app(&*app.engines.accounts, "Photos", &[]).await.unwrap();
    let in_photos = app.login(&user.email, &user.login_key, &photos.api_key).await;
    let put = json!({"envelope": b64(b"photos-v1")});
    let tp = Some(in_photos.token.as_str());
    assert_eq!(app.send(reqwest::Method::PUT, "/api/sync/keys", tp, Some(put)).await.0, StatusCode::OK);

    // Both envelopes are handed out together, whichever app asks.
    let (status, body) = app.get("/api/accounts/keys", t).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut listed: Vec<(String, Vec<u8>, u64)> = body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["app_id"].as_str().unwrap().to_owned(), unb64(&k["envelope"]), k["version"].as_u64().unwrap()))
        .collect();
    listed.sort();
    let mut expected =
        vec![(app.app_id.to_string(), b"notes-v1".to_vec(), 1), (photos.app_id.to_string(), b"photos-v1".to_vec(), 1)];
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(app.get("/api/accounts/keys", None).await.0, StatusCode::UNAUTHORIZED);

    let (new_salt, new_key) = (random_bytes(32), random_bytes(32));
    let change = |keys: Value| {
        json!({"current_login_key": b64(&user.login_key), "salt": b64(&new_salt), "login_key": b64(&new_key),
               "keys": keys})
    };
    let rewrap = |app_id: Uuid, envelope: &[u8], expected: u64| json!({"app_id": app_id, "envelope": b64(envelope), "expected_version": expected});
    // Leaving an app out, re-wrapping a stale version, or the old single-key form: nothing changes, not even the
    // password.
    let conflict = (StatusCode::CONFLICT, "version_conflict");
    for (refused, answer) in [
        (change(json!([rewrap(app.app_id, b"notes-v2", 1)])), conflict),
        (change(json!([rewrap(app.app_id, b"notes-v2", 1), rewrap(photos.app_id, b"photos-v2", 0)])), conflict),
        (
            json!({"current_login_key": b64(&user.login_key), "salt": b64(&new_salt), "login_key": b64(&new_key),
                   "key": {"envelope": b64(b"notes-v2"), "expected_version": 1}}),
            (StatusCode::BAD_REQUEST, "invalid_request"),
        ),
    ] {
        let (status, body) = app.post("/api/accounts/password", t, refused).await;
        assert_eq!((status, code(&body)), answer, "{body}");
        assert_eq!(app.get("/api/sync/status", t).await.0, StatusCode::OK, "the token still works");
        app.login(&user.email, &user.login_key, &app.api_key).await;
        assert_eq!(unb64(&app.get("/api/sync/keys", tp).await.1["envelope"]), b"photos-v1");
    }

    let every_app = json!([rewrap(photos.app_id, b"photos-v2", 1), rewrap(app.app_id, b"notes-v2", 1)]);
    let (status, body) = app.post("/api/accounts/password", t, change(every_app)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fresh = body["token"].as_str().unwrap();
    let (_, key) = app.get("/api/sync/keys", Some(fresh)).await;
    assert_eq!((unb64(&key["envelope"]), key["version"].as_u64()), (b"notes-v2".to_vec(), Some(2)));
    assert_eq!(app.get("/api/sync/keys", tp).await.0, StatusCode::UNAUTHORIZED, "every app's tokens are revoked");
    let in_photos = app.login(&user.email, &new_key, &photos.api_key).await;
    let (_, key) = app.get("/api/sync/keys", Some(&in_photos.token)).await;
    assert_eq!((unb64(&key["envelope"]), key["version"].as_u64()), (b"photos-v2".to_vec(), Some(2)));
}

async fn devices_upsert_list_delete(app: TestServer) {
    let user = app.user().await; // has "laptop"
    let signed_in = Some(user.sign_in_token.as_str());
    let (status, phone) = app.post("/api/sync/devices", signed_in, json!({"name": "Phone", "platform": "ios"})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(phone["token"].is_string() && phone["expires_at"].is_string(), "{phone}");
    let (_, again) = app.post("/api/sync/devices", signed_in, json!({"name": "Phone", "platform": "android"})).await;
    assert_eq!(again["id"], phone["id"], "registering the same name again returns the same device");
    assert_eq!(again["platform"], "android");
    // A device's token registers only its own device (which renews the token), never another.
    let own = app.post("/api/sync/devices", Some(&user.token), json!({"name": "laptop", "platform": "linux"})).await;
    assert_eq!((own.0, own.1["id"].as_str()), (StatusCode::OK, Some(user.device_id.to_string().as_str())));
    for name in ["Phone", "new"] {
        let (status, body) =
            app.post("/api/sync/devices", Some(&user.token), json!({"name": name, "platform": "ios"})).await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "device_mismatch"), "{name}");
    }

    let (status, list) = app.get("/api/sync/devices", Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["laptop", "Phone"]);

    // Another user cannot see or delete them.
    let other = app.user().await;
    let (_, theirs) = app.get("/api/sync/devices", Some(&other.token)).await;
    assert_eq!(theirs.as_array().unwrap().len(), 1);
    let path = format!("/api/sync/devices/{}", phone["id"].as_str().unwrap());
    let (status, body) = app.send(reqwest::Method::DELETE, &path, Some(&other.token), None).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "device_not_found"));

    let (status, _) = app.send(reqwest::Method::DELETE, &path, Some(&user.token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.send(reqwest::Method::DELETE, &path, Some(&user.token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) =
        app.send(reqwest::Method::DELETE, "/api/sync/devices/not-a-uuid", Some(&user.token), None).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_request"));
    let (_, list) = app.get("/api/sync/devices", Some(&user.token)).await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    for name in ["  ", "nul\u{0}byte", &"x".repeat(201)] {
        let (status, body) =
            app.post("/api/sync/devices", Some(&user.token), json!({"name": name, "platform": "ios"})).await;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_request"), "{name:?}");
    }
    // The scheme name of the Authorization header is case-insensitive.
    let resp = app
        .http
        .get(format!("{}/api/sync/devices", app.url))
        .header("authorization", format!("bearer {}", user.token))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

async fn key_envelopes_are_versioned(app: TestServer) {
    let user = app.user().await;
    let t = Some(user.token.as_str());
    let (status, body) = app.get("/api/sync/keys", t).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "key_not_found"));

    let put = |envelope: Vec<u8>, expected: Option<u64>| {
        let mut body = json!({"envelope": b64(&envelope)});
        if let Some(v) = expected {
            body["expected_version"] = json!(v);
        }
        app.send(reqwest::Method::PUT, "/api/sync/keys", t, Some(body))
    };
    assert_eq!(put(b"first".to_vec(), None).await, (StatusCode::OK, json!({"version": 1})));
    // A second device setting up "new" encryption must not overwrite the key.
    let (status, body) = put(b"second".to_vec(), None).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "version_conflict"));
    assert_eq!(put(b"rewrapped".to_vec(), Some(1)).await, (StatusCode::OK, json!({"version": 2})));
    let (status, _) = put(b"stale".to_vec(), Some(1)).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, body) = put(vec![0; 4097], Some(2)).await;
    assert_eq!((status, code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "envelope_too_large"));
    assert_eq!(put(vec![7; 4096], Some(2)).await.0, StatusCode::OK, "exactly 4 KiB is allowed");

    let (status, body) = app.get("/api/sync/keys", t).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((unb64(&body["envelope"]), body["version"].as_u64()), (vec![7; 4096], Some(3)));
}

async fn push_pull_status_round_trip(app: TestServer) {
    let user = app.user().await;
    let sent = entries(3);
    let (status, body) = app.push(&user, &sent).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"cursor": 3, "accepted": 3, "duplicates": 0})));

    let (status, page) = app.post("/api/sync/pull", Some(&user.token), json!({"cursor": 0})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((page["cursor"].as_u64(), page["has_more"].as_bool()), (Some(3), Some(false)));
    let got = page["entries"].as_array().unwrap();
    for (i, (e, (id, payload))) in got.iter().zip(&sent).enumerate() {
        assert_eq!(e["seq"].as_u64(), Some(i as u64 + 1));
        assert_eq!(e["change_id"].as_str().unwrap(), id.to_string());
        assert_eq!(e["device_id"].as_str().unwrap(), user.device_id.to_string());
        assert_eq!(unb64(&e["payload"]), *payload);
        assert!(time_parses(&e["created_at"]), "{}", e["created_at"]);
    }

    // Another device of the same user sees the same changes and pushes after them.
    let mut phone = user.clone();
    (phone.device_id, phone.token) = app.device(&user.sign_in_token, "phone").await;
    let (_, body) = app.push(&phone, &entries(2)).await;
    assert_eq!(body["cursor"], 5);
    let (_, page) = app.post("/api/sync/pull", Some(&user.token), json!({"cursor": 3})).await;
    let seqs: Vec<u64> = page["entries"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [4, 5]);
    assert_eq!(page["entries"][0]["device_id"].as_str().unwrap(), phone.device_id.to_string());

    let (status, body) = app.get("/api/sync/status", Some(&user.token)).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"change_count": 5, "cursor": 5})));

    // Pulling at the head is an empty page, not an error.
    let (status, page) = app.post("/api/sync/pull", Some(&user.token), json!({"cursor": 5})).await;
    assert_eq!((status, page), (StatusCode::OK, json!({"entries": [], "cursor": 5, "has_more": false})));
}

fn time_parses(v: &serde_json::Value) -> bool {
    v.as_str().is_some_and(|s| time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok())
}

async fn retried_push_stores_nothing_twice(app: TestServer) {
    let user = app.user().await;
    let batch = entries(4);
    let (_, first) = app.push(&user, &batch).await;
    // The answer was lost; the device sends the identical request again, then a batch overlapping it.
    let (status, retry) = app.push(&user, &batch).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(retry, json!({"cursor": first["cursor"], "accepted": 0, "duplicates": 4}));
    let mut overlapping = batch[2..].to_vec();
    overlapping.extend(entries(1));
    let (_, body) = app.push(&user, &overlapping).await;
    assert_eq!(body, json!({"cursor": 5, "accepted": 1, "duplicates": 2}));

    let all = app.pull_all(&user.token, 0).await;
    assert_eq!(all.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(all[..4].iter().map(|e| e.1).collect::<Vec<_>>(), batch.iter().map(|e| e.0).collect::<Vec<_>>());
}

async fn pull_pages_of_500(app: TestServer) {
    let user = app.user().await;
    for _ in 0..3 {
        let (status, _) = app.push(&user, &entries(500)).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, body) = app.push(&user, &entries(1)).await;
    assert_eq!(body["cursor"], 1501);

    let (_, page) = app.post("/api/sync/pull", Some(&user.token), json!({"cursor": 0})).await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 500, "the default page is 500");
    assert_eq!((page["cursor"].as_u64(), page["has_more"].as_bool()), (Some(500), Some(true)));
    let (_, page) = app.post("/api/sync/pull", Some(&user.token), json!({"cursor": 1400, "limit": 100})).await;
    assert_eq!((page["cursor"].as_u64(), page["has_more"].as_bool()), (Some(1500), Some(true)));
    let (_, page) = app.post("/api/sync/pull", Some(&user.token), json!({"cursor": 1500, "limit": 100})).await;
    assert_eq!((page["cursor"].as_u64(), page["has_more"].as_bool()), (Some(1501), Some(false)));

    let all = app.pull_all(&user.token, 0).await;
    assert_eq!(all.len(), 1501);
    assert!(all.iter().enumerate().all(|(i, e)| e.0 == i as u64 + 1));
}

/// 100 entries of 64 KiB: a page of them would be 6.4 MiB of payloads, so pages stop at 4 MiB, 64 entries.
async fn pull_pages_stop_at_4_mib(app: TestServer) {
    let user = app.user().await;
    let sent: Vec<(Uuid, Vec<u8>)> = (0..100).map(|_| (Uuid::now_v7(), random_bytes(64 * 1024))).collect();
    assert_eq!(app.push(&user, &sent).await.0, StatusCode::OK);

    let (status, page) = app.post("/api/sync/pull", Some(&user.token), json!({"cursor": 0})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["entries"].as_array().unwrap().len(), 64);
    assert_eq!((page["cursor"].as_u64(), page["has_more"].as_bool()), (Some(64), Some(true)));
    let (_, page) = app.post("/api/sync/pull", Some(&user.token), json!({"cursor": 64})).await;
    assert_eq!((page["cursor"].as_u64(), page["has_more"].as_bool()), (Some(100), Some(false)));

    let all = app.pull_all(&user.token, 0).await;
    assert_eq!(all.into_iter().map(|e| (e.1, e.2)).collect::<Vec<_>>(), sent);
}

async fn bad_push_requests_change_nothing(app: TestServer) {
    let user = app.user().await;
    app.push(&user, &entries(2)).await;
    let t = Some(user.token.as_str());
    let entry = |payload: &[u8]| json!({"change_id": Uuid::now_v7(), "payload": b64(payload)});

    let too_many: Vec<_> = (0..501).map(|_| entry(b"x")).collect();
    let (status, body) = app.post("/api/sync/push", t, json!({"device_id": user.device_id, "entries": too_many})).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "too_many_entries"));

    let big = vec![0u8; 64 * 1024 + 1];
    let (status, body) = app
        .post("/api/sync/push", t, json!({"device_id": user.device_id, "entries": [entry(b"ok"), entry(&big)]}))
        .await;
    assert_eq!((status, code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "entry_too_large"));
    assert!(body["error"]["message"].as_str().unwrap().contains("entry 1"), "{body}");

    let (status, body) = app
        .post(
            "/api/sync/push",
            t,
            json!({"device_id": user.device_id, "entries": [{"change_id": Uuid::now_v7(), "payload": "not base64!"}]}),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_request"));
    assert!(body["error"]["message"].as_str().unwrap().contains("entries[0].payload"), "{body}");

    let (status, body) = app
        .post(
            "/api/sync/push",
            t,
            json!({"device_id": user.device_id, "entries": [{"change_id": "nope", "payload": ""}]}),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_request"));

    let (status, body) =
        app.post("/api/sync/push", t, json!({"device_id": user.device_id, "entries": [], "table": "secrets"})).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_request"), "unknown fields are refused");

    // Another user's device, and a device that does not exist: a device's token pushes only as its device.
    let other = app.user().await;
    for device in [other.device_id, Uuid::now_v7()] {
        let (status, body) =
            app.post("/api/sync/push", t, json!({"device_id": device, "entries": [entry(b"x")]})).await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "device_mismatch"));
    }

    let resp = app
        .http
        .post(format!("{}/api/sync/push", app.url))
        .bearer_auth(&user.token)
        .header("content-type", "application/json")
        .body("{\"device_id\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(&resp.json().await.unwrap()), "invalid_json");

    // A struct as the array of its fields, which serde alone would read: the API speaks objects only.
    for (path, body) in [("/api/sync/push", json!([user.device_id, [entry(b"x")]])), ("/api/sync/pull", json!([0]))] {
        let (status, refused) = app.post(path, t, body).await;
        assert_eq!((status, code(&refused)), (StatusCode::BAD_REQUEST, "invalid_request"), "{path}: {refused}");
    }

    let resp =
        app.http.post(format!("{}/api/sync/push", app.url)).bearer_auth(&user.token).body("{}").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(code(&resp.json().await.unwrap()), "unsupported_media_type");

    let huge = format!(
        "{{\"device_id\": \"{}\", \"entries\": [{{\"change_id\": \"{}\", \"payload\": \"{}\"}}]}}",
        user.device_id,
        Uuid::now_v7(),
        "A".repeat(49 * 1024 * 1024)
    );
    let resp = app
        .http
        .post(format!("{}/api/sync/push", app.url))
        .bearer_auth(&user.token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(&resp.json().await.unwrap()), "body_too_large");

    // None of it was stored, and what was stored before is intact.
    let (_, status) = app.get("/api/sync/status", t).await;
    assert_eq!(status, json!({"change_count": 2, "cursor": 2}));
    assert_eq!(app.pull_all(&user.token, 0).await.len(), 2);
}

async fn bad_pull_requests(app: TestServer) {
    let user = app.user().await;
    app.push(&user, &entries(3)).await;
    let t = Some(user.token.as_str());
    let (status, body) = app.post("/api/sync/pull", t, json!({"cursor": 4})).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "cursor_beyond_head"));
    for limit in [0, 501] {
        let (status, body) = app.post("/api/sync/pull", t, json!({"cursor": 0, "limit": limit})).await;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_limit"));
    }
    let (status, body) = app.post("/api/sync/pull", t, json!({"cursor": -1})).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_request"));
    let (status, body) = app.post("/api/sync/pull", t, json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_request"));
}

async fn tokens_must_be_valid(app: TestServer) {
    use jsonwebtoken::{EncodingKey, Header, encode};
    let user = app.user().await;
    let claims = |exp: i64, aud: &str| json!({"sub": user.user_id, "app": user.app_id, "tv": 0, "dev": user.device_id, "iss": "synckit", "aud": aud, "iat": 0, "exp": exp});
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let sign = |claims: serde_json::Value, secret: &[u8]| {
        encode(&Header::default(), &claims, &EncodingKey::from_secret(secret)).unwrap()
    };
    let secret = synckit_testkit::TOKEN_SECRET.as_bytes();

    let cases = [
        (None, "missing_token"),
        (Some("garbage".to_owned()), "invalid_token"),
        (Some(sign(claims(now - 3600, "synckit-sync"), secret)), "token_expired"),
        (Some(sign(claims(now + 3600, "synckit-sync"), b"another-deployment-another-deployment")), "invalid_token"),
        (Some(sign(claims(now + 3600, "someone-else"), secret)), "invalid_token"),
        // The console's audience, even with every claim of an app's token: a console token never syncs.
        (Some(sign(claims(now + 3600, "synckit-console"), secret)), "invalid_token"),
    ];
    for (token, expected) in cases {
        for path in ["/api/sync/status", "/api/sync/devices", "/api/sync/keys"] {
            let (status, body) = app.get(path, token.as_deref()).await;
            assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, expected), "{path} with {token:?}");
        }
        let (status, _) = app.post("/api/sync/pull", token.as_deref(), json!({"cursor": 0})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) =
            app.post("/api/sync/push", token.as_deref(), json!({"device_id": user.device_id, "entries": []})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // A correctly signed token is accepted: the cases above failed for the reason they name.
    let valid = sign(claims(now + 3600, "synckit-sync"), secret);
    assert_eq!(app.get("/api/sync/status", Some(&valid)).await.0, StatusCode::OK);
}

async fn users_and_apps_are_isolated(app: TestServer) {
    let created = synckit_server::admin::create_app(&*app.engines.accounts, "Other app", &[]).await.unwrap();
    let a = app.user().await;
    let b = app.user().await;
    // The same person in another app: a different stream.
    let mut a_other_app = app.login(&a.email, &a.login_key, &created.api_key).await;
    assert_eq!(a_other_app.user_id, a.user_id);
    assert_eq!(a_other_app.app_id, created.app_id);
    (a_other_app.device_id, a_other_app.token) = app.device(&a_other_app.token, "laptop").await;

    app.push(&a, &entries(3)).await;
    app.send(reqwest::Method::PUT, "/api/sync/keys", Some(&a.token), Some(json!({"envelope": b64(b"a's key")}))).await;

    for outsider in [&b, &a_other_app] {
        let t = Some(outsider.token.as_str());
        assert_eq!(app.get("/api/sync/status", t).await.1, json!({"change_count": 0, "cursor": 0}));
        assert_eq!(app.post("/api/sync/pull", t, json!({"cursor": 0})).await.1["entries"], json!([]));
        assert_eq!(code(&app.get("/api/sync/keys", t).await.1), "key_not_found");
        let devices = app.get("/api/sync/devices", t).await.1;
        assert_eq!(devices.as_array().unwrap().len(), 1);
        assert_ne!(devices[0]["id"].as_str().unwrap(), a.device_id.to_string());
        // Pushing through a's device is refused.
        let mut impostor = outsider.clone();
        impostor.device_id = a.device_id;
        assert_eq!(app.push(&impostor, &entries(1)).await.0, StatusCode::FORBIDDEN);
        // Their own pushes start their own sequence.
        assert_eq!(app.push(outsider, &entries(1)).await.1["cursor"], 1);
    }
    assert_eq!(app.get("/api/sync/status", Some(&a.token)).await.1, json!({"change_count": 3, "cursor": 3}));
}

async fn health_openapi_and_unknown_routes(app: TestServer) {
    assert_eq!(app.get("/healthz", None).await, (StatusCode::OK, json!({"status": "ok"})));
    assert_eq!(app.get("/readyz", None).await, (StatusCode::OK, json!({"status": "ready"})));

    let (status, doc) = app.get("/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    // The document has exactly the protocol's endpoints, and the server serves each with exactly the documented
    // methods: a route left out of the document, or a documented one not served, fails here. An unserved method
    // answers 405 `method_not_allowed` and an unserved path 404 `not_found`; anything else means it is routed.
    let paths = doc["paths"].as_object().unwrap();
    let documented: std::collections::BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    assert_eq!(documented, synckit_protocol::paths::ALL.iter().copied().collect(), "the OpenAPI document's paths");
    for path in synckit_protocol::paths::ALL {
        let concrete = path.replace("{id}", &Uuid::nil().to_string()).replace("{hash}", &"0".repeat(64));
        for method in ["get", "post", "put", "patch", "delete"] {
            let (status, body) = app.send(method.to_uppercase().parse().unwrap(), &concrete, None, None).await;
            let served = !matches!(body["error"]["code"].as_str(), Some("not_found" | "method_not_allowed"));
            let in_doc = paths[*path].get(method).is_some();
            assert_eq!(served, in_doc, "{method} {path}: answered {status} {body}, documented: {in_doc}");
        }
    }
    for schema in ["PushRequest", "BlobUploadRequest", "BlobUploadResponse"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema} missing from the OpenAPI document");
    }

    let (status, body) = app.get("/api/sync/nothing-here", None).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, body) = app.get("/api/sync/push", None).await;
    assert_eq!((status, code(&body)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
}

/// Whatever an operation answers to a missing, bad or wrong kind of token, a body that is not JSON, not declared as
/// JSON, of the wrong shape or too large, or a valid token: the OpenAPI document lists that status for the
/// operation, with the answer's code in its description. (ops/schemathesis checks the same for generated requests.)
async fn every_answer_is_documented(app: TestServer) {
    use synckit_protocol::limits::MAX_PUBLIC_BODY_BYTES;
    let user = app.user().await;
    let console = app.console_token(&user).await;
    let (_, doc) = app.get("/api/openapi.json", None).await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", &Uuid::now_v7().to_string()).replace("{hash}", &"0".repeat(64));
        for (method, operation) in item.as_object().unwrap() {
            let mut probes: Vec<(Option<&str>, Option<&str>, &str)> = vec![
                (None, None, ""),
                (Some("garbage"), None, ""),
                (Some(&user.sign_in_token), None, ""),
                (Some(&user.token), None, ""),
                (Some(&console), None, ""),
            ];
            // One byte over the body limit: 16 KiB where no token is needed, 2 MiB elsewhere (push takes more, and
            // answers for the unknown field). Sent with a token the operation takes, since the token is checked before
            // the body is read: a server that refuses the token first stops reading, and the client could not finish
            // sending.
            let public = operation.get("security").is_none();
            let takes_console =
                operation["security"].as_array().is_some_and(|s| s.iter().any(|r| r.get("console").is_some()));
            let valid = if takes_console { console.as_str() } else { user.token.as_str() };
            let limit = if public { MAX_PUBLIC_BODY_BYTES } else { 2 * 1024 * 1024 };
            let too_large = format!("{{\"x\": \"{}\"}}", "A".repeat(limit));
            if operation.get("requestBody").is_some() {
                for token in [None, Some(valid)] {
                    probes.extend([
                        (token, Some("application/json"), "{"),
                        (token, Some("application/json"), "[]"),
                        (token, Some("application/json"), "{\"unknown\": 1}"),
                        (token, Some("text/plain"), "{}"),
                        (token, None, "{}"),
                    ]);
                }
                probes.push((Some(valid), Some("application/json"), too_large.as_str()));
            }
            for (token, content_type, body) in probes {
                let mut req =
                    app.http.request(method.to_uppercase().parse().unwrap(), format!("{}{concrete}", app.url));
                if let Some(token) = token {
                    req = req.bearer_auth(token);
                }
                if let Some(content_type) = content_type {
                    req = req.header("content-type", content_type);
                }
                if !body.is_empty() {
                    req = req.body(body.to_owned());
                }
                let resp = req.send().await.unwrap();
                let status = resp.status();
                let what =
                    format!("{method} {path} with token {}, {content_type:?}, body {:.20}", token.is_some(), body);
                let documented = &operation["responses"][status.as_str()];
                assert!(documented.is_object(), "{what}: answered {status}, which the document does not list");
                if !status.is_success() {
                    let body: Value = resp.json().await.unwrap();
                    let listed = documented["description"].as_str().unwrap();
                    // The token endpoint's own refusals are RFC 6749's body, whose `error` is the code.
                    let answered = match body["error"].as_str() {
                        Some(error) if path == "/oauth/token" => error,
                        _ => code(&body),
                    };
                    assert!(listed.contains(&format!("`{answered}`")), "{what}: {body} is not listed: {listed}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked} answers checked");
}
