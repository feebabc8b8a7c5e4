//! The wrapped master key of one (app, user), and of every app of the account for a password change.

use axum::extract::State;
use synckit_http::{ApiError, Authenticated, Json};
use synckit_protocol::keys::{AccountKeysResponse, AppKeyEnvelope, KeyEnvelope, PutKeyRequest, PutKeyResponse};
use synckit_protocol::limits::MAX_ENVELOPE_BYTES;
use synckit_protocol::{Base64Bytes, ErrorBody, ErrorCode, paths};
use synckit_store::PutKeyOutcome;
use tracing::instrument;

use crate::AuthState;

/// Stores a new envelope if the stored version is the expected one (none, when `expected_version` is omitted).
#[utoipa::path(put, path = paths::KEYS, tag = "keys", request_body = PutKeyRequest, security(("bearer" = [])),
    responses(
        (status = 200, body = PutKeyResponse),
        (status = 400, description = "- `invalid_request`: an empty envelope", body = ErrorBody),
        (status = 409, description = "- `version_conflict`: the stored version is not `expected_version`",
            body = ErrorBody),
        (status = 413, description = "- `envelope_too_large`: the envelope is over 4 KiB", body = ErrorBody),
    ))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %auth.user_id, app.id = %auth.app_id))]
pub async fn put(
    State(state): State<AuthState>,
    auth: Authenticated,
    Json(req): Json<PutKeyRequest>,
) -> Result<Json<PutKeyResponse>, ApiError> {
    check_envelope(&req.envelope)?;
    let expected = req.expected_version.unwrap_or(0);
    match state.accounts.put_key(auth.stream(), req.envelope.as_bytes(), expected).await? {
        PutKeyOutcome::Stored { version } => Ok(Json(PutKeyResponse { version })),
        PutKeyOutcome::Conflict { current } => Err(version_conflict(current, expected)),
    }
}

/// An envelope is 1 to [`MAX_ENVELOPE_BYTES`] bytes.
pub(crate) fn check_envelope(envelope: &Base64Bytes) -> Result<(), ApiError> {
    let size = envelope.as_bytes().len();
    if size > MAX_ENVELOPE_BYTES {
        return Err(ApiError::new(
            ErrorCode::EnvelopeTooLarge,
            format!("the envelope is {size} bytes; at most {MAX_ENVELOPE_BYTES}"),
        ));
    }
    if size == 0 {
        return Err(ApiError::invalid("the envelope is empty"));
    }
    Ok(())
}

pub(crate) fn version_conflict(current: u64, expected: u64) -> ApiError {
    ApiError::new(
        ErrorCode::VersionConflict,
        format!("the stored envelope is at version {current}, not {expected}; fetch it and retry"),
    )
}

/// The stored envelope and its version.
#[utoipa::path(get, path = paths::KEYS, tag = "keys", security(("bearer" = [])), responses(
    (status = 200, body = KeyEnvelope),
    (status = 404, description = "- `key_not_found`: no envelope stored yet", body = ErrorBody),
))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %auth.user_id, app.id = %auth.app_id))]
pub async fn get(State(state): State<AuthState>, auth: Authenticated) -> Result<Json<KeyEnvelope>, ApiError> {
    let key = state
        .accounts
        .key(auth.stream())
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::KeyNotFound, "no key envelope stored yet"))?;
    Ok(Json(KeyEnvelope { envelope: key.envelope.into(), version: key.version }))
}

/// The account's envelope in every app that has one: a password change re-wraps them all.
#[utoipa::path(get, path = paths::ACCOUNTS_KEYS, tag = "keys", security(("bearer" = [])), responses(
    (status = 200, body = AccountKeysResponse),
))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %auth.user_id))]
pub async fn account(
    State(state): State<AuthState>,
    auth: Authenticated,
) -> Result<Json<AccountKeysResponse>, ApiError> {
    let keys = state.accounts.account_keys(auth.user_id).await?;
    let keys = keys
        .into_iter()
        .map(|k| AppKeyEnvelope { app_id: k.app_id, envelope: k.key.envelope.into(), version: k.key.version })
        .collect();
    Ok(Json(AccountKeysResponse { keys }))
}
