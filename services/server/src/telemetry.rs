//! Logs, traces and metrics.
//!
//! Logs are `tracing` events written to stderr, so that commands' stdout stays machine-readable: text for people or
//! JSON for log collectors (`SYNCKIT_LOG_FORMAT`), filtered by `RUST_LOG` (default `info`, and `warn` for the
//! OpenTelemetry SDK's own: a failing export, say).
//!
//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set, the process also exports traces and metrics over OTLP (docs/operations.md,
//! "Observability"): every request is a span, continuing the caller's W3C `traceparent`; database, NATS and S3 calls
//! are spans beneath it; and JSON log lines carry the trace and span ids of the span they were written in. Unset, no
//! OpenTelemetry layer or provider exists at all: the spans of those calls are `debug` spans the log filter leaves
//! disabled, and the meter is the no-op one.
//!
//! # Layout
//! - `otlp.rs`: the exporters and the providers, read from the `OTEL_*` variables; [`Telemetry`] flushes them on
//!   shutdown.
//! - `requests.rs`: a request's span and its metrics (count and duration by route and status).
//! - `gauges.rs`: the gauges read when metrics are collected: open event streams, database pool usage.
//! - `json.rs`: trace ids in JSON log lines.

mod gauges;
mod json;
mod otlp;
mod requests;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{Level, Metadata};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::settings::{LogFormat, Role};

pub use gauges::{observe_event_streams, observe_pools};
pub use otlp::Telemetry;
pub use requests::{RequestDone, RequestSpan, record_request};

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether this process exports traces and metrics.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Installs the global subscriber, and the OpenTelemetry providers when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Call it
/// before a tokio runtime exists: the exporters' HTTP client runs a runtime of its own. Fails on `OTEL_*` settings
/// this server cannot honour (a gRPC protocol, say).
pub fn init(format: LogFormat, role: Role) -> anyhow::Result<Telemetry> {
    let telemetry = Telemetry::from_env(role)?;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,refinery_core=warn,opentelemetry=warn"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal());
    let logs = match format {
        LogFormat::Text => logs.boxed(),
        LogFormat::Json if telemetry.is_exporting() => logs
            .json()
            .flatten_event(true)
            .event_format(json::WithTraceIds(tracing_subscriber::fmt::format().json().flatten_event(true)))
            .boxed(),
        LogFormat::Json => logs.json().flatten_event(true).boxed(),
    };
    // Spans go to the exporter whatever `RUST_LOG` says, the `debug` spans of database, NATS and S3 calls included;
    // events only from `info` up, where they become the span's events.
    let traces = telemetry
        .tracer()
        .map(|tracer| tracing_opentelemetry::layer().with_tracer(tracer).with_filter(filter_fn(exported)));
    EXPORTING.store(telemetry.is_exporting(), Ordering::Relaxed);
    let dispatch: tracing::Dispatch = tracing_subscriber::registry().with(logs.with_filter(filter)).with(traces).into();
    json::remember(&dispatch);
    dispatch.init();
    Ok(telemetry)
}

/// What the trace exporter receives: SyncKit's spans from `debug` up, its events from `info` up.
fn exported(meta: &Metadata<'_>) -> bool {
    let least = if meta.is_span() { Level::DEBUG } else { Level::INFO };
    meta.target().starts_with("synckit") && *meta.level() <= least
}
