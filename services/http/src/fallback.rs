//! JSON answers for requests no route takes.

use axum::http::{Method, Uri};
use synckit_protocol::ErrorCode;

use crate::ApiError;

/// For [`axum::Router::fallback`]: 404 `not_found`.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no endpoint at {}", uri.path()))
}

/// For [`axum::Router::method_not_allowed_fallback`]: 405 `method_not_allowed`.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, format!("{} does not accept {method}", uri.path()))
}
