//! A whole-request deadline that answers with a protocol error.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use synckit_protocol::ErrorCode;

use crate::ApiError;

/// For [`axum::middleware::from_fn_with_state`]: a request (body upload included) that has not been answered
/// within the duration gets 408 `request_timeout`, so a slow client cannot hold a worker.
pub async fn request_timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            ErrorCode::RequestTimeout,
            format!("the request was not completed within {} s", limit.as_secs()),
        )
        .into_response(),
    }
}
