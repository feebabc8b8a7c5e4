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

    /// The HTTP status of this error's code, as the protocol crate maps it.
    pub fn status(&self) -> StatusCode {
        // Every protocol status is a valid one (tested below); a 500 still beats a panic while answering.
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_answers_its_protocol_status() {
        for &code in ErrorCode::ALL {
            let status = ApiError::new(code, "x").status();
            assert_eq!(status.as_u16(), code.http_status(), "{code}");
            assert!(status.is_client_error() || status.is_server_error(), "{code}: {status}");
        }
    }
}
