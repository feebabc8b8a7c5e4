use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use synckit_http::budget::Reserve;
use synckit_http::{ApiError, AuthenticatedDevice, Json};
use synckit_protocol::limits::{MAX_ENTRY_BYTES, MAX_PULL_LIMIT, MAX_PULL_PAGE_BYTES};
use synckit_protocol::sync::{PullRequest, PullResponse, StatusResponse};
use synckit_protocol::{ErrorBody, ErrorCode, paths};
use tracing::instrument;

use crate::QueryState;
use crate::page_json::{JSON_BYTES_PER_ENTRY, encode_page};

/// What one entry read from the store costs beside its payload: the `Entry` and its allocation.
const ROW_BYTES_PER_ENTRY: u64 = 128;

/// The most memory a pull of `limit` entries holds while it builds its page: the rows read from the store and their
/// JSON side by side, every entry at the largest size, and the payloads at most the page's byte budget. The one place
/// a pull's reservation is sized: it is reserved before the store is read, and shrunk to the JSON's length once that
/// is written. A full page of 500 comes to about 9.5 MiB.
pub fn page_reservation(limit: u32) -> u64 {
    let payloads = (u64::from(limit) * MAX_ENTRY_BYTES as u64).min(MAX_PULL_PAGE_BYTES as u64);
    let rows = payloads + u64::from(limit) * ROW_BYTES_PER_ENTRY;
    let json = payloads.div_ceil(3) * 4 + u64::from(limit) * JSON_BYTES_PER_ENTRY;
    rows + json
}

/// The caller's entries after `cursor`, oldest first: at most `limit` (500 by default), and at most 4 MiB of
/// payloads (but always one entry). `has_more` says whether more follow.
///
/// The payloads returned count as the app's transfer; over the period's transfer budget pulls are paced (429
/// `transfer_slowed`), never refused for good. The answer carries the app's headroom headers.
#[utoipa::path(post, path = paths::PULL, tag = "sync", request_body = PullRequest, security(("device" = [])),
    responses(
        (status = 200, body = PullResponse, headers(
            ("synckit-storage-remaining" = u64, description = "bytes the app may still store (apps with a plan)"),
            ("synckit-transfer-remaining" = u64, description = "bytes the app may still transfer this period before \
                it is slowed (apps with a plan)"),
        )),
        (status = 400, description = "- `invalid_limit`: `limit` is not 1 to 500", body = ErrorBody),
        (status = 409, description = "- `cursor_beyond_head`: the cursor is past the stream's newest entry: another \
            server, user or app, or data restored from an older backup", body = ErrorBody),
        (status = 429, description = "- `transfer_slowed`: the app used its transfer budget; retry after \
            `Retry-After` seconds", body = ErrorBody),
    ))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %auth.user_id, app.id = %auth.app_id, cursor = req.cursor))]
pub async fn pull(
    State(state): State<QueryState>,
    auth: AuthenticatedDevice,
    reserve: Reserve,
    Json(req): Json<PullRequest>,
) -> Result<Response, ApiError> {
    let limit = req.limit.unwrap_or(MAX_PULL_LIMIT);
    if !(1..=MAX_PULL_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidLimit,
            format!("limit must be 1 to {MAX_PULL_LIMIT}, got {limit}"),
        ));
    }
    state.meter.check_transfer(auth.app_id).await?;
    // Before the store is read: a 20-byte request must not make the server build a page it has no room for.
    let memory = reserve.bytes(page_reservation(limit)).await?;
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
    synckit_http::metrics::entries_pulled(page.entries.len() as u64);
    let payloads: u64 = page.entries.iter().map(|e| e.payload.len() as u64).sum();
    let headroom = state.meter.transferred(auth.stream(), payloads);
    drop(page);
    // The rows are gone; the JSON stays until it is written.
    memory.shrink_to(body.capacity() as u64);
    let mut response = (headroom, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    response.extensions_mut().insert(memory);
    Ok(response)
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
