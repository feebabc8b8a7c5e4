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
/// an unknown code deserialises as [`ErrorCode::Unknown`]. [`ErrorCode::ALL`] lists them; each knows its HTTP
/// status ([`ErrorCode::http_status`]).
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
    /// 409: a pull cursor past the stream's newest entry: the client is pointed at the wrong server or user. The
    /// request is well formed; it conflicts with the stream as it stands.
    CursorBeyondHead,
    /// 401: no bearer token was sent.
    MissingToken,
    /// 401: the token is malformed, forged, for another deployment, or revoked by a password change.
    InvalidToken,
    /// 401: the token has expired; authenticate again.
    TokenExpired,
    /// 401: unknown email or wrong login key.
    InvalidCredentials,
    /// 401: unknown email, an account without a recovery key, or a recovery key that is not the account's (or no
    /// longer is: a recovery key is replaced by each recovery).
    InvalidRecoveryKey,
    /// 401: the API key does not belong to any app.
    InvalidApiKey,
    /// 401: the token is a device's, and that device was removed from the account: sign in and register again.
    DeviceRemoved,
    /// 403: this deployment does not allow open sign-up.
    RegistrationClosed,
    /// 409: an account with that email exists.
    EmailTaken,
    /// 404: no such device for this user and app.
    DeviceNotFound,
    /// 403: the route acts as a device, and the token is a sign-in token bound to none: register a device
    /// (`POST /api/sync/devices`) and use the token it answers.
    DeviceTokenRequired,
    /// 403: a device's token used for another device (a push naming another `device_id`, or registering another
    /// name): a token acts only as its own device.
    DeviceMismatch,
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
    /// 409: the blob named is not what was declared: uploaded bytes of another length or SHA-256, or a confirm of
    /// another size. The request is well formed; it conflicts with the declaration.
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
    /// 404: no app with that id that the caller owns. Another account's app answers the same, so that a stranger
    /// cannot tell which apps exist.
    AppNotFound,
    /// 400: a redirect URI the server does not take: not absolute, `http` other than on loopback, with a fragment,
    /// too long, repeated, or one too many.
    InvalidRedirectUri,
    /// 409: the account owns [`crate::limits::MAX_APPS_PER_ACCOUNT`] apps already: delete one first.
    TooManyApps,
    /// 403: the push or blob upload would take the app past its plan's storage limit. Nothing was stored; pulls,
    /// downloads and deletes still work, and the same request succeeds once the app has room (a larger plan, or
    /// storage freed). 403 and not 5xx: the server is well, and repeating the request does not help until
    /// something changes.
    QuotaExceeded,
    /// 429: the app has used its plan's transfer for this billing period, so its traffic is slowed, never refused
    /// for good: retry after the `Retry-After` seconds.
    TransferSlowed,
    /// A code this version of the protocol crate does not know. Keep it the last variant: the guard below
    /// [`ErrorCode::ALL`] counts the codes before it.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Every code this version knows, in declaration order; [`ErrorCode::Unknown`] is not one.
    pub const ALL: &[ErrorCode] = &[
        Self::InvalidJson,
        Self::InvalidRequest,
        Self::UnsupportedMediaType,
        Self::BodyTooLarge,
        Self::TooManyEntries,
        Self::EntryTooLarge,
        Self::EnvelopeTooLarge,
        Self::InvalidLimit,
        Self::CursorBeyondHead,
        Self::MissingToken,
        Self::InvalidToken,
        Self::TokenExpired,
        Self::InvalidCredentials,
        Self::InvalidRecoveryKey,
        Self::InvalidApiKey,
        Self::DeviceRemoved,
        Self::RegistrationClosed,
        Self::EmailTaken,
        Self::DeviceNotFound,
        Self::DeviceTokenRequired,
        Self::DeviceMismatch,
        Self::KeyNotFound,
        Self::VersionConflict,
        Self::NotFound,
        Self::BlobTooLarge,
        Self::BlobNotFound,
        Self::BlobMismatch,
        Self::InvalidSignature,
        Self::MethodNotAllowed,
        Self::RequestTimeout,
        Self::RateLimited,
        Self::Unavailable,
        Self::Internal,
        Self::AppNotFound,
        Self::InvalidRedirectUri,
        Self::TooManyApps,
        Self::QuotaExceeded,
        Self::TransferSlowed,
    ];

    /// The code as it appears on the wire: its serde name (tested for every code).
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
            Self::InvalidRecoveryKey => "invalid_recovery_key",
            Self::InvalidApiKey => "invalid_api_key",
            Self::DeviceRemoved => "device_removed",
            Self::RegistrationClosed => "registration_closed",
            Self::EmailTaken => "email_taken",
            Self::DeviceNotFound => "device_not_found",
            Self::DeviceTokenRequired => "device_token_required",
            Self::DeviceMismatch => "device_mismatch",
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
            Self::AppNotFound => "app_not_found",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::TooManyApps => "too_many_apps",
            Self::QuotaExceeded => "quota_exceeded",
            Self::TransferSlowed => "transfer_slowed",
            Self::Unknown => "unknown",
        }
    }

    /// The HTTP status the server answers this code with. The one place codes meet statuses, and exhaustive on
    /// purpose: a new code does not compile until it is given its status, so none can fall into a 500 unnoticed.
    /// [`ErrorCode::Unknown`] is never sent; a code from a newer server is placed by the status it came with.
    ///
    /// ```
    /// assert_eq!(synckit_protocol::ErrorCode::VersionConflict.http_status(), 409);
    /// ```
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidJson
            | Self::InvalidRequest
            | Self::TooManyEntries
            | Self::InvalidLimit
            | Self::InvalidRedirectUri => 400,
            Self::MissingToken
            | Self::InvalidToken
            | Self::TokenExpired
            | Self::InvalidCredentials
            | Self::InvalidRecoveryKey
            | Self::InvalidApiKey
            | Self::DeviceRemoved => 401,
            Self::RegistrationClosed
            | Self::InvalidSignature
            | Self::DeviceTokenRequired
            | Self::DeviceMismatch
            | Self::QuotaExceeded => 403,
            Self::DeviceNotFound | Self::KeyNotFound | Self::NotFound | Self::BlobNotFound | Self::AppNotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::RequestTimeout => 408,
            Self::EmailTaken
            | Self::VersionConflict
            | Self::CursorBeyondHead
            | Self::BlobMismatch
            | Self::TooManyApps => 409,
            Self::BodyTooLarge | Self::EntryTooLarge | Self::EnvelopeTooLarge | Self::BlobTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::RateLimited | Self::TransferSlowed => 429,
            Self::Internal | Self::Unknown => 500,
            Self::Unavailable => 503,
        }
    }
}

// `ALL` is complete: its codes are distinct, none is `Unknown`, and there are as many as variants before `Unknown`
// (the last). A code added to the enum but not to `ALL` stops the build here.
const _: () = {
    let all = ErrorCode::ALL;
    assert!(all.len() == ErrorCode::Unknown as usize, "ErrorCode::ALL must list every code but Unknown");
    let mut i = 0;
    while i < all.len() {
        assert!((all[i] as usize) < ErrorCode::Unknown as usize, "ErrorCode::ALL must not list Unknown");
        let mut j = i + 1;
        while j < all.len() {
            assert!(all[i] as usize != all[j] as usize, "ErrorCode::ALL must list each code once");
            j += 1;
        }
        i += 1;
    }
};

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_is_the_serde_name_of_every_code() {
        for &code in ErrorCode::ALL.iter().chain([&ErrorCode::Unknown]) {
            let wire = serde_json::to_string(&code).unwrap();
            assert_eq!(wire, format!("\"{}\"", code.as_str()), "{code:?}");
            assert_eq!(code.to_string(), code.as_str());
            assert_eq!(serde_json::from_str::<ErrorCode>(&wire).unwrap(), code, "{code:?} reads back");
        }
        let unknown: ErrorCode = serde_json::from_str(r#""from_the_future""#).unwrap();
        assert_eq!(unknown, ErrorCode::Unknown);
    }

    /// The codes table of docs/protocol.md, section 1, as (code, status) rows.
    fn documented_statuses() -> Vec<(String, u16)> {
        let doc = include_str!("../../../docs/protocol.md");
        let table = doc.split("Every code the server sends:").nth(1).expect("the codes table of docs/protocol.md");
        table
            .lines()
            .skip_while(|line| !line.starts_with("| `"))
            .take_while(|line| line.starts_with("| `"))
            .map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                (cells[1].trim_matches('`').to_owned(), cells[2].parse().expect("a status in the codes table"))
            })
            .collect()
    }

    #[test]
    fn every_code_has_the_status_the_protocol_doc_gives() {
        let documented = documented_statuses();
        for &code in ErrorCode::ALL {
            let row = documented.iter().find(|(name, _)| name == code.as_str());
            assert_eq!(row.map(|(_, status)| *status), Some(code.http_status()), "{code} in docs/protocol.md");
        }
        assert_eq!(documented.len(), ErrorCode::ALL.len(), "docs/protocol.md lists codes this crate does not know");
        assert_eq!(ErrorCode::Unknown.http_status(), 500);
    }
}
