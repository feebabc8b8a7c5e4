//! The SyncKit blob service: encrypted files of up to 500 MB, uploaded and downloaded by devices straight to and
//! from an object store through signed URLs. The server never sees a file's plaintext, nor its plain hash: a blob's
//! name is a keyed hash the device computes, and its bytes are ciphertext.
//!
//! The flow: `upload` records the declared size and SHA-256 and signs a `PUT` for exactly those bytes (the store
//! refuses anything else); the device uploads; `confirm` checks what the store holds against the declaration and
//! only then records the blob; `download` signs a `GET` for a confirmed blob of the caller's own. Uploads never
//! confirmed are swept after a while.
//!
//! # Layout
//! - [`router`] and [`BlobState`]: the service, composed by `synckit-server`; `handlers.rs` holds the handlers.
//! - [`objects`]: the [`ObjectStore`] port, with two adapters: [`s3::S3Store`] for production and
//!   [`local::LocalStore`], the embedded default, which serves its own signed URLs.
//! - [`sweep`]: removal of unconfirmed uploads.
//! - [`ApiDoc`]: this service's part of the OpenAPI document.

mod handlers;
pub mod local;
pub mod objects;
#[cfg(feature = "s3")]
pub mod s3;
pub mod sweep;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{delete, post};
use synckit_http::{Authenticator, Meter};
use synckit_protocol::paths;
use synckit_store::BlobCatalog;

pub use local::LocalStore;
pub use objects::{HolderCheck, ObjectKey, ObjectMeta, ObjectStore, ObjectStoreError, Presigned, UrlHolder};
#[cfg(feature = "s3")]
pub use s3::{S3Config, S3Store};

/// Tunables of the blob service: the server's `blob` settings (`SYNCKIT_BLOB_*`).
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlobSettings {
    /// How long signed URLs stay valid. Short, because an S3 URL outlives its device's removal until it expires
    /// (the embedded store's URLs also check their holder at each use).
    #[serde(with = "synckit_http::secs", rename = "url_expiry_secs")]
    pub url_expiry: Duration,
    /// How long an upload may stay unconfirmed before it is swept from the store. At least `url_expiry`, or an
    /// upload could be swept while its URL still works.
    #[serde(with = "synckit_http::secs", rename = "upload_ttl_secs")]
    pub upload_ttl: Duration,
    /// How often unconfirmed uploads are swept.
    #[serde(with = "synckit_http::secs", rename = "sweep_interval_secs")]
    pub sweep_interval: Duration,
}

impl BlobSettings {
    /// The longest a signed URL may live: S3 refuses longer presignatures.
    pub const MAX_URL_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);
}

impl Default for BlobSettings {
    fn default() -> Self {
        Self {
            url_expiry: Duration::from_secs(300),
            upload_ttl: Duration::from_secs(24 * 3600),
            sweep_interval: Duration::from_secs(600),
        }
    }
}

/// What the blob handlers share.
#[derive(Clone, Debug, FromRef)]
pub struct BlobState {
    pub catalog: Arc<dyn BlobCatalog>,
    pub objects: Arc<dyn ObjectStore>,
    pub authenticator: Authenticator,
    pub settings: BlobSettings,
    /// Holds apps to their plans, and counts downloads.
    pub meter: Meter,
}

/// The blob service's API routes. The embedded store's own transfer routes come from [`ObjectStore::routes`].
pub fn router(state: BlobState) -> Router {
    Router::new()
        .route(paths::BLOBS_UPLOAD, post(handlers::upload))
        .route(paths::BLOBS_CONFIRM, post(handlers::confirm))
        .route(paths::BLOBS_DOWNLOAD, post(handlers::download))
        .route(paths::BLOB, delete(handlers::delete))
        .with_state(state)
}

/// The blob service's endpoints in the OpenAPI document.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(paths(handlers::upload, handlers::confirm, handlers::download, handlers::delete))]
pub struct ApiDoc;
