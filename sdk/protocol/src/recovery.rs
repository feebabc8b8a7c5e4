//! The recovery key: `POST /api/accounts/recovery-key`, `POST /api/accounts/recovery` and
//! `POST /api/accounts/recover`.
//!
//! A recovery key is a random secret the SDK makes and shows the user once. The client derives two unrelated values
//! from it: a recovery login key, which the server keeps only as a hash and checks like a login key, and a wrapping
//! key, which never leaves the device and seals a recovery envelope of the master key in every app of the account.
//! A user who forgot the password proves the recovery login key, opens the recovery envelopes on the device, and
//! sets a new password and a new recovery key in one request. The formats are the SDK's, described in
//! `docs/protocol.md` under "The recovery key".

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Base64Bytes;
use crate::keys::AppKeyRewrap;

/// `POST /api/accounts/recovery-key` (bearer token): sets the account's recovery key, or replaces it.
///
/// The current password is proved (`current_login_key`, throttled like sign-in), so a stolen token cannot plant a
/// recovery key of its own. `keys` holds a recovery envelope for every app that has a key envelope, each naming
/// the version of the key envelope whose master key it wraps: all of them or the request is refused
/// (`409 version_conflict`), so the new recovery key opens every app. The one it replaces stops working.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetRecoveryKeyRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::login_key))]
    pub current_login_key: Base64Bytes,
    /// The 32-byte recovery login key: the server keeps its hash.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::login_key))]
    pub recovery_login_key: Base64Bytes,
    /// `envelope` is the app's recovery envelope; `expected_version` the version of its key envelope.
    /// At most [`crate::limits::MAX_ACCOUNT_KEYS`].
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 256))]
    pub keys: Vec<AppKeyRewrap>,
}

/// Answer to [`SetRecoveryKeyRequest`]: the apps the recovery key opens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SetRecoveryKeyResponse {
    pub app_ids: Vec<Uuid>,
}

/// `POST /api/accounts/recovery` (public): proves a recovery key and gets the recovery envelopes to open.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecoveryRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::email))]
    pub email: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::login_key))]
    pub recovery_login_key: Base64Bytes,
}

/// Answer to [`RecoveryRequest`]: every app in which the account has a key envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoveryResponse {
    pub user_id: Uuid,
    pub keys: Vec<RecoverableKey>,
}

/// One app's key, as recovery sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoverableKey {
    pub app_id: Uuid,
    /// The version of the app's key envelope: what a recovery must re-wrap.
    pub version: u64,
    /// The master key sealed under the recovery key; null when the app set up its key after the recovery key was
    /// made, which the recovery key then cannot open.
    pub recovery_envelope: Option<Base64Bytes>,
}

/// `POST /api/accounts/recover` (public): with a recovery key, sets a new password and a new recovery key.
///
/// In one transaction: the login salt and key change, the key envelope of every app is replaced by `envelope`
/// (wrapped for the new password) and its recovery envelope by `recovery_envelope` (sealed under the new recovery
/// key), and the recovery login key is replaced. Every token issued before is revoked, as by a password change; the
/// answer is a sign-in token for the app of `api_key`. Every app's key envelope must be re-wrapped at its current
/// version, or nothing changes (`409 version_conflict`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecoverRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::email))]
    pub email: String,
    /// The recovery login key of the recovery key being used.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::login_key))]
    pub recovery_login_key: Base64Bytes,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::api_key))]
    pub api_key: String,
    /// The new login salt.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::salt))]
    pub salt: Base64Bytes,
    /// The new login key.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::login_key))]
    pub login_key: Base64Bytes,
    /// The recovery login key of the new recovery key.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::login_key))]
    pub new_recovery_login_key: Base64Bytes,
    /// Every app's key, re-wrapped. At most [`crate::limits::MAX_ACCOUNT_KEYS`].
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 256))]
    pub keys: Vec<RecoveredKey>,
}

/// One app's master key after a recovery: wrapped for the new password and sealed under the new recovery key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecoveredKey {
    pub app_id: Uuid,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::envelope))]
    pub envelope: Base64Bytes,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::envelope))]
    pub recovery_envelope: Base64Bytes,
    /// The version of the key envelope that was opened and re-wrapped.
    #[cfg_attr(feature = "openapi", schema(maximum = 9_223_372_036_854_775_807_i64))]
    #[serde(deserialize_with = "crate::integer::deserialize")]
    pub expected_version: u64,
}
