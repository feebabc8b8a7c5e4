//! The SyncKit query service: cursor-paged pulls and stream status.
//!
//! # Layout
//! - [`router`] and [`QueryState`]: the service, composed by `synckit-server`.
//! - `pull.rs`: `POST /api/sync/pull` and `GET /api/sync/status`.
//! - [`ApiDoc`]: this service's part of the OpenAPI document.

mod pull;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use synckit_http::Authenticator;
use synckit_store::ChangelogStore;

/// What the query handlers share.
#[derive(Clone, Debug, FromRef)]
pub struct QueryState {
    pub changelog: Arc<dyn ChangelogStore>,
    pub authenticator: Authenticator,
}

/// The query service's routes.
pub fn router(state: QueryState) -> Router {
    Router::new()
        .route("/api/sync/pull", post(pull::pull))
        .route("/api/sync/status", get(pull::status))
        .with_state(state)
}

/// The query service's endpoints in the OpenAPI document.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(paths(pull::pull, pull::status))]
pub struct ApiDoc;
