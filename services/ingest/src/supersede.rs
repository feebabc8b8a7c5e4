use axum::extract::State;
use synckit_http::{ApiError, AuthenticatedDevice, Json};
use synckit_protocol::limits::MAX_PUSH_ENTRIES;
use synckit_protocol::sync::{SupersedeRequest, SupersedeResponse};
use synckit_protocol::{ErrorBody, paths};
use tracing::instrument;

use crate::IngestState;

/// Compacts the caller's changelog: marks entries superseded, which a device does when later entries make them
/// irrelevant to every device (a later full write or a delete of the same row). Their payloads are dropped and stop
/// counting as stored; their places and change ids stay, so pulls still hand them over (`superseded`, with an empty
/// payload) and every device converges on what follows, and a late retry of one is still a duplicate. Sequence
/// numbers past the head and entries superseded already are skipped.
#[utoipa::path(post, path = paths::SUPERSEDE, tag = "sync", request_body = SupersedeRequest, security(("device" = [])),
    responses(
        (status = 200, body = SupersedeResponse),
        (status = 400, description = "- `too_many_entries`: more than 500 sequence numbers", body = ErrorBody),
    ))]
#[instrument(skip_all, err(Display, level = "debug"),
    fields(user.id = %auth.user_id, app.id = %auth.app_id, entries = req.seqs.len()))]
pub async fn supersede(
    State(state): State<IngestState>,
    auth: AuthenticatedDevice,
    Json(req): Json<SupersedeRequest>,
) -> Result<Json<SupersedeResponse>, ApiError> {
    if req.seqs.len() > MAX_PUSH_ENTRIES {
        return Err(ApiError::new(
            synckit_protocol::ErrorCode::TooManyEntries,
            format!("a request supersedes at most {MAX_PUSH_ENTRIES} entries, got {}", req.seqs.len()),
        ));
    }
    let stream = auth.stream();
    // In turn with the stream's pushes, which take the same lock.
    let place = state.admission.enqueue(stream)?;
    let turn = place.turn().await;
    let in_database = place.database().await;
    let done = state.changelog.supersede(stream, req.seqs).await?;
    drop((in_database, turn, place));
    state.meter.stored(stream, -i64::try_from(done.bytes).unwrap_or(i64::MAX), 0);
    Ok(Json(SupersedeResponse { superseded: done.entries, freed_bytes: done.bytes }))
}
