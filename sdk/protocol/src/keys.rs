//! The wrapped master key: `PUT /api/sync/keys`, `GET /api/sync/keys`. The server stores the envelope as opaque
//! bytes; only a device that knows the password can open it. Its format (version 2, and how a client treats the
//! forgeable version 1) is the SDK's, described in `docs/protocol.md` under "The key envelope the SDK writes".

use serde::{Deserialize, Serialize};

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
    pub envelope: Base64Bytes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
