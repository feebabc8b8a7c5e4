//! What the fuzz targets in `fuzz/` call: the SDK's decoders of bytes that come from the server, each reached as the
//! SDK reaches it, and the deterministic sealing the targets check them against. Compiled only with
//! `--cfg fuzzing`, which cargo-fuzz sets; not part of the API.

use futures::StreamExt;
use synckit_protocol::sync::{PullResponse, PulledEntry};
use uuid::Uuid;

use crate::blobs::BlobDownloadUrl;
use crate::crypto::blob::BlobId;
use crate::crypto::{Envelope, KdfParams, Keys, RecoveryKey, SecretKey};
use crate::error::Result;
use crate::model::Session;
use crate::page::PullPage;

/// The wrapping key of a version 2 envelope with `salt` (the slow Argon2id run [`Envelope::open`] starts with).
pub fn wrapping_key(password: &str, salt: &[u8]) -> Result<SecretKey> {
    crate::crypto::wrapping_key(password, salt, KdfParams::DEFAULT)
}

/// [`Envelope::open`] after its key derivation.
pub fn open_envelope(envelope: &Envelope<'_>, wrapping: &SecretKey, app_id: Uuid, user_id: Uuid) -> Result<SecretKey> {
    envelope.open_with(wrapping, app_id, user_id)
}

/// [`Envelope::confirm_legacy`] after its key derivation.
pub fn confirm_legacy_envelope(
    envelope: &Envelope<'_>,
    login_key: &SecretKey,
    app_id: Uuid,
    user_id: Uuid,
    held: &SecretKey,
) -> Result<()> {
    envelope.confirm_legacy_with(login_key, app_id, user_id, held)
}

/// The version 2 envelope that sealing `master` after `header` (version, parameters, salt) under `nonce` makes.
pub fn seal_envelope(
    master: &SecretKey,
    wrapping: &SecretKey,
    header: &[u8],
    nonce: &[u8; 24],
    app_id: Uuid,
    user_id: Uuid,
) -> Result<Vec<u8>> {
    crate::crypto::seal_v2(master, wrapping, header.to_vec(), nonce, app_id, user_id)
}

/// The recovery envelope that sealing `master` under `recovery_key` with `nonce` makes.
pub fn seal_recovery_envelope(
    master: &SecretKey,
    recovery_key: &RecoveryKey,
    nonce: &[u8; 24],
    app_id: Uuid,
    user_id: Uuid,
) -> Vec<u8> {
    crate::crypto::seal_recovery_envelope_with(master, recovery_key, nonce, app_id, user_id)
}

/// The payload [`Keys::seal_entry`] makes with `nonce`.
pub fn seal_entry(
    keys: &Keys,
    plaintext: &[u8],
    nonce: &[u8; 24],
    app_id: Uuid,
    user_id: Uuid,
    change_id: Uuid,
) -> Vec<u8> {
    keys.seal_entry_with_nonce(plaintext, nonce, app_id, user_id, change_id)
}

/// A pulled page decrypted as [`SyncKitClient::pull`](crate::SyncKitClient::pull) decrypts it, for the device
/// `device_id` of the (app, user).
pub fn open_page(keys: &Keys, app_id: Uuid, user_id: Uuid, device_id: Uuid, entries: Vec<PulledEntry>) -> PullPage {
    let session = Session {
        token: String::new(),
        user_id,
        app_id,
        email: String::new(),
        expires_at: time::OffsetDateTime::UNIX_EPOCH,
        device_id: Some(device_id),
    };
    let cursor = entries.last().map_or(0, |e| e.seq);
    crate::page::open(PullResponse { entries, cursor, has_more: false }, keys, &session, device_id)
}

/// A blob downloaded as [`SyncKitClient::download_blob_bytes`](crate::SyncKitClient::download_blob_bytes) downloads it, from a body that
/// arrived as `pieces`, with the length the server declared.
pub fn open_blob<'a>(
    keys: &Keys,
    id: BlobId,
    sealed_size: u64,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>> {
    let source = BlobDownloadUrl {
        id,
        url: String::new(),
        sealed_size,
        expires_at: std::time::Instant::now() + std::time::Duration::from_secs(3600),
    };
    crate::blobs::open_pieces(keys, &source, pieces)
}

/// One server-sent event as live sync reads it: its type, data and id, and the cursor it announces, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveEvent {
    pub event: String,
    pub data: String,
    pub id: String,
    pub cursor: Option<u64>,
}

/// The events live sync reads from an event stream whose body arrived as `pieces`; `Err` where the stream broke.
pub fn live_events(pieces: Vec<Vec<u8>>) -> Vec<std::result::Result<LiveEvent, String>> {
    let body = futures::stream::iter(pieces.into_iter().map(Ok::<_, std::convert::Infallible>));
    let events = crate::http::server_sent_events(body).map(|item| {
        item.map(|e| LiveEvent { cursor: crate::live::event_cursor(&e), event: e.event, data: e.data, id: e.id })
            .map_err(|e| e.to_string())
    });
    futures::executor::block_on(events.collect())
}
