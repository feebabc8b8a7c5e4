//! The object store port: where blob bytes live. The server never moves those bytes itself (except for the
//! embedded store, which serves its own signed URLs); it signs URLs for devices and checks what arrived.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use synckit_http::{ApiError, Authenticator};
use synckit_store::{BlobHash, StreamId};
use uuid::Uuid;

/// Where one upload of one blob of one stream lives: `<app>/<user>/<hash>.<upload id>`, or `<app>/<user>/<hash>`
/// for blobs recorded before upload ids. Built from parsed ids only, so a key can never leave its stream's prefix.
///
/// The upload id is why a sweep is safe without locks: the sweeper deletes the object of the record it removed, and
/// no later record of the same hash can name that object, since each record gets a fresh id. Holding the record
/// while the object is deleted would do too, but would keep a row locked across a call to the object store, and
/// need a lease for a sweeper that dies in between and a retryable refusal the SDK must learn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    pub stream: StreamId,
    pub hash: BlobHash,
    pub upload_id: Option<Uuid>,
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.stream.app_id, self.stream.user_id, hex::encode(self.hash))?;
        match self.upload_id {
            Some(upload_id) => write!(f, ".{upload_id}"),
            None => Ok(()),
        }
    }
}

/// Whom a signed URL is for: the device whose token asked for it, at the token's version. A store that serves its
/// own URLs checks, each time one is used, that this still stands ([`HolderCheck`]), so removing the device or
/// changing the password stops its URLs too; S3 cannot, and its URLs are bounded by their expiry alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlHolder {
    pub device_id: Uuid,
    pub token_version: u64,
}

/// Whether a URL's holder still stands: the device is registered and its user's token version unchanged.
#[async_trait]
pub trait HolderCheck: Send + Sync + 'static {
    /// `Ok` when `holder` may still use URLs of `stream`; the error to answer otherwise.
    async fn check(&self, stream: StreamId, holder: UrlHolder) -> Result<(), ApiError>;
}

#[async_trait]
impl HolderCheck for Authenticator {
    async fn check(&self, stream: StreamId, holder: UrlHolder) -> Result<(), ApiError> {
        self.check_standing(stream, Some(holder.device_id), holder.token_version).await
    }
}

/// A signed request a device makes straight to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    /// Absolute for a remote store, or a path on this server for the embedded one.
    pub url: String,
    /// Headers the request must carry, as signed.
    pub headers: BTreeMap<String, String>,
}

/// What the store holds under a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    /// The SHA-256 the store verified the bytes against on upload, when it reports one.
    pub checksum: Option<[u8; 32]>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An object store failure.
#[derive(Debug, thiserror::Error)]
pub enum ObjectStoreError {
    /// The store did not answer, or answered that it is overloaded: retrying later may work.
    #[error("the object store is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else: a misconfiguration or a bug.
    #[error("object store failure")]
    Other(#[source] BoxError),
}

impl ObjectStoreError {
    pub fn unavailable(err: impl Into<BoxError>) -> Self {
        Self::Unavailable(err.into())
    }

    pub fn other(err: impl Into<BoxError>) -> Self {
        Self::Other(err.into())
    }
}

/// An object store: S3 (or anything speaking it), or a local directory.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// A URL for `holder` to `PUT` exactly `size` bytes whose SHA-256 is `checksum` under `key`, valid for
    /// `expires_in`. The store itself refuses any other length or bytes, and an expired URL.
    async fn presign_put(
        &self,
        key: &ObjectKey,
        size: u64,
        checksum: &[u8; 32],
        expires_in: Duration,
        holder: UrlHolder,
    ) -> Result<Presigned, ObjectStoreError>;

    /// A URL for `holder` to `GET` the object under `key` (single byte ranges allowed), valid for `expires_in`.
    async fn presign_get(
        &self,
        key: &ObjectKey,
        expires_in: Duration,
        holder: UrlHolder,
    ) -> Result<Presigned, ObjectStoreError>;

    /// What is stored under `key`, if anything.
    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectMeta>, ObjectStoreError>;

    /// Removes the object under `key`; removing nothing is not an error.
    async fn delete(&self, key: &ObjectKey) -> Result<(), ObjectStoreError>;

    /// Whether the store can be used now: one cheap request (S3: is the bucket there, and may we use it), for
    /// `/readyz`. Callers bound the time they wait for it.
    async fn ready(&self) -> Result<(), ObjectStoreError>;

    /// Routes the store serves from this server itself (the embedded store's signed URLs), which ask `holders`
    /// whether a URL's holder still stands each time one is used; none for S3.
    fn routes(&self, holders: std::sync::Arc<dyn HolderCheck>) -> Option<Router> {
        let _ = holders;
        None
    }
}

impl fmt::Debug for dyn ObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dyn ObjectStore")
    }
}
