//! The SyncKit query service: cursor-paged pulls and stream status.
//!
//! # Layout
//! - [`router`] and [`QueryState`]: the service, composed by `synckit-server`.
//! - `pull.rs`: `POST /api/sync/pull` and `GET /api/sync/status`; `page_json.rs` writes a pulled page's JSON.
//! - [`events`]: `GET /api/sync/events`, the server-sent events that tell devices to pull, and the [`Hub`] that
//!   fans commit notices out to this instance's connections.
//! - [`ApiDoc`]: this service's part of the OpenAPI document.

pub mod events;
mod page_json;
mod pull;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use synckit_http::{Authenticator, Meter};
use synckit_protocol::paths;
use synckit_store::ChangelogStore;
use tokio::sync::watch;

pub use events::{EventSettings, Hub};
pub use pull::page_reservation;

/// What the query handlers share.
#[derive(Clone, Debug, FromRef)]
pub struct QueryState {
    pub changelog: Arc<dyn ChangelogStore>,
    pub authenticator: Authenticator,
    pub hub: Arc<Hub>,
    pub events: EventSettings,
    /// Becomes true when the server shuts down: event streams end so connections can drain.
    pub shutdown: watch::Receiver<bool>,
    /// Counts what pulls return, and paces apps over their transfer budget.
    pub meter: Meter,
}

/// The query service's routes.
pub fn router(state: QueryState) -> Router {
    Router::new()
        .route(paths::PULL, post(pull::pull))
        .route(paths::STATUS, get(pull::status))
        .route(paths::EVENTS, get(events::events))
        .with_state(state)
}

/// The query service's endpoints in the OpenAPI document.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(paths(pull::pull, pull::status, events::events))]
pub struct ApiDoc;
