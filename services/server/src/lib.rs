//! The SyncKit server: every service in one binary.
//!
//! With no configuration it runs all services in one process on the embedded default: SQLite in a data directory.
//! `SYNCKIT_DATABASE_URL=postgres://…` switches to Postgres, `SYNCKIT_S3_*` puts blobs in S3, and `--role` runs a
//! single service so each can be scaled on its own; services keep no state of their own, so any number of instances
//! can run side by side.
//!
//! # Layout
//! - [`settings`]: configuration from defaults, an optional TOML file, `SYNCKIT_*` variables and flags.
//! - [`engines`]: opens the storage engines the settings name.
//! - [`secrets`]: the signing secrets, from variables or files; kept in the database only on the embedded default.
//! - [`Server`]: composes the service routers for a role, with health checks, the OpenAPI document and limits.
//! - [`admin`]: operator commands (create, list and rotate the key of apps).
//! - [`gateway`]: which role serves each public path, and the gateway configuration made from it.
//! - [`telemetry`]: logs, and traces and metrics over OpenTelemetry.
//! - `health.rs`, `openapi.rs`: `/healthz` and `/readyz` (what each role needs, checked), `/api/openapi.json`.

pub mod admin;
pub mod engines;
pub mod gateway;
mod health;
mod openapi;
pub mod secrets;
pub mod settings;
pub mod telemetry;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use synckit_auth::{AuthSettings, AuthState};
use synckit_blob::BlobState;
use synckit_http::budget::{BodyLimits, Budgeted, DEFAULT_BODY_LIMIT, reserve_request};
use synckit_http::serve::{ServeOptions, serve};
use synckit_http::{Authenticator, MemoryBudget, Meter, TokenKeys, fallback};
use synckit_ingest::{AdmissionLimits, IngestState, PushAdmission};
use synckit_protocol::limits::{MAX_PUBLIC_BODY_BYTES, MAX_PUSH_BODY_BYTES, MAX_RECOVER_BODY_BYTES};
use synckit_protocol::paths;
use synckit_query::{Hub, QueryState};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::trace::TraceLayer;

pub use engines::Engines;
pub use openapi::openapi;
use secrets::Secret;
pub use settings::{Role, Settings};

/// A server ready to accept connections: its engines open, migrations applied, routes composed.
#[derive(Debug)]
pub struct Server {
    pub engines: Engines,
    router: Router,
    serve_options: ServeOptions,
    /// Tells long-lived responses (event streams) to end when shutdown begins, so connections can drain.
    shutting_down: watch::Sender<bool>,
    /// Counts what the sync services move; flushed once more after the last request.
    meter: Meter,
}

impl Server {
    /// Opens the engines the settings name and builds the routes of the settings' role.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        settings.validate()?;
        let engines = Engines::open(settings).await?;
        let (shutting_down, shutdown_rx) = watch::channel(false);
        let meter = Meter::new(engines.usage.clone());
        let mut stop = shutdown_rx.clone();
        tokio::spawn(meter.clone().flush_every(METER_FLUSH_INTERVAL, async move {
            let _ = stop.wait_for(|stopping| *stopping).await;
        }));
        let router = routes(settings, &engines, &meter, shutdown_rx).await?;
        let serve_options = ServeOptions {
            header_read_timeout: settings.serve.header_read_timeout,
            max_connections: settings.serve.max_connections,
            max_connection_age: settings.serve.max_connection_age,
            body_read_timeout: settings.serve.body_read_timeout,
            write_timeout: settings.serve.write_timeout,
            shutdown_grace: settings.serve.shutdown_grace,
        };
        Ok(Self { engines, router, serve_options, shutting_down, meter })
    }

    /// The composed routes, for serving or for driving in tests.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Serves on `listener` until `shutdown` completes, then drains in-flight requests.
    pub async fn run(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let shutting_down = self.shutting_down;
        let shutdown = async move {
            shutdown.await;
            let _ = shutting_down.send(true);
        };
        serve(listener, self.router, self.serve_options, shutdown).await;
        // What the drained requests moved.
        self.meter.flush().await;
    }
}

/// The body limits the services set on their routes, for requests that declare no length; axum's default elsewhere.
/// The embedded blob store's transfers stream to disk and are not budgeted by their size.
fn body_limits() -> BodyLimits {
    let public = MAX_PUBLIC_BODY_BYTES as u64;
    BodyLimits::new(DEFAULT_BODY_LIMIT)
        .route(paths::PUSH, MAX_PUSH_BODY_BYTES as u64)
        .route(paths::ACCOUNTS_REGISTER, public)
        .route(paths::ACCOUNTS_PRELOGIN, public)
        .route(paths::AUTH, public)
        .route(paths::ACCOUNTS_CONSOLE_AUTH, public)
        .route(paths::ACCOUNTS_RECOVERY, public)
        .route(paths::ACCOUNTS_RECOVER, MAX_RECOVER_BODY_BYTES as u64)
}

/// How often the transfer the services counted is added to the store.
const METER_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

async fn routes(
    settings: &Settings,
    engines: &Engines,
    meter: &Meter,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Router> {
    let token_keys = secrets::keys(Secret::Token, settings, &*engines.accounts).await?;
    let keys = Arc::new(TokenKeys::from_ring(&token_keys));
    let authenticator = Authenticator { keys: keys.clone(), accounts: engines.accounts.clone() };
    let role = settings.role;

    let mut api = Router::new();
    if role.runs(Role::Auth) {
        let prelogin = secrets::keys(Secret::Prelogin, settings, &*engines.accounts).await?;
        let auth_settings = AuthSettings {
            open_registration: settings.open_registration,
            prelogin_key: Arc::from(prelogin.current().secret()),
            sign_in: settings.sign_in,
        };
        api = api.merge(synckit_auth::router(AuthState::new(
            engines.accounts.clone(),
            engines.usage.clone(),
            keys.clone(),
            auth_settings,
        )));
    }
    if role.runs(Role::Ingest) {
        let limits = AdmissionLimits {
            max_queued_per_stream: settings.push.max_queued_per_stream,
            max_in_database: settings.push_max_in_database(),
        };
        api = api.merge(synckit_ingest::router(IngestState {
            changelog: engines.changelog.clone(),
            authenticator: authenticator.clone(),
            bus: engines.bus.clone(),
            admission: PushAdmission::new(limits),
            meter: meter.clone(),
        }));
    }
    if role.runs(Role::Query) {
        let hub = Hub::start(engines.bus.clone());
        telemetry::observe_event_streams(&hub);
        api = api.merge(synckit_query::router(QueryState {
            changelog: engines.changelog.clone(),
            authenticator: authenticator.clone(),
            hub,
            events: settings.events.clone(),
            shutdown: shutdown.clone(),
            meter: meter.clone(),
        }));
    }
    // Transfers to and from the embedded blob store take longer than API calls: they have their own deadline.
    let mut transfers = Router::new();
    if role.runs(Role::Blob) {
        let state = BlobState {
            catalog: engines.blobs.clone(),
            objects: engines.objects.clone(),
            authenticator: authenticator.clone(),
            settings: settings.blob,
            meter: meter.clone(),
        };
        synckit_blob::sweep::spawn_sweeper(
            state.catalog.clone(),
            state.objects.clone(),
            settings.blob.upload_ttl,
            settings.blob.sweep_interval,
            shutdown,
        );
        api = api.merge(synckit_blob::router(state));
        if let Some(routes) = engines.objects.routes(Arc::new(authenticator.clone())) {
            transfers = transfers.merge(routes);
        }
    }
    // The budget is outermost: a request waiting for room has not started its deadline.
    let budgeted = Budgeted {
        budget: MemoryBudget::new(settings.serve.memory_budget_bytes()),
        keys: keys.clone(),
        limits: body_limits(),
    };
    let api = api
        .layer(from_fn_with_state(settings.serve.request_timeout, synckit_http::timeout::request_timeout))
        .layer(from_fn_with_state(budgeted, reserve_request));

    let mut router = Router::new()
        .merge(api)
        .merge(transfers)
        .merge(health::router(health::Readiness {
            engines: engines.clone(),
            role,
            bus_name: if settings.nats_url.is_some() { "nats" } else { "bus" },
        }))
        .merge(openapi::router())
        .fallback(fallback::not_found)
        .method_not_allowed_fallback(fallback::method_not_allowed);
    if telemetry::exporting() {
        router = router.layer(from_fn(telemetry::record_request));
    }
    Ok(router
        .layer(TraceLayer::new_for_http().make_span_with(telemetry::RequestSpan).on_response(telemetry::RequestDone)))
}
