//! The wrapped master key: `PUT /api/sync/keys`, `GET /api/sync/keys`, and every app's at once for a password
//! change (`GET /api/accounts/keys`). The server stores the envelope as opaque bytes; only a device that knows the
//! password can open it. Its format (version 2, and how a client treats the forgeable version 1) is the SDK's,
//! described in `docs/protocol.md` under "The key envelope the SDK writes".

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Base64Bytes;

/// `PUT /api/sync/keys`: stores a new envelope, at most [`crate::limits::MAX_ENVELOPE_BYTES`].
///
/// `expected_version` is the version the client last saw. Omitted (or 0), the write only succeeds while no
/// envelope exists, so a second device cannot overwrite the first one's key by accident; a stale version gets
/// `409 version_conflict`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PutKeyRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::envelope))]
    pub envelope: Base64Bytes,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::integer::option")]
    #[cfg_attr(feature = "openapi", schema(maximum = 9_223_372_036_854_775_807_i64))]
    pub expected_version: Option<u64>,
}

/// Answer to [`PutKeyRequest`]: the stored envelope's version (1 for the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PutKeyResponse {
    pub version: u64,
}

/// `GET /api/sync/keys`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyEnvelope {
    pub envelope: Base64Bytes,
    pub version: u64,
}

/// The account's envelope in one app, in [`AccountKeysResponse`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppKeyEnvelope {
    pub app_id: Uuid,
    pub envelope: Base64Bytes,
    pub version: u64,
}

/// `GET /api/accounts/keys`: the account's envelope in every app of the deployment that has one, which a password
/// change must re-wrap together.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountKeysResponse {
    pub keys: Vec<AppKeyEnvelope>,
}

/// One app's envelope re-wrapped for a new password, in a password change; `expected_version` is the version
/// that was re-wrapped.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AppKeyRewrap {
    pub app_id: Uuid,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::envelope))]
    pub envelope: Base64Bytes,
    #[cfg_attr(feature = "openapi", schema(maximum = 9_223_372_036_854_775_807_i64))]
    #[serde(deserialize_with = "crate::integer::deserialize")]
    pub expected_version: u64,
}
