//! The recovery key: set it (or replace it) with the current password, prove it, and recover with it.
//!
//! The server holds only the SHA-256 of the recovery login key, which the client derives from the recovery key
//! apart from the key that seals the recovery envelopes: what it keeps and what it is sent opens nothing. Proving a
//! recovery key draws on the sign-in throttle's budgets, as a password does.

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use synckit_http::auth::TokenClaims;
use synckit_http::{ApiError, Authenticated, Json};
use synckit_protocol::accounts::AuthResponse;
use synckit_protocol::limits::MAX_ACCOUNT_KEYS;
use synckit_protocol::recovery::{
    RecoverRequest, RecoverableKey, RecoveryRequest, RecoveryResponse, SetRecoveryKeyRequest, SetRecoveryKeyResponse,
};
use synckit_protocol::{Base64Bytes, ErrorBody, ErrorCode, paths};
use synckit_store::{
    AccountRecovery, KeyConflict, KeyRewrap, Recovered, RecoveredKey, Recovery, RecoveryKeyChange, RecoveryKeyRefused,
    User,
};
use tracing::instrument;

use crate::AuthState;
use crate::accounts::{app_for_key, check_login_key, check_salt, normalize_email, throttled};
use crate::credentials::{login_key_hash, login_key_matches};
use crate::keys::check_envelope;

/// Sets the account's recovery key, replacing the one before: its recovery login key's hash, and a recovery
/// envelope for every app with a key envelope. The current password is proved first.
#[utoipa::path(post, path = paths::ACCOUNTS_RECOVERY_KEY, tag = "accounts", request_body = SetRecoveryKeyRequest,
    security(("bearer" = [])), responses(
    (status = 200, description = "the apps the recovery key opens; the one it replaces no longer works",
        body = SetRecoveryKeyResponse),
    (status = 400, description = "- `invalid_request`: a login key that is not 32 bytes, an empty envelope, or \
        too many envelopes", body = ErrorBody),
    (status = 401, description = "- `invalid_credentials`: the current login key is wrong, or the password \
        changed while this request was under way; nothing changed", body = ErrorBody),
    (status = 409, description = "- `version_conflict`: the recovery envelopes are not every app's at the current \
        version of its key envelope; nothing changed", body = ErrorBody),
    (status = 413, description = "- `envelope_too_large`: a recovery envelope is over 4 KiB", body = ErrorBody),
    (status = 429, description = "- `rate_limited`: too many wrong attempts; wait `Retry-After` seconds",
        body = ErrorBody),
))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %auth.user_id))]
pub async fn set_recovery_key(
    State(state): State<AuthState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    auth: Authenticated,
    Json(req): Json<SetRecoveryKeyRequest>,
) -> Result<Json<SetRecoveryKeyResponse>, ApiError> {
    check_login_key(&req.current_login_key, "current_login_key")?;
    check_login_key(&req.recovery_login_key, "recovery_login_key")?;
    check_count(req.keys.len())?;
    for key in &req.keys {
        check_envelope(&key.envelope)?;
    }
    let user = state
        .accounts
        .user(auth.user_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidToken, "the account no longer exists"))?;
    // A stolen token must not plant a recovery key, which would take the account over.
    let permit =
        state.throttle.attempt(&user.email, peer.map(|Extension(ConnectInfo(a))| a.ip())).map_err(throttled)?;
    if !login_key_matches(req.current_login_key.as_bytes(), &user.login_key_hash) {
        return Err(ApiError::new(ErrorCode::InvalidCredentials, "the current password is wrong"));
    }
    permit.succeeded();
    let app_ids = req.keys.iter().map(|k| k.app_id).collect();
    let change = RecoveryKeyChange {
        user_id: user.id,
        expected_login_key_hash: user.login_key_hash,
        recovery_key_hash: login_key_hash(req.recovery_login_key.as_bytes()),
        recovery_envelopes: req
            .keys
            .into_iter()
            .map(|k| KeyRewrap {
                app_id: k.app_id,
                envelope: k.envelope.into_vec(),
                expected_version: k.expected_version,
            })
            .collect(),
    };
    match state.accounts.set_recovery_key(change).await? {
        None => Ok(Json(SetRecoveryKeyResponse { app_ids })),
        Some(RecoveryKeyRefused::PasswordChanged) => Err(ApiError::new(
            ErrorCode::InvalidCredentials,
            "the password changed while the recovery key was being set: nothing changed",
        )),
        Some(RecoveryKeyRefused::KeyConflict(conflict)) => {
            Err(not_every_app(conflict, "seal a recovery envelope for each"))
        }
    }
}

/// Proves a recovery key: the recovery envelopes of every app, to open on the device.
#[utoipa::path(post, path = paths::ACCOUNTS_RECOVERY, tag = "accounts", request_body = RecoveryRequest, responses(
    (status = 200, description = "every app with a key envelope, and its recovery envelope unless the app's key \
        came after the recovery key", body = RecoveryResponse),
    (status = 401, description = "- `invalid_recovery_key`: unknown email, no recovery key, or the wrong one",
        body = ErrorBody),
    (status = 429, description = "- `rate_limited`: too many wrong attempts for this account or from this address; \
        wait `Retry-After` seconds", body = ErrorBody),
))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id))]
pub async fn recovery(
    State(state): State<AuthState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Json(req): Json<RecoveryRequest>,
) -> Result<Json<RecoveryResponse>, ApiError> {
    let (user, recovery) = prove(&state, peer, &req.email, &req.recovery_login_key).await?;
    let keys = recovery
        .keys
        .into_iter()
        .map(|k| RecoverableKey {
            app_id: k.app_id,
            version: k.version,
            recovery_envelope: k.recovery_envelope.map(Base64Bytes::from),
        })
        .collect();
    Ok(Json(RecoveryResponse { user_id: user.id, keys }))
}

/// With a recovery key: a new password and a new recovery key, and every app's envelopes for both, in one step.
/// Every token issued before is revoked; the answer is a sign-in token for the app of `api_key`.
#[utoipa::path(post, path = paths::ACCOUNTS_RECOVER, tag = "accounts", request_body = RecoverRequest, responses(
    (status = 200, description = "a sign-in token; older tokens, the old password and the old recovery key no \
        longer work", body = AuthResponse),
    (status = 400, description = "- `invalid_request`: a salt or key that is not 32 bytes, an empty envelope, too \
        many envelopes, or a new recovery key equal to the one used", body = ErrorBody),
    (status = 401, description = "- `invalid_recovery_key`: unknown email, no recovery key, or the wrong one (or \
        it was replaced meanwhile)\n- `invalid_api_key`: the API key belongs to no app", body = ErrorBody),
    (status = 409, description = "- `version_conflict`: the keys are not every app's at its current version; \
        nothing changed", body = ErrorBody),
    (status = 413, description = "- `envelope_too_large`: an envelope is over 4 KiB", body = ErrorBody),
    (status = 429, description = "- `rate_limited`: too many wrong attempts for this account or from this address; \
        wait `Retry-After` seconds", body = ErrorBody),
))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id, app.id))]
pub async fn recover(
    State(state): State<AuthState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Json(req): Json<RecoverRequest>,
) -> Result<Json<AuthResponse>, ApiError> {
    let app = app_for_key(&state, &req.api_key).await?;
    check_salt(&req.salt)?;
    check_login_key(&req.login_key, "login_key")?;
    check_login_key(&req.new_recovery_login_key, "new_recovery_login_key")?;
    check_count(req.keys.len())?;
    for key in &req.keys {
        check_envelope(&key.envelope)?;
        check_envelope(&key.recovery_envelope)?;
    }
    if req.new_recovery_login_key.as_bytes() == req.recovery_login_key.as_bytes() {
        return Err(ApiError::invalid(
            "a recovery replaces the recovery key: the new one must differ from the one used",
        ));
    }
    let (user, recovery) = prove(&state, peer, &req.email, &req.recovery_login_key).await?;
    let recovery = Recovery {
        user_id: user.id,
        expected_recovery_key_hash: recovery.recovery_key_hash,
        salt: req.salt.into_vec(),
        login_key_hash: login_key_hash(req.login_key.as_bytes()),
        recovery_key_hash: login_key_hash(req.new_recovery_login_key.as_bytes()),
        keys: req
            .keys
            .into_iter()
            .map(|k| RecoveredKey {
                app_id: k.app_id,
                envelope: k.envelope.into_vec(),
                recovery_envelope: k.recovery_envelope.into_vec(),
                expected_version: k.expected_version,
            })
            .collect(),
    };
    let token_version = match state.accounts.recover(recovery).await? {
        Recovered::Changed { token_version } => token_version,
        Recovered::RecoveryKeyChanged => {
            return Err(ApiError::new(
                ErrorCode::InvalidRecoveryKey,
                "the recovery key was replaced while this recovery was under way: nothing changed",
            ));
        }
        Recovered::KeyConflict(conflict) => return Err(not_every_app(conflict, "re-wrap each")),
    };
    // A sign-in token, as after a password sign-in: the device registers next.
    let claims = TokenClaims { user_id: user.id, app_id: app.id, token_version, device_id: None };
    let (token, expires_at) = state.keys.issue(claims);
    Ok(Json(AuthResponse { token, user_id: user.id, app_id: app.id, expires_at }))
}

/// Checks `recovery_login_key` against the account's recovery key, throttled like a password. Whatever was wrong
/// (the email, the account has no recovery key, the key) the answer is the same.
async fn prove(
    state: &AuthState,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    email: &str,
    recovery_login_key: &Base64Bytes,
) -> Result<(User, AccountRecovery), ApiError> {
    let wrong = || ApiError::new(ErrorCode::InvalidRecoveryKey, "wrong email or recovery key");
    let email = normalize_email(email).map_err(|_| wrong())?;
    let permit = state.throttle.attempt(&email, peer.map(|Extension(ConnectInfo(a))| a.ip())).map_err(throttled)?;
    let user = state.accounts.user_by_email(&email).await?.ok_or_else(wrong)?;
    let recovery = state.accounts.recovery(user.id).await?.ok_or_else(wrong)?;
    if !login_key_matches(recovery_login_key.as_bytes(), &recovery.recovery_key_hash) {
        return Err(wrong());
    }
    permit.succeeded();
    tracing::Span::current().record("user.id", tracing::field::display(user.id));
    Ok((user, recovery))
}

fn check_count(keys: usize) -> Result<(), ApiError> {
    if keys > MAX_ACCOUNT_KEYS {
        return Err(ApiError::invalid(format!("at most {MAX_ACCOUNT_KEYS} apps' keys in one request")));
    }
    Ok(())
}

/// The keys sent do not cover every app's key envelope at its current version: nothing changed.
fn not_every_app(KeyConflict { app_id, current, expected }: KeyConflict, remedy: &str) -> ApiError {
    let stored = match current {
        0 => "has no key envelope".to_owned(),
        v => format!("has its key envelope at version {v}"),
    };
    let given = match expected {
        0 => "the request had nothing for it".to_owned(),
        v => format!("the request was for version {v}"),
    };
    ApiError::new(
        ErrorCode::VersionConflict,
        format!("app {app_id} {stored} and {given}; nothing changed: {remedy} app's key as it stands and retry"),
    )
}
