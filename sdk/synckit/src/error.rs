//! The SDK's one error type: a matchable [`ErrorKind`], a message, and the cause.

use std::fmt;
use std::time::Duration;

use synckit_protocol::ErrorCode;

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
    /// The server asked to slow down; [`Error::retry_after`] says for how long.
    RateLimited,
    /// The server refused the request as malformed or too large: a bug in the caller or the SDK. For blobs,
    /// [`Error::code`] tells a blob over the limit (`blob_too_large`), bytes other than those declared
    /// (`blob_mismatch`) and a signed URL that expired (`invalid_signature`: ask for a new one) apart.
    InvalidRequest,
    /// The server failed, or stayed unavailable through every retry.
    Server,
    /// The network: connection refused, reset, timed out.
    Transport,
    /// Ciphertext that does not decrypt: tampered, truncated, swapped, or under another key (an entry or a blob).
    Crypto,
    /// The password does not open the key envelope (or sign in).
    WrongPassword,
    /// The OS keychain or the fallback key store failed.
    Keystore,
    /// Encryption is not set up on this client yet: call `setup_encryption_new`, `setup_encryption_existing` or
    /// `try_load_key_from_keychain` first.
    Locked,
    /// The caller passed something unusable (an empty password, a bad URL, a file too large or unreadable, or one
    /// that changed while it was uploaded).
    InvalidInput,
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
        let kind = match (code, status) {
            (ErrorCode::InvalidCredentials, _) => ErrorKind::WrongPassword,
            (ErrorCode::BlobNotFound, _) => ErrorKind::NotFound,
            // Too large, not the declared bytes, or a signed URL that expired or was altered: the request as sent
            // cannot succeed; the code says which (an expired URL needs a new one).
            (ErrorCode::BlobTooLarge | ErrorCode::BlobMismatch | ErrorCode::InvalidSignature, _) => {
                ErrorKind::InvalidRequest
            }
            (_, 401) => ErrorKind::Unauthorized,
            (_, 404) => ErrorKind::NotFound,
            (_, 409) => ErrorKind::Conflict,
            (_, 429) => ErrorKind::RateLimited,
            (_, 400..=499) => ErrorKind::InvalidRequest,
            _ => ErrorKind::Server,
        };
        Self { kind, message, code: Some(code), retry_after, source: None }
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

    /// Whether trying again later may succeed: true for [`ErrorKind::Transport`], [`ErrorKind::Server`] and
    /// [`ErrorKind::RateLimited`].
    ///
    /// ```
    /// let err = synckit::crypto::SecretKey::from_bytes(b"too short").unwrap_err();
    /// assert!(!err.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Transport | ErrorKind::Server | ErrorKind::RateLimited)
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
