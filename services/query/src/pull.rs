use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use synckit_http::{ApiError, AuthenticatedDevice, Json};
use synckit_protocol::limits::{MAX_PULL_LIMIT, MAX_PULL_PAGE_BYTES};
use synckit_protocol::sync::{PullRequest, PullResponse, StatusResponse};
use synckit_protocol::{ErrorBody, ErrorCode, paths};
use tracing::instrument;

use crate::QueryState;
use crate::page_json::encode_page;

/// The caller's entries after `cursor`, oldest first: at most `limit` (500 by default), and at most 4 MiB of
/// payloads (but always one entry). `has_more` says whether more follow.
#[utoipa::path(post, path = paths::PULL, tag = "sync", request_body = PullRequest, security(("device" = [])),
    responses(
        (status = 200, body = PullResponse),
        (status = 400, description = "- `invalid_limit`: `limit` is not 1 to 500", body = ErrorBody),
        (status = 409, description = "- `cursor_beyond_head`: the cursor is past the stream's newest entry: another \
            server, user or app, or data restored from an older backup", body = ErrorBody),
    ))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %auth.user_id, app.id = %auth.app_id, cursor = req.cursor))]
pub async fn pull(
    State(state): State<QueryState>,
    auth: AuthenticatedDevice,
    Json(req): Json<PullRequest>,
) -> Result<Response, ApiError> {
    let limit = req.limit.unwrap_or(MAX_PULL_LIMIT);
    if !(1..=MAX_PULL_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidLimit,
            format!("limit must be 1 to {MAX_PULL_LIMIT}, got {limit}"),
        ));
    }
    let page = state.changelog.read(auth.stream(), req.cursor, limit, MAX_PULL_PAGE_BYTES).await?;
    if req.cursor > page.head {
        return Err(ApiError::new(
            ErrorCode::CursorBeyondHead,
            format!("cursor {} is past the newest entry ({}): wrong server or user?", req.cursor, page.head),
        ));
    }
    let cursor = page.entries.last().map_or(req.cursor, |e| e.seq);
    // Sequence numbers are contiguous, so anything below the head not yet returned is still to come.
    let body = encode_page(&page.entries, cursor, cursor < page.head);
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// How many changes the caller's stream holds and its newest cursor.
#[utoipa::path(get, path = paths::STATUS, tag = "sync", security(("device" = [])),
    responses((status = 200, body = StatusResponse)))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %auth.user_id, app.id = %auth.app_id))]
pub async fn status(
    State(state): State<QueryState>,
    auth: AuthenticatedDevice,
) -> Result<Json<StatusResponse>, ApiError> {
    let head = state.changelog.head(auth.stream()).await?;
    // Contiguous sequence numbers from 1: the head is also the count.
    Ok(Json(StatusResponse { change_count: head, cursor: head }))
}
