//! A JSON extractor that answers malformed input with a protocol error.

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use synckit_protocol::ErrorCode;

use crate::ApiError;

/// Like [`axum::Json`], but a body that is not JSON, not the expected shape, not declared as JSON or too large
/// becomes an [`ApiError`] naming the problem (and the field, where serde knows it).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !declares_json(&req) {
            return Err(not_json());
        }
        let body = read(req, state).await?;
        parse(&body)
    }
}

impl<T: DeserializeOwned + Send + 'static> Json<T> {
    /// Like the extractor, but a large body is parsed on a [bulk](crate::bulk) thread once it has been read. A push
    /// is up to 48 MiB of JSON, nearly all base64 to decode: parsed on one of the runtime's few workers, it would hold
    /// that worker, and every request queued behind it, for as long as the parse takes; on a bulk thread it also
    /// yields the CPU to other users' small requests. A small body is parsed where it is, in less time than a hand-over
    /// to another thread takes, and never waits behind large ones.
    pub async fn from_request_off_runtime<S: Send + Sync>(req: Request, state: &S) -> Result<Self, ApiError> {
        if !declares_json(&req) {
            return Err(not_json());
        }
        let body = read(req, state).await?;
        if body.len() <= PARSE_IN_PLACE_BYTES {
            parse(&body)
        } else {
            crate::bulk::run(move || parse(&body)).await.map_err(|e| ApiError::internal(&e))?
        }
    }
}

async fn read<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::new(ErrorCode::InvalidRequest, rejection.body_text())
        }
    })
}

/// Every request body of the API is a JSON object. serde would also read a struct from an array of its fields in
/// order (`[[1, 2]]` for `{"seqs": [1, 2]}`), a form the API does not speak; it is refused here, once for all.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<Json<T>, ApiError> {
    if body.trim_ascii_start().first() == Some(&b'[') {
        return Err(ApiError::invalid("the body must be a JSON object, not an array"));
    }
    axum::Json::<T>::from_bytes(body).map(|axum::Json(value)| Json(value)).map_err(rejection_to_error)
}

/// The largest body [`Json::from_request_off_runtime`] parses on the worker that read it: well under a millisecond of
/// parsing.
const PARSE_IN_PLACE_BYTES: usize = 64 * 1024;

/// `Content-Type: application/json`, or another JSON type (`application/*+json`), as [`axum::Json`] requires.
fn declares_json(req: &Request) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence.strip_prefix("application/").is_some_and(|sub| sub == "json" || sub.ends_with("+json"))
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn rejection_to_error(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::new(ErrorCode::InvalidRequest, e.body_text()),
        JsonRejection::JsonSyntaxError(e) => ApiError::new(ErrorCode::InvalidJson, e.body_text()),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        other => ApiError::new(ErrorCode::InvalidRequest, other.body_text()),
    }
}

fn not_json() -> ApiError {
    ApiError::new(ErrorCode::UnsupportedMediaType, "send the body with Content-Type: application/json")
}

fn too_large() -> ApiError {
    ApiError::new(ErrorCode::BodyTooLarge, "the request body is larger than this endpoint accepts")
}
