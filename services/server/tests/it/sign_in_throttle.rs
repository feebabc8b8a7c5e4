//! The sign-in throttle: wrong passwords wear down a budget per account and per client address; an exhausted one
//! answers 429 with `Retry-After`, whatever the password, and the right password works once that has passed.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use synckit_testkit::{TestServer, TestUser, b64, code, engine, random_bytes};

/// Signs in with `login_key`; returns the status, the `Retry-After` seconds and the body.
async fn sign_in(app: &TestServer, email: &str, login_key: &[u8]) -> (StatusCode, Option<u64>, Value) {
    let resp = app
        .http
        .post(format!("{}/api/sync/auth", app.url))
        .json(&json!({"email": email, "login_key": b64(login_key), "api_key": app.api_key}))
        .send()
        .await
        .unwrap();
    let retry_after = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
    (resp.status(), retry_after, resp.json().await.unwrap())
}

/// Waits out a 429, then signs in with the right password.
async fn right_password_after(app: &TestServer, user: &TestUser, retry_after: Option<u64>) {
    tokio::time::sleep(Duration::from_secs(retry_after.expect("a 429 carries Retry-After"))).await;
    let (status, _, body) = sign_in(app, &user.email, &user.login_key).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn wrong_passwords_for_one_account_are_throttled() {
    let app = TestServer::start_with(engine::embedded(), |s| {
        s.sign_in.account_burst = 3;
        s.sign_in.refill = Duration::from_secs(3);
    })
    .await;
    let user = app.user().await;
    // A typo, then the right password: straight in. The typo counts, the success does not.
    assert_eq!(sign_in(&app, &user.email, &random_bytes(32)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in(&app, &user.email, &user.login_key).await.0, StatusCode::OK);

    for _ in 0..2 {
        let (status, _, body) = sign_in(&app, &user.email, &random_bytes(32)).await;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_credentials"));
    }
    let (status, retry_after, body) = sign_in(&app, &user.email, &random_bytes(32)).await;
    assert_eq!((status, code(&body)), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"), "{body}");
    assert!(matches!(retry_after, Some(1..=3)), "{retry_after:?}");
    // Throttled, the right password is refused too: a guess learns nothing.
    let (status, _, _) = sign_in(&app, &user.email, &user.login_key).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Another account is not held up by this one.
    let other = app.user().await;
    assert_eq!(sign_in(&app, &other.email, &other.login_key).await.0, StatusCode::OK);

    right_password_after(&app, &user, retry_after).await;
}

#[tokio::test]
async fn wrong_passwords_from_one_address_are_throttled_across_accounts() {
    let app = TestServer::start_with(engine::embedded(), |s| {
        s.sign_in.address_burst = 3;
        s.sign_in.refill = Duration::from_secs(3);
    })
    .await;
    let user = app.user().await;
    // Guesses spread over accounts, known or not.
    for email in [user.email.clone(), synckit_testkit::email(), synckit_testkit::email()] {
        assert_eq!(sign_in(&app, &email, &random_bytes(32)).await.0, StatusCode::UNAUTHORIZED);
    }
    let (status, retry_after, body) = sign_in(&app, &synckit_testkit::email(), &random_bytes(32)).await;
    assert_eq!((status, code(&body)), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"), "{body}");
    assert!(matches!(retry_after, Some(1..=3)), "{retry_after:?}");

    right_password_after(&app, &user, retry_after).await;
}

/// The console's sign-in checks the same credentials, so it draws on the same budgets: guessing at both endpoints
/// gains nothing over guessing at one.
#[tokio::test]
async fn the_console_sign_in_shares_the_throttle() {
    let app = TestServer::start_with(engine::embedded(), |s| {
        s.sign_in.account_burst = 4;
        s.sign_in.refill = Duration::from_secs(3);
    })
    .await;
    let user = app.user().await;
    let console = |login_key: &[u8]| {
        let body = json!({"email": user.email, "login_key": b64(login_key)});
        app.post("/api/accounts/console-auth", None, body)
    };
    for _ in 0..2 {
        assert_eq!(sign_in(&app, &user.email, &random_bytes(32)).await.0, StatusCode::UNAUTHORIZED);
        let (status, body) = console(&random_bytes(32)).await;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_credentials"));
    }
    let (status, body) = console(&user.login_key).await;
    assert_eq!((status, code(&body)), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"), "the right password too");
    let (status, retry_after, _) = sign_in(&app, &user.email, &user.login_key).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    right_password_after(&app, &user, retry_after).await;
    assert_eq!(console(&user.login_key).await.0, StatusCode::OK);
}
