//! Encrypted blobs: `POST /api/sync/blobs/upload`, `/confirm`, `/download`.
//!
//! The device encrypts a file, asks for an upload URL, sends the ciphertext straight to the object store, then
//! confirms; only confirmed blobs can be downloaded. The store itself refuses an upload whose length or SHA-256
//! is not the one declared here, because both are signed into the URL.
//!
//! - `hash` is the blob's content id: 64 lowercase hex characters, a keyed hash of the plaintext chosen by the
//!   device. The server treats it as an opaque name, unique per (app, user).
//! - `size` is the length of the ciphertext, at most [`crate::limits::MAX_BLOB_BYTES`].
//! - `checksum_sha256` is the standard base64 SHA-256 of the ciphertext (44 characters).
//!
//! A URL may be a path (`/api/sync/blobs/local/…`: the embedded store serves its objects from the server itself):
//! it goes after the server's base URL exactly as the API's own paths do.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /api/sync/blobs/upload`: where to upload a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BlobUploadRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::blob_hash))]
    pub hash: String,
    #[cfg_attr(feature = "openapi", schema(maximum = 524416000))]
    #[serde(deserialize_with = "crate::integer::deserialize")]
    pub size: u64,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::sha256))]
    pub checksum_sha256: String,
}

/// Answer to [`BlobUploadRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlobUploadResponse {
    /// `PUT` the ciphertext here, with exactly [`headers`](Self::headers), before the URL expires. `null` when
    /// the blob already exists.
    pub upload_url: Option<String>,
    /// Headers the `PUT` must carry (they are signed into the URL).
    pub headers: BTreeMap<String, String>,
    /// This user already has a confirmed blob with this hash: nothing to upload or confirm.
    pub already_exists: bool,
    /// Seconds the URL stays valid.
    pub expires_in: u64,
}

/// `POST /api/sync/blobs/confirm`: the upload is finished. Idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BlobConfirmRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::blob_hash))]
    pub hash: String,
    #[cfg_attr(feature = "openapi", schema(maximum = 524416000))]
    #[serde(deserialize_with = "crate::integer::deserialize")]
    pub size: u64,
}

/// Answer to [`BlobConfirmRequest`]: the blob as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlobConfirmResponse {
    pub hash: String,
    pub size: u64,
}

/// `POST /api/sync/blobs/download`: where to download a confirmed blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BlobDownloadRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::blob_hash))]
    pub hash: String,
}

/// Answer to [`BlobDownloadRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlobDownloadResponse {
    /// `GET` the ciphertext here before the URL expires. A `Range: bytes=N-` header resumes a cut download.
    pub download_url: String,
    /// The ciphertext's length.
    pub size: u64,
    /// Seconds the URL stays valid.
    pub expires_in: u64,
}

/// Whether `hash` is a well-formed blob id: 64 lowercase hex characters.
///
/// ```
/// use synckit_protocol::blobs::is_blob_hash;
/// assert!(is_blob_hash(&"0a".repeat(32)));
/// assert!(!is_blob_hash(&"0A".repeat(32)));
/// assert!(!is_blob_hash("../../etc/passwd"));
/// ```
pub fn is_blob_hash(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
