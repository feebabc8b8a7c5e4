//! `POST /api/sync/blobs/upload`, `/confirm` and `/download`, and `DELETE /api/sync/blobs/{hash}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use synckit_http::{ApiError, AuthenticatedDevice, Headroom, Json};
use synckit_protocol::blobs::{
    BlobConfirmRequest, BlobConfirmResponse, BlobDownloadRequest, BlobDownloadResponse, BlobUploadRequest,
    BlobUploadResponse, is_blob_hash,
};
use synckit_protocol::limits::MAX_BLOB_BYTES;
use synckit_protocol::{ErrorBody, ErrorCode, paths};
use synckit_store::{BlobHash, UploadBegun};
use tracing::instrument;

use crate::BlobState;
use crate::objects::{ObjectKey, ObjectStoreError, UrlHolder};

fn parse_hash(hash: &str) -> Result<BlobHash, ApiError> {
    let mut bytes = [0u8; 32];
    if !is_blob_hash(hash) || hex::decode_to_slice(hash, &mut bytes).is_err() {
        return Err(ApiError::invalid("hash must be 64 lowercase hex characters"));
    }
    Ok(bytes)
}

fn check_size(size: u64) -> Result<(), ApiError> {
    if size > MAX_BLOB_BYTES {
        return Err(ApiError::new(
            ErrorCode::BlobTooLarge,
            format!("a blob is at most {MAX_BLOB_BYTES} bytes of ciphertext, got {size}"),
        ));
    }
    Ok(())
}

/// Whom a URL is for: the calling device at its token's version.
fn holder(auth: &AuthenticatedDevice) -> UrlHolder {
    UrlHolder { device_id: auth.device_id, token_version: auth.token.token_version }
}

fn store_error(err: ObjectStoreError) -> ApiError {
    match err {
        ObjectStoreError::Unavailable(_) => {
            tracing::warn!(error = %synckit_http::error::ErrorChain(&err), "object store unavailable");
            ApiError {
                retry_after_secs: Some(1),
                ..ApiError::new(ErrorCode::Unavailable, "the blob store is unavailable; retry shortly")
            }
        }
        ObjectStoreError::Other(_) => ApiError::internal(&err),
    }
}

/// Where to upload a blob: a URL signed for exactly this length and SHA-256, or `already_exists` when the caller
/// has this blob confirmed (nothing to do).
///
/// A blob that would take the app past its plan's storage limit is refused with 403 `quota_exceeded`; over the
/// period's transfer budget the app is paced (429 `transfer_slowed`). The blob counts as stored and transferred once
/// it is confirmed.
#[utoipa::path(post, path = paths::BLOBS_UPLOAD, tag = "blobs", request_body = BlobUploadRequest,
    security(("device" = [])),
    responses(
        (status = 200, body = BlobUploadResponse, headers(
            ("synckit-storage-remaining" = u64, description = "bytes the app may still store (apps with a plan)"),
            ("synckit-transfer-remaining" = u64, description = "bytes the app may still transfer this period before \
                it is slowed (apps with a plan)"),
        )),
        (status = 400, description = "- `invalid_request`: a malformed hash or checksum", body = ErrorBody),
        (status = 403, description = "- `quota_exceeded`: the blob would take the app past its plan's storage limit",
            body = ErrorBody),
        (status = 413, description = "- `blob_too_large`: `size` is over the largest blob", body = ErrorBody),
        (status = 429, description = "- `transfer_slowed`: the app used its transfer budget; retry after \
            `Retry-After` seconds", body = ErrorBody),
    ))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %auth.user_id, app.id = %auth.app_id, size = req.size))]
pub async fn upload(
    State(state): State<BlobState>,
    auth: AuthenticatedDevice,
    Json(req): Json<BlobUploadRequest>,
) -> Result<(Headroom, Json<BlobUploadResponse>), ApiError> {
    let hash = parse_hash(&req.hash)?;
    check_size(req.size)?;
    let checksum: [u8; 32] =
        STANDARD.decode(&req.checksum_sha256).ok().and_then(|bytes| bytes.try_into().ok()).ok_or_else(|| {
            ApiError::invalid("checksum_sha256 must be the base64 SHA-256 (32 bytes) of the ciphertext")
        })?;

    let stream = auth.stream();
    let already_exists = |headroom| {
        let response =
            BlobUploadResponse { upload_url: None, headers: Default::default(), already_exists: true, expires_in: 0 };
        Ok((headroom, Json(response)))
    };
    state.meter.check_transfer(auth.app_id).await?;
    let headroom = match state.meter.check_storage(auth.app_id, req.size).await {
        Ok(headroom) => headroom,
        // A blob the user has already takes no more room.
        Err(full) => match state.catalog.blob(stream, hash).await?.filter(|r| r.confirmed) {
            Some(_) => return already_exists(state.meter.headroom(auth.app_id).await?),
            None => return Err(full),
        },
    };
    let upload_id = match state.catalog.begin_upload(stream, hash, req.size, checksum).await? {
        UploadBegun::Pending { upload_id } => upload_id,
        UploadBegun::AlreadyConfirmed(_) => return already_exists(headroom),
    };
    let key = ObjectKey { stream, hash, upload_id };
    let signed = state
        .objects
        .presign_put(&key, req.size, &checksum, state.settings.url_expiry, holder(&auth))
        .await
        .map_err(store_error)?;
    let response = BlobUploadResponse {
        upload_url: Some(signed.url),
        headers: signed.headers,
        already_exists: false,
        expires_in: state.settings.url_expiry.as_secs(),
    };
    Ok((headroom, Json(response)))
}

/// Records an upload as done once the store holds exactly the declared bytes. Confirming again is harmless.
#[utoipa::path(post, path = paths::BLOBS_CONFIRM, tag = "blobs", request_body = BlobConfirmRequest,
    security(("device" = [])),
    responses(
        (status = 200, body = BlobConfirmResponse),
        (status = 400, description = "- `invalid_request`: a malformed hash", body = ErrorBody),
        (status = 404, description = "- `blob_not_found`: no upload begun, or nothing uploaded yet", body = ErrorBody),
        (status = 409, description = "- `blob_mismatch`: another size than the upload declared, or stored bytes that \
            are not the declared ones (they are removed)", body = ErrorBody),
        (status = 413, description = "- `blob_too_large`: `size` is over the largest blob", body = ErrorBody),
    ))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %auth.user_id, app.id = %auth.app_id, size = req.size))]
pub async fn confirm(
    State(state): State<BlobState>,
    auth: AuthenticatedDevice,
    Json(req): Json<BlobConfirmRequest>,
) -> Result<Json<BlobConfirmResponse>, ApiError> {
    let hash = parse_hash(&req.hash)?;
    check_size(req.size)?;
    let stream = auth.stream();
    let confirmed = || Json(BlobConfirmResponse { hash: req.hash.clone(), size: req.size });

    let Some(record) = state.catalog.blob(stream, hash).await? else {
        return Err(ApiError::new(ErrorCode::BlobNotFound, "no upload of this blob was begun (or it expired)"));
    };
    if record.size != req.size {
        return Err(ApiError::new(
            ErrorCode::BlobMismatch,
            format!("this blob was declared with {} bytes, not {}", record.size, req.size),
        ));
    }
    if record.confirmed {
        return Ok(confirmed());
    }

    let key = ObjectKey { stream, hash, upload_id: record.upload_id };
    let Some(stored) = state.objects.head(&key).await.map_err(store_error)? else {
        return Err(ApiError::new(ErrorCode::BlobNotFound, "nothing has been uploaded for this blob yet"));
    };
    if stored.size != record.size || stored.checksum != Some(record.checksum) {
        // Not what was signed: the store should have refused it. Remove it so it can never be confirmed.
        tracing::warn!(%key, stored.size, "stored object differs from its signed upload; removing it");
        state.objects.delete(&key).await.map_err(store_error)?;
        return Err(ApiError::new(
            ErrorCode::BlobMismatch,
            "the stored bytes are not the declared ones; they were removed: upload again",
        ));
    }
    if !state.catalog.confirm(stream, hash, record.upload_id, record.size, record.checksum).await? {
        return Err(ApiError::new(ErrorCode::BlobNotFound, "the upload expired or was replaced while confirming"));
    }
    synckit_http::metrics::blob_bytes_confirmed(record.size);
    // The store counted it; the meter notes it.
    let size = i64::try_from(record.size).unwrap_or(i64::MAX);
    state.meter.stored(stream, size, record.size);
    Ok(confirmed())
}

/// Where to download a confirmed blob of the caller. Each URL signed counts the blob's size as transferred (the
/// object store's own traffic is not read); over the period's transfer budget the app is paced (429
/// `transfer_slowed`).
#[utoipa::path(post, path = paths::BLOBS_DOWNLOAD, tag = "blobs", request_body = BlobDownloadRequest,
    security(("device" = [])),
    responses(
        (status = 200, body = BlobDownloadResponse, headers(
            ("synckit-storage-remaining" = u64, description = "bytes the app may still store (apps with a plan)"),
            ("synckit-transfer-remaining" = u64, description = "bytes the app may still transfer this period before \
                it is slowed (apps with a plan)"),
        )),
        (status = 400, description = "- `invalid_request`: a malformed hash", body = ErrorBody),
        (status = 404, description = "- `blob_not_found`: no confirmed blob with this hash", body = ErrorBody),
        (status = 429, description = "- `transfer_slowed`: the app used its transfer budget; retry after \
            `Retry-After` seconds", body = ErrorBody),
    ))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %auth.user_id, app.id = %auth.app_id))]
pub async fn download(
    State(state): State<BlobState>,
    auth: AuthenticatedDevice,
    Json(req): Json<BlobDownloadRequest>,
) -> Result<(Headroom, Json<BlobDownloadResponse>), ApiError> {
    let hash = parse_hash(&req.hash)?;
    let stream = auth.stream();
    state.meter.check_transfer(auth.app_id).await?;
    let record = state.catalog.blob(stream, hash).await?.filter(|r| r.confirmed);
    let Some(record) = record else {
        return Err(ApiError::new(ErrorCode::BlobNotFound, "no confirmed blob with this hash"));
    };
    let key = ObjectKey { stream, hash, upload_id: record.upload_id };
    let signed =
        state.objects.presign_get(&key, state.settings.url_expiry, holder(&auth)).await.map_err(store_error)?;
    let headroom = state.meter.transferred(stream, record.size);
    let response = BlobDownloadResponse {
        download_url: signed.url,
        size: record.size,
        expires_in: state.settings.url_expiry.as_secs(),
    };
    Ok((headroom, Json(response)))
}

/// Deletes one of the user's blobs in this app, confirmed or still uploading: its record at once (it is no longer
/// downloadable, nor counted as stored), then its object in the store. Uploading the same file again later works as
/// a first upload.
#[utoipa::path(delete, path = paths::BLOB, tag = "blobs", security(("device" = [])),
    params(("hash" = String, Path, pattern = "^[0-9a-f]{64}$",
        description = "the blob's content id: 64 lowercase hex characters")),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, description = "- `invalid_request`: a malformed hash", body = ErrorBody),
        (status = 404, description = "- `blob_not_found`: the user has no blob with this hash in this app (a repeated \
            delete answers this too)", body = ErrorBody),
    ))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %auth.user_id, app.id = %auth.app_id))]
pub async fn delete(
    State(state): State<BlobState>,
    auth: AuthenticatedDevice,
    Path(hash): Path<String>,
) -> Result<StatusCode, ApiError> {
    let hash = parse_hash(&hash)?;
    let stream = auth.stream();
    let Some(record) = state.catalog.delete(stream, hash).await? else {
        return Err(ApiError::new(ErrorCode::BlobNotFound, "no blob with this hash"));
    };
    if record.confirmed {
        state.meter.stored(stream, -i64::try_from(record.size).unwrap_or(i64::MAX), 0);
    }
    // The record is gone, so nothing signs a URL for the object again. If the store cannot remove the object now,
    // its bytes are unreachable and the operator's sweep of the app's prefix removes them; the delete stands.
    let key = ObjectKey { stream, hash, upload_id: record.upload_id };
    if let Err(e) = state.objects.delete(&key).await {
        tracing::warn!(%key, error = %synckit_http::error::ErrorChain(&e), "a deleted blob's object was not removed");
    }
    Ok(StatusCode::NO_CONTENT)
}
