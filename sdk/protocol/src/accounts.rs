//! Accounts and tokens: `/api/accounts/*` and `POST /api/sync/auth`.
//!
//! The raw password never leaves the device. The client derives
//! `login_key = Argon2id(password, salt, 65536 KiB, 3 iterations, parallelism 1, 32 bytes)` with the salt it chose at
//! sign-up (and fetches again with pre-login), and sends only that.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Base64Bytes;

/// `POST /api/accounts/register`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::email))]
    pub email: String,
    /// The Argon2id salt the login key was derived with: 32 random bytes.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::salt))]
    pub salt: Base64Bytes,
    /// The 32-byte Argon2id login key.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::login_key))]
    pub login_key: Base64Bytes,
}

/// Answer to [`RegisterRequest`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterResponse {
    pub user_id: Uuid,
}

/// `POST /api/accounts/prelogin`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PreloginRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::email))]
    pub email: String,
}

/// What a client needs to derive its login key. An unknown email gets a stable made-up salt, so pre-login does
/// not reveal who has an account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreloginResponse {
    pub kdf: KdfParams,
    pub salt: Base64Bytes,
}

/// Argon2id parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KdfParams {
    /// Always `"argon2id"` in protocol v1.
    pub algorithm: KdfAlgorithm,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// The key derivation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum KdfAlgorithm {
    Argon2id,
}

impl KdfParams {
    /// The login derivation of protocol v1: Argon2id, 64 MiB, 3 iterations, parallelism 1.
    pub const LOGIN: KdfParams =
        KdfParams { algorithm: KdfAlgorithm::Argon2id, memory_kib: 65536, iterations: 3, parallelism: 1 };
}

/// `POST /api/accounts/password` (bearer token): replaces the login key. Every token issued before is revoked.
///
/// `key`, when sent, is the master key envelope re-wrapped for the new password: the server stores it in the same
/// transaction, so the password and the envelope change together or not at all (a stale `expected_version`
/// answers `409 version_conflict` and changes nothing).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::login_key))]
    pub current_login_key: Base64Bytes,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::salt))]
    pub salt: Base64Bytes,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::login_key))]
    pub login_key: Base64Bytes,
    /// The account's envelope in every app that has one ([`crate::paths::ACCOUNTS_KEYS`]), re-wrapped for the new
    /// password: all of them or the change is refused (`409 version_conflict`), so that no app is left with an
    /// envelope the old password opens and the new one does not.
    /// At most [`crate::limits::MAX_ACCOUNT_KEYS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(max_items = 256))]
    pub keys: Vec<crate::keys::AppKeyRewrap>,
}

/// `POST /api/sync/auth`: exchanges credentials and an app's API key for a token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AuthRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::email))]
    pub email: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::login_key))]
    pub login_key: Base64Bytes,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::api_key))]
    pub api_key: String,
}

/// A bearer token for one user in one app. From `POST /api/sync/auth`, a sign-in token valid for 15 minutes, which
/// registers a device (whose own token then syncs) and reads the key envelope. Also the answer to a password change,
/// since that revokes the token it was made with: then it is a token of the same kind, a device's when the change was
/// made with one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthResponse {
    pub token: String,
    pub user_id: Uuid,
    pub app_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: OffsetDateTime,
}

/// `POST /api/accounts/console-auth`: signs in to the console with the account alone, in no app, to manage the apps
/// it owns. The credentials are those of [`AuthRequest`], checked and throttled alike.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConsoleAuthRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::email))]
    pub email: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::login_key))]
    pub login_key: Base64Bytes,
}

/// A console token, valid for 15 minutes: it manages the account's apps (`/api/apps`) and nothing else. Every other
/// endpoint refuses it, and `/api/apps` refuses an app's tokens. A password change revokes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsoleAuthResponse {
    pub token: String,
    pub user_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: OffsetDateTime,
}
