use std::time::Duration;

use axum::extract::{Request, State};
use synckit_bus::{CommitBus, CommitNotice};
use synckit_http::{ApiError, AuthenticatedDevice, Headroom, Json};
use synckit_protocol::limits::{MAX_ENTRY_BYTES, MAX_PUSH_ENTRIES};
use synckit_protocol::sync::{PushRequest, PushResponse};
use synckit_protocol::{ErrorBody, ErrorCode, paths};
use synckit_store::NewEntry;
use tracing::instrument;

use crate::IngestState;

/// The longest a push waits for its notice to be published. The push has committed already: a notice that does
/// not make it only delays other devices until their next pull.
const PUBLISH_TIMEOUT: Duration = Duration::from_millis(250);

async fn publish(bus: &dyn CommitBus, notice: CommitNotice) {
    match tokio::time::timeout(PUBLISH_TIMEOUT, bus.publish(&notice)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "commit notice not published"),
        Err(_) => tracing::warn!("commit notice not published within {PUBLISH_TIMEOUT:?}"),
    }
}

/// Appends up to 500 encrypted changes from the device whose token calls. Change ids already stored are skipped,
/// so retrying a push whose answer was lost is safe.
///
/// Pushes to one stream take turns (see [`crate::admission`]); when too many are already in progress, the push is
/// refused with 429 before its body is read.
///
/// An app with a plan is held to it: a push whose payloads would take the app past its storage limit stores nothing
/// and is refused with 403 `quota_exceeded`, and over the period's transfer budget pushes are paced (429
/// `transfer_slowed`). The answer carries the app's headroom headers.
#[utoipa::path(post, path = paths::PUSH, tag = "sync", request_body = PushRequest, security(("device" = [])),
    responses(
        (status = 200, body = PushResponse, headers(
            ("synckit-storage-remaining" = u64, description = "bytes the app may still store (apps with a plan)"),
            ("synckit-transfer-remaining" = u64, description = "bytes the app may still transfer this period before \
                it is slowed (apps with a plan)"),
        )),
        (status = 400, description = "- `too_many_entries`: more than 500 entries", body = ErrorBody),
        (status = 403, description = "- `device_mismatch`: `device_id` is not the token's device\n\
            - `quota_exceeded`: the push would take the app past its plan's storage limit", body = ErrorBody),
        (status = 413, description = "- `entry_too_large`: an entry's payload is over 64 KiB", body = ErrorBody),
        (status = 429, description = "- `transfer_slowed`: the app used its transfer budget; retry after \
            `Retry-After` seconds", body = ErrorBody),
    ))]
#[instrument(skip_all, err(Display, level = "debug"),
    fields(user.id = %auth.user_id, app.id = %auth.app_id, entries = tracing::field::Empty))]
pub async fn push(
    State(state): State<IngestState>,
    auth: AuthenticatedDevice,
    request: Request,
) -> Result<(Headroom, Json<PushResponse>), ApiError> {
    // Over its transfer budget an app is paced before anything is read.
    state.meter.check_transfer(auth.app_id).await?;
    // A place in the stream's queue first, so that a push turned away costs no body read and no parse; then the
    // stream's turn, so that one stream's pushes are read and parsed one at a time.
    let place = state.admission.enqueue(auth.stream())?;
    let turn = place.turn().await;
    let Json(req) = Json::<PushRequest>::from_request_off_runtime(request, &state).await?;
    tracing::Span::current().record("entries", req.entries.len());
    if req.entries.len() > MAX_PUSH_ENTRIES {
        return Err(ApiError::new(
            ErrorCode::TooManyEntries,
            format!("a push takes at most {MAX_PUSH_ENTRIES} entries, got {}", req.entries.len()),
        ));
    }
    if let Some((i, e)) = req.entries.iter().enumerate().find(|(_, e)| e.payload.as_bytes().len() > MAX_ENTRY_BYTES) {
        return Err(ApiError::new(
            ErrorCode::EntryTooLarge,
            format!("entry {i} ({}) is {} bytes; at most {MAX_ENTRY_BYTES}", e.change_id, e.payload.as_bytes().len()),
        ));
    }
    // The token's check found its device registered; a device pushes only as itself.
    if req.device_id != auth.device_id {
        return Err(ApiError::new(
            ErrorCode::DeviceMismatch,
            format!(
                "this token belongs to device {}, not {}; push with the device's own token",
                auth.device_id, req.device_id
            ),
        ));
    }
    let stream = auth.stream();
    // Retried entries count here as if new: a retry that finds the app full waits with the rest, and goes through
    // once there is room, storing nothing twice.
    let incoming: u64 = req.entries.iter().map(|e| e.payload.as_bytes().len() as u64).sum();
    state.meter.check_storage(auth.app_id, incoming).await?;

    let entries: Vec<NewEntry> =
        req.entries.into_iter().map(|e| NewEntry { change_id: e.change_id, payload: e.payload.into_vec() }).collect();
    let in_database = place.database().await;
    let appended = state.changelog.append(stream, req.device_id, entries).await?;
    drop((in_database, turn, place));
    let headroom = state.meter.stored(stream, appended.bytes as i64, appended.bytes);
    if appended.accepted > 0 {
        synckit_http::metrics::entries_pushed(u64::from(appended.accepted));
        let notice = CommitNotice { stream, cursor: appended.head, device_id: req.device_id };
        publish(&*state.bus, notice).await;
    }
    let response = PushResponse { cursor: appended.head, accepted: appended.accepted, duplicates: appended.duplicates };
    Ok((headroom, Json(response)))
}
