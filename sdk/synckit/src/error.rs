//! The SDK's one error type: a matchable [`ErrorKind`], a message, and the cause.

use std::fmt;
use std::time::Duration;

use synckit_protocol::ErrorCode;
use synckit_protocol::oauth::OAuthError;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, in a form a program can act on.
///
/// ```
/// # async fn demo(client: &synckit::SyncKitClient) {
/// use synckit::ErrorKind;
/// match client.setup_encryption_existing("hunter2").await {
///     Ok(()) => {}
///     Err(e) if e.kind() == ErrorKind::WrongPassword => eprintln!("try again"),
///     Err(e) => eprintln!("{e}"),
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Not signed in, or the session's token expired or was revoked: authenticate again.
    Unauthorized,
    /// The thing asked for does not exist (a device, the key envelope, an account, a blob).
    NotFound,
    /// A concurrent change won (the key envelope changed, the email is taken).
    Conflict,
    /// The server asked to slow down; [`Error::retry_after`] says for how long. Also an app over its plan's transfer
    /// budget for the period (`transfer_slowed`): its traffic is paced, never refused for good, and the SDK waits and
    /// retries such answers itself, without counting them against `max_retries`, within `total_timeout`.
    RateLimited,
    /// The app is at its plan's storage limit (`quota_exceeded`): the push or blob upload stored nothing. Pulls,
    /// downloads and deletes still work. Changes refused this way stay in the outbox, and a later
    /// [`sync`](crate::SyncKitClient::sync) (or live sync, every poll interval) pushes them once the app has room: a
    /// larger plan, or storage freed.
    QuotaExceeded,
    /// The server refused the request as malformed or too large: a bug in the caller or the SDK. For blobs,
    /// [`Error::code`] tells a blob over the limit (`blob_too_large`), bytes other than those declared
    /// (`blob_mismatch`) and a signed URL that expired (`invalid_signature`: ask for a new one) apart.
    InvalidRequest,
    /// The server does not allow this, whoever asks: sign-up on a deployment that closed it
    /// (`registration_closed`). Neither signing in again nor retrying helps; the operator decides.
    Forbidden,
    /// The server failed, gave up on the request before finishing it (`request_timeout`: it may or may not have
    /// taken effect), or stayed unavailable through every retry.
    Server,
    /// The network: connection refused, reset, timed out.
    Transport,
    /// Ciphertext that does not decrypt: tampered, truncated, swapped, or under another key (a blob, or an entry
    /// opened with [`Keys::open_entry`](crate::crypto::Keys::open_entry)). A pull does not fail on an entry: it
    /// reports it in [`PullPage::undecryptable`](crate::PullPage::undecryptable) and goes on. Also a key envelope
    /// SyncKit refuses to adopt a key from: one it did not make, one asking for other key derivation costs, or a
    /// version 1 envelope on a device that does not already hold its key.
    Crypto,
    /// The password does not open the key envelope (or sign in).
    WrongPassword,
    /// A well-formed recovery key that is not the account's (or no longer is: each recovery replaces it), or an
    /// account without one. A recovery key that is not well formed (a typo its checksum catches) is
    /// [`ErrorKind::InvalidInput`], found before anything is sent.
    WrongRecoveryKey,
    /// The OS keychain or the fallback key store failed.
    Keystore,
    /// Encryption is not set up on this client yet: call `setup_encryption_new`, `setup_encryption_existing` or
    /// `try_load_key_from_keychain` first. Also what `try_load_key_from_keychain` answers when this device has no
    /// key cached for the account.
    Locked,
    /// The caller passed something unusable (an empty password, a bad URL, a file too large or unreadable, or one
    /// that changed while it was uploaded).
    InvalidInput,
    /// The device's own storage failed: the outbox database could not be opened, read or written (disk full, no
    /// permission, a file that is not the SDK's). Nothing enqueued before is lost; what failed to enqueue was not
    /// enqueued.
    Storage,
    /// The app's `apply` callback of [`SyncKitClient::sync`](crate::SyncKitClient::sync) failed; its error is the
    /// [`source`](std::error::Error::source). The page it failed on was not marked as applied: the next sync hands
    /// it over again.
    Apply,
    /// A failure inside the SDK itself: a task of its own stopped without an answer (it panicked, or the runtime
    /// shut down under it). A bug, in the SDK or in a callback it ran.
    Internal,
}

/// An SDK error: match on [`kind`](Error::kind), show it with `Display`, retry when
/// [`is_retryable`](Error::is_retryable) says so.
///
/// ```no_run
/// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<synckit::Status> {
/// loop {
///     match client.status().await {
///         Err(e) if e.is_retryable() => {
///             tokio::time::sleep(e.retry_after().unwrap_or(std::time::Duration::from_secs(30))).await
///         }
///         other => return other,
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    code: Option<ErrorCode>,
    retry_after: Option<Duration>,
    source: Option<BoxError>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), code: None, retry_after: None, source: None }
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub(crate) fn from_server(code: ErrorCode, status: u16, message: String, retry_after: Option<Duration>) -> Self {
        Self { kind: kind_of(code, status), message, code: Some(code), retry_after, source: None }
    }

    /// An OAuth refusal (RFC 6749): of the token endpoint, with its HTTP status, or carried back by the browser to
    /// the redirect URI, without one.
    pub(crate) fn from_oauth(refusal: OAuthError, status: Option<u16>, retry_after: Option<Duration>) -> Self {
        let kind = kind_of_oauth(&refusal.error, status);
        let message = match refusal.error_description.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            Some(description) => format!("the sign-in was refused: {description} ({})", refusal.error),
            None => format!("the sign-in was refused ({})", refusal.error),
        };
        Self { kind, message, code: None, retry_after, source: None }
    }

    /// What kind of failure this is.
    ///
    /// ```
    /// use synckit::{ErrorKind, crypto::SecretKey};
    /// let err = SecretKey::from_bytes(b"too short").unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Crypto);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The server's error code, when the server or a blob store answered with one (see
    /// `synckit_protocol::ErrorCode` for the list). Errors raised on the device have none, with one exception: a
    /// signed blob URL found expired before it is sent carries `invalid_signature`, as the store's refusal would.
    ///
    /// ```
    /// let err = synckit::crypto::SecretKey::from_bytes(b"too short").unwrap_err();
    /// assert_eq!(err.code(), None);
    /// ```
    pub fn code(&self) -> Option<ErrorCode> {
        self.code
    }

    /// How long the server asked to wait, for [`ErrorKind::RateLimited`] and unavailability.
    ///
    /// ```
    /// let err = synckit::crypto::SecretKey::from_bytes(b"too short").unwrap_err();
    /// assert_eq!(err.retry_after(), None);
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Whether trying again later may succeed: true for [`ErrorKind::Transport`], [`ErrorKind::Server`] (a server
    /// that failed, gave up on the request or was unavailable) and [`ErrorKind::RateLimited`]. The SDK retries
    /// these itself, within its limits, where repeating the request cannot do harm.
    ///
    /// ```
    /// let err = synckit::crypto::SecretKey::from_bytes(b"too short").unwrap_err();
    /// assert!(!err.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Transport | ErrorKind::Server | ErrorKind::RateLimited)
    }
}

/// The kind of a server's answer, from its code. Every code is listed, so each is placed on purpose; a code this
/// version does not know is placed by its status.
fn kind_of(code: ErrorCode, status: u16) -> ErrorKind {
    match code {
        // The server does not say whether the email or the key was wrong, and the key comes from the password.
        ErrorCode::InvalidCredentials => ErrorKind::WrongPassword,
        ErrorCode::InvalidRecoveryKey => ErrorKind::WrongRecoveryKey,
        ErrorCode::MissingToken
        | ErrorCode::InvalidToken
        | ErrorCode::TokenExpired
        | ErrorCode::InvalidApiKey
        | ErrorCode::DeviceRemoved => ErrorKind::Unauthorized,
        // A sign-in token where a device's is needed, or a device's token used as another device: the session is
        // valid but not for this; register the device (with a fresh sign-in) to get the right token.
        ErrorCode::RegistrationClosed | ErrorCode::DeviceTokenRequired | ErrorCode::DeviceMismatch => {
            ErrorKind::Forbidden
        }
        ErrorCode::DeviceNotFound
        | ErrorCode::KeyNotFound
        | ErrorCode::BlobNotFound
        | ErrorCode::NotFound
        | ErrorCode::AppNotFound => ErrorKind::NotFound,
        ErrorCode::EmailTaken | ErrorCode::VersionConflict | ErrorCode::TooManyApps => ErrorKind::Conflict,
        ErrorCode::RateLimited | ErrorCode::TransferSlowed => ErrorKind::RateLimited,
        ErrorCode::QuotaExceeded => ErrorKind::QuotaExceeded,
        ErrorCode::InvalidJson
        | ErrorCode::InvalidRequest
        | ErrorCode::UnsupportedMediaType
        | ErrorCode::BodyTooLarge
        | ErrorCode::TooManyEntries
        | ErrorCode::EntryTooLarge
        | ErrorCode::EnvelopeTooLarge
        | ErrorCode::InvalidLimit
        | ErrorCode::CursorBeyondHead
        | ErrorCode::MethodNotAllowed
        | ErrorCode::InvalidRedirectUri => ErrorKind::InvalidRequest,
        // Too large, not the declared bytes, or a signed URL that expired or was altered: the request as sent
        // cannot succeed; the code says which (an expired URL needs a new one).
        ErrorCode::BlobTooLarge | ErrorCode::BlobMismatch | ErrorCode::InvalidSignature => ErrorKind::InvalidRequest,
        // A server that gave up on a request may not have processed it: like a failure, worth another try.
        ErrorCode::RequestTimeout | ErrorCode::Internal | ErrorCode::Unavailable => ErrorKind::Server,
        ErrorCode::Unknown => kind_of_status(status),
        // `ErrorCode` is non-exhaustive, so the compiler cannot check this match is complete; the tests check it
        // against `ErrorCode::ALL`. A code newer than this list is placed like an unknown one.
        _ => kind_of_status(status),
    }
}

/// The kind of an OAuth error (RFC 6749 sections 4.1.2.1 and 5.2); one this version does not know is placed by its
/// status, or, carried by the browser without one, as a refused request.
fn kind_of_oauth(error: &str, status: Option<u16>) -> ErrorKind {
    match error {
        // The code was used, expired, or was issued for another verifier, redirect URI or client; or the person
        // declined: either way not signed in, and signing in again is the way on.
        "invalid_grant" | "access_denied" => ErrorKind::Unauthorized,
        // The client id the app was configured with is not the server's.
        "invalid_client" | "unauthorized_client" => ErrorKind::InvalidInput,
        "server_error" | "temporarily_unavailable" => ErrorKind::Server,
        "invalid_request" | "unsupported_grant_type" | "unsupported_response_type" | "invalid_scope" => {
            ErrorKind::InvalidRequest
        }
        _ => status.map_or(ErrorKind::InvalidRequest, kind_of_status),
    }
}

/// The kind of an answer whose code is unknown, from its status, as the codes with that status are placed.
fn kind_of_status(status: u16) -> ErrorKind {
    match status {
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden,
        404 => ErrorKind::NotFound,
        408 => ErrorKind::Server,
        409 => ErrorKind::Conflict,
        429 => ErrorKind::RateLimited,
        400..=499 => ErrorKind::InvalidRequest,
        _ => ErrorKind::Server,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "{} ({code})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The SDK's result type.
///
/// ```
/// use synckit::crypto::SecretKey;
/// fn load_key(bytes: &[u8]) -> synckit::Result<SecretKey> {
///     SecretKey::from_bytes(bytes)
/// }
/// assert!(load_key(&[1; 32]).is_ok());
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The kind chosen for each code. A code added to the protocol fails the test below until it has a row here
    /// (and, if it needs one, an arm in `kind_of`).
    const KINDS: &[(ErrorCode, ErrorKind)] = &[
        (ErrorCode::InvalidJson, ErrorKind::InvalidRequest),
        (ErrorCode::InvalidRequest, ErrorKind::InvalidRequest),
        (ErrorCode::UnsupportedMediaType, ErrorKind::InvalidRequest),
        (ErrorCode::BodyTooLarge, ErrorKind::InvalidRequest),
        (ErrorCode::TooManyEntries, ErrorKind::InvalidRequest),
        (ErrorCode::EntryTooLarge, ErrorKind::InvalidRequest),
        (ErrorCode::EnvelopeTooLarge, ErrorKind::InvalidRequest),
        (ErrorCode::InvalidLimit, ErrorKind::InvalidRequest),
        (ErrorCode::CursorBeyondHead, ErrorKind::InvalidRequest),
        (ErrorCode::MissingToken, ErrorKind::Unauthorized),
        (ErrorCode::InvalidToken, ErrorKind::Unauthorized),
        (ErrorCode::TokenExpired, ErrorKind::Unauthorized),
        (ErrorCode::InvalidCredentials, ErrorKind::WrongPassword),
        (ErrorCode::InvalidRecoveryKey, ErrorKind::WrongRecoveryKey),
        (ErrorCode::InvalidApiKey, ErrorKind::Unauthorized),
        (ErrorCode::DeviceRemoved, ErrorKind::Unauthorized),
        (ErrorCode::RegistrationClosed, ErrorKind::Forbidden),
        (ErrorCode::EmailTaken, ErrorKind::Conflict),
        (ErrorCode::DeviceNotFound, ErrorKind::NotFound),
        (ErrorCode::DeviceTokenRequired, ErrorKind::Forbidden),
        (ErrorCode::DeviceMismatch, ErrorKind::Forbidden),
        (ErrorCode::KeyNotFound, ErrorKind::NotFound),
        (ErrorCode::VersionConflict, ErrorKind::Conflict),
        (ErrorCode::NotFound, ErrorKind::NotFound),
        (ErrorCode::BlobTooLarge, ErrorKind::InvalidRequest),
        (ErrorCode::BlobNotFound, ErrorKind::NotFound),
        (ErrorCode::BlobMismatch, ErrorKind::InvalidRequest),
        (ErrorCode::InvalidSignature, ErrorKind::InvalidRequest),
        (ErrorCode::MethodNotAllowed, ErrorKind::InvalidRequest),
        (ErrorCode::RequestTimeout, ErrorKind::Server),
        (ErrorCode::RateLimited, ErrorKind::RateLimited),
        (ErrorCode::Unavailable, ErrorKind::Server),
        (ErrorCode::Internal, ErrorKind::Server),
        (ErrorCode::AppNotFound, ErrorKind::NotFound),
        (ErrorCode::InvalidRedirectUri, ErrorKind::InvalidRequest),
        (ErrorCode::TooManyApps, ErrorKind::Conflict),
        (ErrorCode::QuotaExceeded, ErrorKind::QuotaExceeded),
        (ErrorCode::TransferSlowed, ErrorKind::RateLimited),
    ];

    fn answer(code: ErrorCode, status: u16) -> Error {
        Error::from_server(code, status, "m".into(), None)
    }

    #[test]
    fn every_code_has_its_kind_whatever_the_status() {
        let listed: Vec<ErrorCode> = KINDS.iter().map(|&(code, _)| code).collect();
        assert_eq!(listed, ErrorCode::ALL, "KINDS has one row per protocol code, in order");
        for &(code, kind) in KINDS {
            assert_eq!(answer(code, code.http_status()).kind(), kind, "{code}");
            // The code decides, not the status: a proxy's or a store's status does not change what the code means.
            assert_eq!(answer(code, 500).kind(), kind, "{code} with 500");
            assert_eq!(answer(code, code.http_status()).code(), Some(code));
        }
    }

    #[test]
    fn an_unknown_code_is_placed_by_its_status_as_known_codes_are() {
        // Some codes are more precise than their status: a 401 of unknown meaning is about the session, not the
        // password, a 403 one is a refusal by policy, not a blob URL or a full app, and a 409 one is a conflict to
        // resolve, not a cursor past the head or bytes other than declared, which no retry or re-read fixes.
        let precise = [
            ErrorCode::InvalidCredentials,
            ErrorCode::InvalidRecoveryKey,
            ErrorCode::InvalidSignature,
            ErrorCode::QuotaExceeded,
            ErrorCode::CursorBeyondHead,
            ErrorCode::BlobMismatch,
        ];
        for &(code, kind) in KINDS.iter().filter(|(code, _)| !precise.contains(code)) {
            assert_eq!(answer(ErrorCode::Unknown, code.http_status()).kind(), kind, "{}", code.http_status());
        }
        assert_eq!(answer(ErrorCode::Unknown, 401).kind(), ErrorKind::Unauthorized);
        assert_eq!(answer(ErrorCode::Unknown, 403).kind(), ErrorKind::Forbidden);
        for (status, kind) in [(418, ErrorKind::InvalidRequest), (502, ErrorKind::Server), (302, ErrorKind::Server)] {
            assert_eq!(answer(ErrorCode::Unknown, status).kind(), kind, "{status}");
        }
    }

    #[test]
    fn oauth_refusals_say_what_to_do_next() {
        let refusal = |error: &str, description: Option<&str>| OAuthError {
            error: error.to_owned(),
            error_description: description.map(str::to_owned),
        };
        let used = Error::from_oauth(refusal("invalid_grant", Some("the code was already used")), Some(400), None);
        assert_eq!(used.kind(), ErrorKind::Unauthorized);
        assert_eq!(used.to_string(), "the sign-in was refused: the code was already used (invalid_grant)");
        assert!(!used.is_retryable());
        let declined = Error::from_oauth(refusal("access_denied", None), None, None);
        assert_eq!(
            (declined.kind(), declined.to_string().as_str()),
            (ErrorKind::Unauthorized, "the sign-in was refused (access_denied)")
        );
        let unknown_client = Error::from_oauth(refusal("invalid_client", Some("no such client")), Some(401), None);
        assert_eq!(unknown_client.kind(), ErrorKind::InvalidInput);
        let down = Error::from_oauth(refusal("temporarily_unavailable", None), None, None);
        assert!(down.is_retryable());
        // Placed by its status when there is one, and as a refused request when the browser carried it.
        assert_eq!(Error::from_oauth(refusal("something_new", None), Some(503), None).kind(), ErrorKind::Server);
        assert_eq!(Error::from_oauth(refusal("something_new", None), None, None).kind(), ErrorKind::InvalidRequest);
    }

    #[test]
    fn a_timed_out_request_is_retryable_and_a_closed_sign_up_is_not() {
        let timeout = answer(ErrorCode::RequestTimeout, 408);
        assert_eq!(timeout.kind(), ErrorKind::Server);
        assert!(timeout.is_retryable());
        assert!(answer(ErrorCode::Unknown, 408).is_retryable(), "a proxy's 408 too");
        assert!(!answer(ErrorCode::RegistrationClosed, 403).is_retryable());
        assert!(!answer(ErrorCode::InvalidSignature, 403).is_retryable());
    }
}
