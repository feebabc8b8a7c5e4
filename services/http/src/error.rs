//! The error every handler returns, rendered as `{"error": {"code", "message"}}`.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use synckit_protocol::{ErrorBody, ErrorCode, ErrorDetail};
use synckit_store::StoreError;

/// Seconds a client is asked to wait when the database is unavailable.
const UNAVAILABLE_RETRY_AFTER_SECS: u32 = 1;

/// A protocol error: a code, a sentence for people, and for 429 and 503 how long to wait.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
    pub retry_after_secs: Option<u32>,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self { code, message: message.into(), retry_after_secs: None }
    }

    /// 400 `invalid_request`.
    pub fn invalid(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// 503 `unavailable` with `Retry-After`.
    pub fn unavailable() -> Self {
        Self {
            retry_after_secs: Some(UNAVAILABLE_RETRY_AFTER_SECS),
            ..Self::new(ErrorCode::Unavailable, "the database is unavailable; retry shortly")
        }
    }

    /// 500 `internal`. The cause is logged, never sent.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %ErrorChain(cause), "internal error");
        Self::new(ErrorCode::Internal, "internal server error")
    }

    /// The HTTP status of this error's code.
    pub fn status(&self) -> StatusCode {
        status_of(self.code)
    }
}

/// The one place wire codes meet HTTP statuses.
pub fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        InvalidJson | InvalidRequest | TooManyEntries | InvalidLimit | CursorBeyondHead | BlobMismatch => {
            StatusCode::BAD_REQUEST
        }
        UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        BodyTooLarge | EntryTooLarge | EnvelopeTooLarge | BlobTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        MissingToken | InvalidToken | TokenExpired | InvalidCredentials | InvalidApiKey => StatusCode::UNAUTHORIZED,
        RegistrationClosed | InvalidSignature => StatusCode::FORBIDDEN,
        DeviceNotFound | KeyNotFound | NotFound | BlobNotFound => StatusCode::NOT_FOUND,
        MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        EmailTaken | VersionConflict => StatusCode::CONFLICT,
        RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Internal | Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match &err {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %ErrorChain(&err), "storage unavailable");
                Self::unavailable()
            }
            // Callers that expect a uniqueness conflict match it before converting; here it is a bug.
            StoreError::AlreadyExists | StoreError::Other(_) => Self::internal(&err),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: self.message.into_owned() } };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Displays an error with its sources: "a: b: c".
#[derive(Debug)]
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}
