//! Sign-up, pre-login, password change and token issue.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use synckit_http::auth::TokenClaims;
use synckit_http::{ApiError, Authenticated, Json};
use synckit_protocol::accounts::{
    AuthRequest, AuthResponse, ChangePasswordRequest, ConsoleAuthRequest, ConsoleAuthResponse, KdfParams,
    PreloginRequest, PreloginResponse, RegisterRequest, RegisterResponse,
};
use synckit_protocol::limits::{LOGIN_KEY_BYTES, LOGIN_SALT_BYTES, MAX_ACCOUNT_KEYS, MAX_EMAIL_CHARS};
use synckit_protocol::{Base64Bytes, ErrorBody, ErrorCode, paths};
use synckit_store::{App, KeyRewrap, LoginKeyChange, LoginKeyChanged, NewUser, StoreError, User};
use tracing::instrument;
use uuid::Uuid;

use crate::AuthState;
use crate::credentials::{api_key_hash, fake_salt, login_key_hash, login_key_matches};
use crate::keys::check_envelope;

/// Creates an account.
#[utoipa::path(post, path = paths::ACCOUNTS_REGISTER, tag = "accounts", request_body = RegisterRequest, responses(
    (status = 200, body = RegisterResponse),
    (status = 400, description = "- `invalid_request`: a malformed email, or a salt or login key that is not 32 bytes",
        body = ErrorBody),
    (status = 403, description = "- `registration_closed`: this server does not allow sign-up", body = ErrorBody),
    (status = 409, description = "- `email_taken`: an account with this email exists", body = ErrorBody),
))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id))]
pub async fn register(
    State(state): State<AuthState>,
    Json(req): Json<RegisterRequest>,
) -> Result<Json<RegisterResponse>, ApiError> {
    if !state.settings.open_registration {
        return Err(ApiError::new(ErrorCode::RegistrationClosed, "this server does not allow sign-up"));
    }
    let user_id = create_account(&state, &req.email, &req.salt, &req.login_key).await?;
    Ok(Json(RegisterResponse { user_id }))
}

/// Creates the account of `email` (recorded on the current span), as sign-up does here and on the sign-in page.
pub(crate) async fn create_account(
    state: &AuthState,
    email: &str,
    salt: &Base64Bytes,
    login_key: &Base64Bytes,
) -> Result<Uuid, ApiError> {
    let email = normalize_email(email)?;
    check_salt(salt)?;
    check_login_key(login_key, "login_key")?;

    let id = Uuid::now_v7();
    let user =
        NewUser { id, email, salt: salt.as_bytes().to_vec(), login_key_hash: login_key_hash(login_key.as_bytes()) };
    match state.accounts.create_user(user).await {
        Ok(()) => {}
        Err(StoreError::AlreadyExists) => {
            return Err(ApiError::new(ErrorCode::EmailTaken, "an account with this email exists"));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::Span::current().record("user.id", tracing::field::display(id));
    Ok(id)
}

/// The salt and KDF parameters to derive a login key with.
#[utoipa::path(post, path = paths::ACCOUNTS_PRELOGIN, tag = "accounts", request_body = PreloginRequest, responses(
    (status = 200, description = "an unknown email gets a stable made-up salt", body = PreloginResponse),
    (status = 400, description = "- `invalid_request`: a malformed email", body = ErrorBody),
))]
#[instrument(skip_all, err(Display, level = "debug"))]
pub async fn prelogin(
    State(state): State<AuthState>,
    Json(req): Json<PreloginRequest>,
) -> Result<Json<PreloginResponse>, ApiError> {
    let email = normalize_email(&req.email)?;
    let salt = match state.accounts.user_by_email(&email).await? {
        Some(user) => user.salt,
        None => fake_salt(&state.settings.prelogin_key, &email),
    };
    Ok(Json(PreloginResponse { kdf: KdfParams::LOGIN, salt: salt.into() }))
}

/// Exchanges credentials and an app's API key for a short-lived sign-in token, which registers a device (whose own
/// token then syncs), reads and stores the key envelope, manages devices and changes the password.
#[utoipa::path(post, path = paths::AUTH, tag = "accounts", request_body = AuthRequest, responses(
    (status = 200, body = AuthResponse),
    (status = 401, description = "- `invalid_credentials`: wrong email or login key\n\
        - `invalid_api_key`: the API key belongs to no app", body = ErrorBody),
    (status = 429, description = "- `rate_limited`: too many wrong attempts for this account or from this address; \
        wait `Retry-After` seconds", body = ErrorBody),
))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id, app.id))]
pub async fn authenticate(
    State(state): State<AuthState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Json(req): Json<AuthRequest>,
) -> Result<Json<AuthResponse>, ApiError> {
    let app = app_for_key(&state, &req.api_key).await?;

    let user = sign_in(&state, peer, &req.email, &req.login_key).await?;

    // A sign-in token: it sets up and registers a device, whose own token then syncs.
    let claims = TokenClaims { user_id: user.id, app_id: app.id, token_version: user.token_version, device_id: None };
    let (token, expires_at) = state.keys.issue(claims);
    Ok(Json(AuthResponse { token, user_id: user.id, app_id: app.id, expires_at }))
}

/// Signs in to the console with the account alone, in no app: a token that manages the apps the account owns
/// (`/api/apps`) and that every other endpoint refuses. The credentials are checked and throttled as at
/// `POST /api/sync/auth`.
#[utoipa::path(post, path = paths::ACCOUNTS_CONSOLE_AUTH, tag = "apps", request_body = ConsoleAuthRequest, responses(
    (status = 200, description = "a console token", body = ConsoleAuthResponse),
    (status = 401, description = "- `invalid_credentials`: wrong email or login key", body = ErrorBody),
    (status = 429, description = "- `rate_limited`: too many wrong attempts for this account or from this address; \
        wait `Retry-After` seconds", body = ErrorBody),
))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id))]
pub async fn console_auth(
    State(state): State<AuthState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Json(req): Json<ConsoleAuthRequest>,
) -> Result<Json<ConsoleAuthResponse>, ApiError> {
    let user = sign_in(&state, peer, &req.email, &req.login_key).await?;
    let (token, expires_at) = state.keys.issue_console(user.id, user.token_version);
    Ok(Json(ConsoleAuthResponse { token, user_id: user.id, expires_at }))
}

/// The app whose API key this is (recorded on the current span), or 401 `invalid_api_key`.
pub(crate) async fn app_for_key(state: &AuthState, api_key: &str) -> Result<App, ApiError> {
    let app = state
        .accounts
        .app_by_key_hash(&api_key_hash(api_key))
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidApiKey, "the API key does not belong to any app"))?;
    tracing::Span::current().record("app.id", tracing::field::display(app.id));
    Ok(app)
}

/// The account whose email and login key these are, each wrong attempt drawing on the sign-in throttle. A malformed
/// email is a wrong one: sign-in does not tell why it failed.
pub(crate) async fn sign_in(
    state: &AuthState,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    email: &str,
    login_key: &Base64Bytes,
) -> Result<User, ApiError> {
    let bad_credentials = || ApiError::new(ErrorCode::InvalidCredentials, "wrong email or password");
    let email = normalize_email(email).map_err(|_| bad_credentials())?;
    let permit = state.throttle.attempt(&email, peer.map(|Extension(ConnectInfo(a))| a.ip())).map_err(throttled)?;
    let user = state.accounts.user_by_email(&email).await?.ok_or_else(bad_credentials)?;
    if !login_key_matches(login_key.as_bytes(), &user.login_key_hash) {
        return Err(bad_credentials());
    }
    permit.succeeded();
    tracing::Span::current().record("user.id", tracing::field::display(user.id));
    Ok(user)
}

/// Replaces the login key, and the account's key envelope in every app with it, re-wrapped by the client for the
/// new password. Every token issued before is revoked; the answer carries a fresh one.
#[utoipa::path(post, path = paths::ACCOUNTS_PASSWORD, tag = "accounts", request_body = ChangePasswordRequest,
    security(("bearer" = [])), responses(
    (status = 200, description = "a new token; older tokens no longer work", body = AuthResponse),
    (status = 400, description = "- `invalid_request`: a salt or login key that is not 32 bytes, an empty envelope, \
        or too many envelopes", body = ErrorBody),
    (status = 401, description = "- `invalid_credentials`: the current login key is wrong", body = ErrorBody),
    (status = 409, description = "- `version_conflict`: the re-wrapped envelopes are not every app's at its current \
        version; nothing changed", body = ErrorBody),
    (status = 413, description = "- `envelope_too_large`: a re-wrapped envelope is over 4 KiB", body = ErrorBody),
    (status = 429, description = "- `rate_limited`: too many wrong attempts; wait `Retry-After` seconds",
        body = ErrorBody),
))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %auth.user_id))]
pub async fn change_password(
    State(state): State<AuthState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    auth: Authenticated,
    Json(req): Json<ChangePasswordRequest>,
) -> Result<Json<AuthResponse>, ApiError> {
    check_salt(&req.salt)?;
    check_login_key(&req.login_key, "login_key")?;
    if req.keys.len() > MAX_ACCOUNT_KEYS {
        return Err(ApiError::invalid(format!("a password change re-wraps at most {MAX_ACCOUNT_KEYS} envelopes")));
    }
    let user = state
        .accounts
        .user(auth.user_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidToken, "the account no longer exists"))?;
    // A stolen token must not make the current password guessable either.
    let attempt = state.throttle.attempt(&user.email, peer.map(|Extension(ConnectInfo(addr))| addr.ip()));
    let permit = attempt.map_err(throttled)?;
    if !login_key_matches(req.current_login_key.as_bytes(), &user.login_key_hash) {
        return Err(ApiError::new(ErrorCode::InvalidCredentials, "the current password is wrong"));
    }
    permit.succeeded();
    let mut rewrapped_keys = Vec::with_capacity(req.keys.len());
    for key in req.keys {
        check_envelope(&key.envelope)?;
        rewrapped_keys.push(KeyRewrap {
            app_id: key.app_id,
            envelope: key.envelope.into_vec(),
            expected_version: key.expected_version,
        });
    }
    let change = LoginKeyChange {
        user_id: user.id,
        expected_token_version: auth.token_version,
        salt: req.salt.into_vec(),
        login_key_hash: login_key_hash(req.login_key.as_bytes()),
        rewrapped_keys,
    };
    let token_version = match state.accounts.change_login_key(change).await? {
        LoginKeyChanged::Changed { token_version } => token_version,
        // Another password change got there first and revoked this token.
        LoginKeyChanged::TokenRevoked => {
            return Err(ApiError::new(ErrorCode::InvalidToken, "the token was revoked by a password change"));
        }
        LoginKeyChanged::KeyConflict { app_id, current, expected } => {
            return Err(rewrap_conflict(app_id, current, expected));
        }
    };

    // The same kind of token as the one the change was made with, so a device keeps syncing.
    let claims = TokenClaims { user_id: user.id, app_id: auth.app_id, token_version, device_id: auth.device_id };
    let (token, expires_at) = state.keys.issue(claims);
    Ok(Json(AuthResponse { token, user_id: user.id, app_id: auth.app_id, expires_at }))
}

/// The envelopes a password change re-wrapped are not the account's as they stand: nothing changed.
fn rewrap_conflict(app_id: Uuid, current: u64, expected: u64) -> ApiError {
    let stored = match current {
        0 => "has no key envelope".to_owned(),
        v => format!("has its key envelope at version {v}"),
    };
    let given = match expected {
        0 => "the change did not re-wrap it".to_owned(),
        v => format!("the change re-wrapped version {v}"),
    };
    ApiError::new(
        ErrorCode::VersionConflict,
        format!(
            "app {app_id} {stored} and {given}; nothing changed: re-wrap each envelope of {} and retry",
            paths::ACCOUNTS_KEYS
        ),
    )
}

/// The answer to an attempt the throttle refused: how long to wait, rounded up to whole seconds.
pub(crate) fn throttled(wait: Duration) -> ApiError {
    let secs = u32::try_from(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).unwrap_or(u32::MAX).max(1);
    ApiError {
        retry_after_secs: Some(secs),
        ..ApiError::new(
            ErrorCode::RateLimited,
            format!("too many wrong sign-in attempts for this account or from this address; wait {secs} s"),
        )
    }
}

/// At most [`MAX_EMAIL_CHARS`] characters as sent (as the OpenAPI document's `maxLength` counts them), then trimmed
/// and lower-cased, with one `@` between a non-empty local part and domain.
pub(crate) fn normalize_email(email: &str) -> Result<String, ApiError> {
    let short = email.chars().count() <= MAX_EMAIL_CHARS;
    let email = email.trim().to_lowercase();
    let valid = short
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if valid { Ok(email) } else { Err(ApiError::invalid("email must look like name@example.com")) }
}

pub(crate) fn check_salt(salt: &Base64Bytes) -> Result<(), ApiError> {
    if salt.as_bytes().len() == LOGIN_SALT_BYTES {
        Ok(())
    } else {
        Err(ApiError::invalid(format!("salt must be {LOGIN_SALT_BYTES} bytes, got {}", salt.as_bytes().len())))
    }
}

pub(crate) fn check_login_key(key: &Base64Bytes, field: &str) -> Result<(), ApiError> {
    if key.as_bytes().len() == LOGIN_KEY_BYTES {
        Ok(())
    } else {
        Err(ApiError::invalid(format!("{field} must be {LOGIN_KEY_BYTES} bytes, got {}", key.as_bytes().len())))
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_email;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(normalize_email("  Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in ["", "ada", "@example.com", "ada@", "a b@example.com", "a@b@c"] {
            assert!(normalize_email(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
