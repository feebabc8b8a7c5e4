//! The recovery key's endpoints over real HTTP, on the embedded default and on Postgres: setting it needs a token
//! and the password, proving it is throttled like a password, and a recovery replaces password, recovery key and
//! every app's envelopes together or changes nothing.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use synckit_testkit::{TestServer, TestUser, b64, code, engine, on_each_engine, random_bytes, unb64};
use uuid::Uuid;

on_each_engine!(
    setting_a_recovery_key_needs_a_token_and_the_password,
    a_recovery_replaces_password_recovery_key_and_envelopes_together,
    a_recovery_that_leaves_an_app_out_changes_nothing,
);

/// The request that sets `recovery_login_key`, sealing `envelopes` `(app, envelope, key version)`.
fn set_request(user: &TestUser, recovery_login_key: &[u8], envelopes: &[(Uuid, &[u8], u64)]) -> Value {
    let keys: Vec<Value> = envelopes
        .iter()
        .map(|(app, envelope, version)| json!({"app_id": app, "envelope": b64(envelope), "expected_version": version}))
        .collect();
    json!({"current_login_key": b64(&user.login_key), "recovery_login_key": b64(recovery_login_key), "keys": keys})
}

/// `POST /api/accounts/recovery`: the status and body.
async fn prove(app: &TestServer, email: &str, recovery_login_key: &[u8]) -> (StatusCode, Value) {
    app.post("/api/accounts/recovery", None, json!({"email": email, "recovery_login_key": b64(recovery_login_key)}))
        .await
}

/// A user with a key envelope in this server's app, and its token.
async fn user_with_key(app: &TestServer, envelope: &[u8]) -> TestUser {
    let user = app.user().await;
    let put = json!({"envelope": b64(envelope)});
    assert_eq!(app.send(Method::PUT, "/api/sync/keys", Some(&user.token), Some(put)).await.0, StatusCode::OK);
    user
}

async fn setting_a_recovery_key_needs_a_token_and_the_password(app: TestServer) {
    let user = user_with_key(&app, b"notes").await;
    let recovery = random_bytes(32);
    let request = set_request(&user, &recovery, &[(app.app_id, b"notes, recovery", 1)]);

    let (status, body) = app.post("/api/accounts/recovery-key", None, request.clone()).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "missing_token"));
    let mut wrong_password = request.clone();
    wrong_password["current_login_key"] = json!(b64(&random_bytes(32)));
    let (status, body) = app.post("/api/accounts/recovery-key", Some(&user.token), wrong_password).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_credentials"));
    // A stale version, or an app left out: nothing is set.
    for stale in [
        set_request(&user, &recovery, &[(app.app_id, b"notes, recovery", 2)]),
        set_request(&user, &recovery, &[]),
        set_request(&user, &recovery, &[(app.app_id, b"notes, recovery", 1), (Uuid::now_v7(), b"stray", 1)]),
    ] {
        let (status, body) = app.post("/api/accounts/recovery-key", Some(&user.token), stale).await;
        assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "version_conflict"), "{body}");
    }
    let (status, body) = prove(&app, &user.email, &recovery).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_recovery_key"), "none was set");

    let (status, body) = app.post("/api/accounts/recovery-key", Some(&user.token), request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"app_ids": [app.app_id]}));
    let (status, body) = prove(&app, &user.email, &recovery).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], json!(user.user_id));
    assert_eq!(body["keys"][0]["app_id"], json!(app.app_id));
    assert_eq!(body["keys"][0]["version"], json!(1));
    assert_eq!(unb64(&body["keys"][0]["recovery_envelope"]), b"notes, recovery");
    // Proving one is no sign-in, and a wrong one, an unknown email or an account without one all look alike.
    assert!(body.get("token").is_none());
    for (email, key) in [
        (user.email.clone(), random_bytes(32)),
        (synckit_testkit::email(), recovery.clone()),
        (app.user().await.email, recovery.clone()),
    ] {
        let (status, body) = prove(&app, &email, &key).await;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_recovery_key"), "{email}");
    }

    // Replacing it: the one before stops working.
    let replacement = random_bytes(32);
    let request = set_request(&user, &replacement, &[(app.app_id, b"notes, second recovery", 1)]);
    assert_eq!(app.post("/api/accounts/recovery-key", Some(&user.token), request).await.0, StatusCode::OK);
    assert_eq!(prove(&app, &user.email, &recovery).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(prove(&app, &user.email, &replacement).await.0, StatusCode::OK);
}

/// `POST /api/accounts/recover` for `user` with `recovery`, moving to `next`; `keys` are `(app, version)`.
fn recover_request(
    user: &TestUser,
    api_key: &str,
    recovery: &[u8],
    next: &[u8],
    login_key: &[u8],
    keys: &[(Uuid, u64)],
) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|(app, version)| {
            json!({"app_id": app, "envelope": b64(format!("{app} new password").as_bytes()),
                   "recovery_envelope": b64(format!("{app} next recovery").as_bytes()), "expected_version": version})
        })
        .collect();
    json!({"email": user.email, "recovery_login_key": b64(recovery), "api_key": api_key, "salt": b64(&random_bytes(32)),
           "login_key": b64(login_key), "new_recovery_login_key": b64(next), "keys": keys})
}

async fn a_recovery_replaces_password_recovery_key_and_envelopes_together(app: TestServer) {
    let user = user_with_key(&app, b"notes").await;
    let other_session = app.login(&user.email, &user.login_key, &app.api_key).await;
    let recovery = random_bytes(32);
    let set = set_request(&user, &recovery, &[(app.app_id, b"notes, recovery", 1)]);
    assert_eq!(app.post("/api/accounts/recovery-key", Some(&user.token), set).await.0, StatusCode::OK);

    let (next, new_login_key) = (random_bytes(32), random_bytes(32));
    let request = |recovery: &[u8], next: &[u8], version| {
        recover_request(&user, &app.api_key, recovery, next, &new_login_key, &[(app.app_id, version)])
    };
    // Refused: a wrong recovery key, a stale version, the same recovery key again, a wrong API key.
    let mut bad_api_key = request(&recovery, &next, 1);
    bad_api_key["api_key"] = json!("sk_nothing");
    for (refused, answer) in [
        (request(&random_bytes(32), &next, 1), (StatusCode::UNAUTHORIZED, "invalid_recovery_key")),
        (request(&recovery, &next, 2), (StatusCode::CONFLICT, "version_conflict")),
        (request(&recovery, &recovery, 1), (StatusCode::BAD_REQUEST, "invalid_request")),
        (bad_api_key, (StatusCode::UNAUTHORIZED, "invalid_api_key")),
    ] {
        let (status, body) = app.post("/api/accounts/recover", None, refused).await;
        assert_eq!((status, code(&body)), answer, "{body}");
        // Nothing changed: tokens, password, envelope and recovery key as they were.
        assert_eq!(app.get("/api/sync/status", Some(&user.token)).await.0, StatusCode::OK);
        app.login(&user.email, &user.login_key, &app.api_key).await;
        assert_eq!(unb64(&app.get("/api/sync/keys", Some(&user.token)).await.1["envelope"]), b"notes");
        assert_eq!(prove(&app, &user.email, &recovery).await.0, StatusCode::OK);
    }

    let (status, body) = app.post("/api/accounts/recover", None, request(&recovery, &next, 1)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["user_id"].clone(), body["app_id"].clone()), (json!(user.user_id), json!(app.app_id)));
    let fresh = body["token"].as_str().unwrap();

    // Every token before is revoked; the old password and the old recovery key are refused.
    for old in [&user.token, &other_session.token] {
        let (status, body) = app.get("/api/sync/status", Some(old)).await;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_token"));
    }
    let (status, _) = app
        .post(
            "/api/sync/auth",
            None,
            json!({"email": user.email, "login_key": b64(&user.login_key), "api_key": app.api_key}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = app.post("/api/accounts/recover", None, request(&recovery, &random_bytes(32), 2)).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_recovery_key"));
    // The new password signs in; the envelope and the recovery envelope are the new ones.
    let signed_in = app.login(&user.email, &new_login_key, &app.api_key).await;
    let (_, key) = app.get("/api/sync/keys", Some(fresh)).await;
    assert_eq!(unb64(&key["envelope"]), format!("{} new password", app.app_id).as_bytes());
    assert_eq!(key["version"], json!(2));
    let (_, key) = app.get("/api/sync/keys", Some(&signed_in.token)).await;
    assert_eq!(key["version"], json!(2));
    let (status, body) = prove(&app, &user.email, &next).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(unb64(&body["keys"][0]["recovery_envelope"]), format!("{} next recovery", app.app_id).as_bytes());
}

async fn a_recovery_that_leaves_an_app_out_changes_nothing(app: TestServer) {
    let user = user_with_key(&app, b"notes").await;
    let photos = synckit_server::admin::create_app(&*app.engines.accounts, "Photos", &[]).await.unwrap();
    let in_photos = app.login(&user.email, &user.login_key, &photos.api_key).await;
    let put = json!({"envelope": b64(b"photos")});
    assert_eq!(app.send(Method::PUT, "/api/sync/keys", Some(&in_photos.token), Some(put)).await.0, StatusCode::OK);
    let recovery = random_bytes(32);
    let set = set_request(&user, &recovery, &[(app.app_id, b"n", 1), (photos.app_id, b"p", 1)]);
    assert_eq!(app.post("/api/accounts/recovery-key", Some(&user.token), set).await.0, StatusCode::OK);

    let (next, login_key) = (random_bytes(32), random_bytes(32));
    let one_app = recover_request(&user, &app.api_key, &recovery, &next, &login_key, &[(app.app_id, 1)]);
    let (status, body) = app.post("/api/accounts/recover", None, one_app).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "version_conflict"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains(&photos.app_id.to_string()), "{body}");
    app.login(&user.email, &user.login_key, &app.api_key).await;
    assert_eq!(prove(&app, &user.email, &recovery).await.0, StatusCode::OK);

    // Both apps, from the photos app: its sign-in token comes back.
    let both = [(app.app_id, 1), (photos.app_id, 1)];
    let (status, body) = app
        .post(
            "/api/accounts/recover",
            None,
            recover_request(&user, &photos.api_key, &recovery, &next, &login_key, &both),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["app_id"], json!(photos.app_id));
    let (_, key) = app.get("/api/sync/keys", body["token"].as_str()).await;
    assert_eq!(unb64(&key["envelope"]), format!("{} new password", photos.app_id).as_bytes());
}

#[tokio::test]
async fn proving_a_recovery_key_is_throttled_like_a_password() {
    // A refill far longer than the test: nothing here waits for one.
    let app = TestServer::start_with(engine::embedded(), |s| {
        s.sign_in.account_burst = 3;
        s.sign_in.refill = Duration::from_secs(600);
    })
    .await;
    let user = user_with_key(&app, b"notes").await;
    let recovery = random_bytes(32);
    let set = set_request(&user, &recovery, &[(app.app_id, b"n", 1)]);
    assert_eq!(app.post("/api/accounts/recovery-key", Some(&user.token), set).await.0, StatusCode::OK);

    // The right key costs nothing; wrong ones wear the account's budget down, on both endpoints.
    assert_eq!(prove(&app, &user.email, &recovery).await.0, StatusCode::OK);
    assert_eq!(prove(&app, &user.email, &random_bytes(32)).await.0, StatusCode::UNAUTHORIZED);
    let wrong = recover_request(&user, &app.api_key, &random_bytes(32), &random_bytes(32), &random_bytes(32), &[]);
    assert_eq!(app.post("/api/accounts/recover", None, wrong.clone()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(prove(&app, &user.email, &random_bytes(32)).await.0, StatusCode::UNAUTHORIZED);
    let resp = app
        .http
        .post(format!("{}/api/accounts/recovery", app.url))
        .json(&json!({"email": user.email, "recovery_login_key": b64(&recovery)}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS, "throttled, the right key is refused too");
    assert!(resp.headers().get("retry-after").is_some());
    let (status, body) = app.post("/api/accounts/recover", None, wrong).await;
    assert_eq!((status, code(&body)), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
    // It is one budget with the password's: sign-in is held off too.
    let (status, _) = app
        .post(
            "/api/sync/auth",
            None,
            json!({"email": user.email, "login_key": b64(&user.login_key), "api_key": app.api_key}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}
