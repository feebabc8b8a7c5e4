//! The error body every failing request answers with, and its codes.

use serde::{Deserialize, Serialize};

/// `{"error": {"code": "…", "message": "…"}}`.
///
/// ```
/// use synckit_protocol::{ErrorBody, ErrorCode};
/// let body: ErrorBody =
///     serde_json::from_str(r#"{"error":{"code":"version_conflict","message":"stale"}}"#).unwrap();
/// assert_eq!(body.error.code, ErrorCode::VersionConflict);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable code for programs and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

/// Every error code the server sends. New codes may appear in later versions: match with a wildcard arm, and
/// an unknown code deserialises as [`ErrorCode::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: the body is not JSON.
    InvalidJson,
    /// 400: the body is JSON but not the expected shape (unknown field, wrong type, bad base64, bad id).
    InvalidRequest,
    /// 415: the request did not say `Content-Type: application/json`.
    UnsupportedMediaType,
    /// 413: the request body is larger than the server accepts.
    BodyTooLarge,
    /// 400: a push with more entries than [`crate::limits::MAX_PUSH_ENTRIES`].
    TooManyEntries,
    /// 413: one entry's payload is larger than [`crate::limits::MAX_ENTRY_BYTES`].
    EntryTooLarge,
    /// 413: a key envelope larger than [`crate::limits::MAX_ENVELOPE_BYTES`].
    EnvelopeTooLarge,
    /// 400: a pull `limit` outside 1..=[`crate::limits::MAX_PULL_LIMIT`].
    InvalidLimit,
    /// 400: a pull cursor past the stream's newest entry: the client is pointed at the wrong server or user.
    CursorBeyondHead,
    /// 401: no bearer token was sent.
    MissingToken,
    /// 401: the token is malformed, forged, for another deployment, or revoked by a password change.
    InvalidToken,
    /// 401: the token has expired; authenticate again.
    TokenExpired,
    /// 401: unknown email or wrong login key.
    InvalidCredentials,
    /// 401: the API key does not belong to any app.
    InvalidApiKey,
    /// 403: this deployment does not allow open sign-up.
    RegistrationClosed,
    /// 409: an account with that email exists.
    EmailTaken,
    /// 404: no such device for this user and app.
    DeviceNotFound,
    /// 404: no key envelope stored yet.
    KeyNotFound,
    /// 409: the key envelope's version is not the `expected_version` sent.
    VersionConflict,
    /// 404: no such endpoint.
    NotFound,
    /// 413: a blob larger than [`crate::limits::MAX_BLOB_BYTES`].
    BlobTooLarge,
    /// 404: no confirmed blob with that hash for this user (download), or nothing uploaded under it (confirm).
    BlobNotFound,
    /// 400: the uploaded bytes are not what was declared: another length or another SHA-256.
    BlobMismatch,
    /// 403: a signed URL whose signature does not match, or that has expired; ask for a new one.
    InvalidSignature,
    /// 405: the endpoint exists but not with that method.
    MethodNotAllowed,
    /// 408: the request took longer than the server allows.
    RequestTimeout,
    /// 429: too many requests; retry after the `Retry-After` seconds.
    RateLimited,
    /// 503: a backing service (the database) is unavailable; retry after the `Retry-After` seconds.
    Unavailable,
    /// 500: a bug or an unexpected failure on the server.
    Internal,
    /// A code this version of the protocol crate does not know.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    ///
    /// ```
    /// assert_eq!(synckit_protocol::ErrorCode::CursorBeyondHead.as_str(), "cursor_beyond_head");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidRequest => "invalid_request",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::BodyTooLarge => "body_too_large",
            Self::TooManyEntries => "too_many_entries",
            Self::EntryTooLarge => "entry_too_large",
            Self::EnvelopeTooLarge => "envelope_too_large",
            Self::InvalidLimit => "invalid_limit",
            Self::CursorBeyondHead => "cursor_beyond_head",
            Self::MissingToken => "missing_token",
            Self::InvalidToken => "invalid_token",
            Self::TokenExpired => "token_expired",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidApiKey => "invalid_api_key",
            Self::RegistrationClosed => "registration_closed",
            Self::EmailTaken => "email_taken",
            Self::DeviceNotFound => "device_not_found",
            Self::KeyNotFound => "key_not_found",
            Self::VersionConflict => "version_conflict",
            Self::NotFound => "not_found",
            Self::BlobTooLarge => "blob_too_large",
            Self::BlobNotFound => "blob_not_found",
            Self::BlobMismatch => "blob_mismatch",
            Self::InvalidSignature => "invalid_signature",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTimeout => "request_timeout",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_matches_serde() {
        for code in [ErrorCode::InvalidJson, ErrorCode::CursorBeyondHead, ErrorCode::TokenExpired] {
            assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{}\"", code.as_str()));
        }
        let unknown: ErrorCode = serde_json::from_str(r#""from_the_future""#).unwrap();
        assert_eq!(unknown, ErrorCode::Unknown);
    }
}
