//! `/healthz`: the process is up. `/readyz`: it can serve its role, i.e. every engine that role uses answers.
//!
//! Each role checks what its requests need: every role the database (tokens are checked there); ingest and query
//! the commit bus too (ingest publishes a notice after each push, query's event streams wait on them); blob the
//! object store; `all` everything. A gateway's active health checks ask `/readyz` every second or so, so the checks
//! are cheap (a ping, a connection's state, one `HeadBucket`), run side by side, and each gives up after
//! [`CHECK_TIMEOUT`]: an answer never takes much longer than that.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::{Engines, Role};

/// The longest one readiness check may take; past it the engine counts as down.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What `/readyz` checks: the engines of this process and the role that uses them.
#[derive(Clone, Debug)]
pub(crate) struct Readiness {
    pub engines: Engines,
    pub role: Role,
    /// The bus check's name: `nats`, or `bus` for the in-process bus (which is always ready).
    pub bus_name: &'static str,
}

type Check = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

impl Readiness {
    /// The checks of this role, by name.
    fn checks(&self) -> Vec<(&'static str, Check)> {
        let mut checks: Vec<(&'static str, Check)> = Vec::new();
        let engines = self.engines.clone();
        checks.push((
            "database",
            Box::pin(async move {
                engines.accounts.ping().await.map_err(|e| e.to_string())?;
                engines.changelog.ping().await.map_err(|e| e.to_string())
            }),
        ));
        if self.role.runs(Role::Ingest) || self.role.runs(Role::Query) {
            let bus = self.engines.bus.clone();
            checks.push((self.bus_name, Box::pin(async move { bus.ready().await.map_err(|e| e.to_string()) })));
        }
        if self.role.runs(Role::Blob) {
            let objects = self.engines.objects.clone();
            checks.push(("object_store", Box::pin(async move { objects.ready().await.map_err(|e| describe(&e)) })));
        }
        checks
    }
}

/// An error and its innermost cause, which says more than the outer message of an object store failure.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(source) = inner.source() {
        inner = source;
    }
    match inner.to_string() {
        cause if std::ptr::addr_eq(inner, e) => cause,
        cause => format!("{e}: {cause}"),
    }
}

pub(crate) fn router(readiness: Readiness) -> Router {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).with_state(readiness)
}

async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// `200 {"status": "ready"}`, or `503` with `Retry-After` and the names of the engines that are down:
/// `{"status": "unavailable", "down": ["nats"], "reasons": {"nats": "…"}, "error": {"code": "unavailable", …}}`
/// (the `error` member is the protocol's error body, so clients that read errors read this one too).
async fn readyz(State(readiness): State<Readiness>) -> Response {
    let checks = readiness.checks();
    let names: Vec<&'static str> = checks.iter().map(|(name, _)| *name).collect();
    // Side by side, so the slowest check bounds the answer rather than their sum.
    let outcomes = futures::future::join_all(checks.into_iter().map(|(_, check)| async move {
        match tokio::time::timeout(CHECK_TIMEOUT, check).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
        }
    }))
    .await;
    let mut down = Vec::new();
    let mut reasons = serde_json::Map::new();
    for (name, outcome) in names.into_iter().zip(outcomes) {
        if let Err(reason) = outcome {
            down.push(name);
            reasons.insert(name.to_owned(), reason.into());
        }
    }
    if down.is_empty() {
        return axum::Json(json!({"status": "ready"})).into_response();
    }
    tracing::debug!(?down, "not ready");
    let message = format!("not ready: {} unavailable", down.join(", "));
    let body = json!({
        "status": "unavailable",
        "down": down,
        "reasons": reasons,
        "error": {"code": "unavailable", "message": message},
    });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
