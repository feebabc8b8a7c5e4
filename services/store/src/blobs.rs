//! The blob catalogue port: which blobs each stream has uploaded and confirmed. The bytes themselves live in an
//! object store; this is what the server knows of them (sizes, checksums, states), all of it about ciphertext.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{StoreError, StreamId};

/// A blob's content id as the device chose it: opaque to the server, unique per stream.
pub type BlobHash = [u8; 32];

/// One blob of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobRecord {
    /// The ciphertext's length.
    pub size: u64,
    /// The ciphertext's SHA-256, as signed into the upload URL.
    pub checksum: [u8; 32],
    /// Confirmed: verified in the object store, and downloadable. Until then, an upload in progress.
    pub confirmed: bool,
    /// The upload whose object holds the bytes, part of the object's key: each record gets a fresh one, so the
    /// object of a swept record is never the object of a later record of the same hash. `None` for records older
    /// than upload ids, whose object is keyed by the hash alone.
    pub upload_id: Option<Uuid>,
}

/// What [`BlobCatalog::begin_upload`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadBegun {
    /// Recorded as pending with the given size and checksum (replacing an earlier pending record, whose upload id
    /// it keeps, so a device that asks twice uploads to one object).
    Pending { upload_id: Option<Uuid> },
    /// The stream already has this blob, confirmed; nothing changed.
    AlreadyConfirmed(BlobRecord),
}

/// A pending upload removed by [`BlobCatalog::sweep_pending`], whose object must now be deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweptUpload {
    pub stream: StreamId,
    pub hash: BlobHash,
    pub upload_id: Option<Uuid>,
}

/// Uploads in progress and confirmed blobs, per stream.
#[async_trait]
pub trait BlobCatalog: Send + Sync + 'static {
    /// Records an upload about to start, unless the blob is confirmed already. A new record gets a fresh upload id;
    /// a pending record of the same hash is replaced but keeps its upload id, and its sweep clock restarts.
    async fn begin_upload(
        &self,
        stream: StreamId,
        hash: BlobHash,
        size: u64,
        checksum: [u8; 32],
    ) -> Result<UploadBegun, StoreError>;

    /// The blob, pending or confirmed.
    async fn blob(&self, stream: StreamId, hash: BlobHash) -> Result<Option<BlobRecord>, StoreError>;

    /// Marks the blob confirmed if its record has this upload id, size and checksum (confirming twice is fine).
    /// False when there is no such record: never begun, swept (and perhaps begun again, under another upload id), or
    /// replaced by an upload of other bytes.
    async fn confirm(
        &self,
        stream: StreamId,
        hash: BlobHash,
        upload_id: Option<Uuid>,
        size: u64,
        checksum: [u8; 32],
    ) -> Result<bool, StoreError>;

    /// Removes the blob's record, pending or confirmed, and answers it, so the caller removes its object; `None`
    /// when the stream has no such blob. Its bytes stop counting as stored, and a later upload of the same hash gets a
    /// fresh upload id, and so a fresh object.
    async fn delete(&self, stream: StreamId, hash: BlobHash) -> Result<Option<BlobRecord>, StoreError>;

    /// Removes up to `limit` uploads begun before `before` and still unconfirmed, and returns them. Each is returned
    /// to one caller only, so several instances can sweep at once.
    async fn sweep_pending(&self, before: OffsetDateTime, limit: u32) -> Result<Vec<SweptUpload>, StoreError>;
}

impl std::fmt::Debug for dyn BlobCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn BlobCatalog")
    }
}
