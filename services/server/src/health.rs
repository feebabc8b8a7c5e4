//! `/healthz`: the process is up. `/readyz`: it can serve, i.e. its database answers.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};
use synckit_http::{ApiError, Json};

use crate::Engines;

pub(crate) fn router(engines: Engines) -> Router {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).with_state(engines)
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(engines): State<Engines>) -> Result<Json<Value>, ApiError> {
    engines.accounts.ping().await?;
    engines.changelog.ping().await?;
    Ok(Json(json!({"status": "ready"})))
}
