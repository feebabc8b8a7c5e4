//! The SyncKit ingest service: `POST /api/sync/push` appends a device's encrypted changes to its stream, and
//! `POST /api/sync/supersede` compacts it.
//!
//! The handler first takes a place in the stream's queue ([`admission`]: pushes to one stream take turns in the
//! process, a bounded number of them, so that they never hold database connections while they wait for each other).
//! It then checks the request against the protocol's limits and that it names the token's own device, and when its
//! turn comes hands the batch to the [`ChangelogStore`], which assigns sequence numbers and drops retried change ids.
//! Once the append has committed it publishes a commit notice on the [`CommitBus`], waiting a bounded time at most.
//!
//! # Layout
//! - [`router`] and [`IngestState`]: the service, composed by `synckit-server`.
//! - [`admission`]: the per-stream queues and the bound on pushes using the database at once.
//! - `push.rs`: the push handler.
//! - `supersede.rs`: compaction: entries a device marks superseded lose their payloads.
//! - [`ApiDoc`]: this service's part of the OpenAPI document.

pub mod admission;
mod push;
mod supersede;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::post;
use synckit_bus::CommitBus;
use synckit_http::{Authenticator, Meter};
use synckit_protocol::limits::MAX_PUSH_BODY_BYTES;
use synckit_protocol::paths;
use synckit_store::ChangelogStore;

pub use admission::{AdmissionLimits, PushAdmission};

/// What the ingest handlers share.
#[derive(Clone, Debug, FromRef)]
pub struct IngestState {
    pub changelog: Arc<dyn ChangelogStore>,
    /// Checks each push's token, device included: the device check needs no store of its own here.
    pub authenticator: Authenticator,
    /// Where commit notices go after a push commits.
    pub bus: Arc<dyn CommitBus>,
    /// Which pushes wait, and which may use the database.
    pub admission: PushAdmission,
    /// Holds apps to their plans.
    pub meter: Meter,
}

/// The ingest service's routes.
pub fn router(state: IngestState) -> Router {
    Router::new()
        .route(paths::PUSH, post(push::push).layer(DefaultBodyLimit::max(MAX_PUSH_BODY_BYTES)))
        .route(paths::SUPERSEDE, post(supersede::supersede))
        .with_state(state)
}

/// The ingest service's endpoints in the OpenAPI document.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(paths(push::push, supersede::supersede))]
pub struct ApiDoc;
