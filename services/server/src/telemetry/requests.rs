//! A request's span and its metrics.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{self, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::KeyValue;
use opentelemetry::metrics::Histogram;
use opentelemetry::propagation::Extractor;
use tower_http::trace::{DefaultOnResponse, MakeSpan, OnResponse};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Makes each request's span: `debug`, so that it costs nothing unless traces are exported, named by its method and
/// route (`POST /api/sync/push`), and the child of the caller's span when the request carries a W3C `traceparent`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &http::Request<B>) -> Span {
        let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
        if route.is_some_and(is_probe) {
            return Span::none();
        }
        // A standard method or `_OTHER`: a client cannot make new span names.
        let method = known_method(request.method());
        let span = tracing::debug_span!(
            "request",
            otel.name = %format_args!("{method} {}", route.unwrap_or("unmatched")),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.request.method = method,
            http.route = route,
            http.response.status_code = tracing::field::Empty,
        );
        if !span.is_disabled() {
            let parent =
                opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(request.headers())));
            let _ = span.set_parent(parent);
        }
        span
    }
}

/// Records the status on the request's span (a 5xx marks it failed), then logs as tower-http does by default.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestDone;

impl<B> OnResponse<B> for RequestDone {
    fn on_response(self, response: &http::Response<B>, latency: Duration, span: &Span) {
        let status = response.status();
        span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
        DefaultOnResponse::default().on_response(response, latency, span);
    }
}

/// Reads a trace context from a request's headers.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Seconds, from a millisecond to half a minute (the default request deadline).
const DURATION_BUCKETS: [f64; 15] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 30.0];

static DURATION: LazyLock<Histogram<f64>> = LazyLock::new(|| {
    opentelemetry::global::meter(synckit_http::metrics::METER)
        .f64_histogram("http.server.request.duration")
        .with_unit("s")
        .with_description("Time from a request's arrival to its response's head, by route and status")
        .with_boundaries(DURATION_BUCKETS.to_vec())
        .build()
});

/// Middleware: records each request's duration (and so the count of requests) by method, route and status. The
/// route is the matched pattern (`/api/sync/push`), never the path, so that the series stay few; a request no route
/// matched has none.
pub async fn record_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = known_method(request.method());
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    if route.as_deref().is_some_and(is_probe) {
        return next.run(request).await;
    }
    let response = next.run(request).await;
    let mut attributes = vec![
        KeyValue::new("http.request.method", method),
        KeyValue::new("http.response.status_code", i64::from(response.status().as_u16())),
    ];
    if let Some(route) = route {
        attributes.push(KeyValue::new("http.route", route));
    }
    DURATION.record(started.elapsed().as_secs_f64(), &attributes);
    response
}

/// `/healthz` and `/readyz`: asked every second by gateways and orchestrators, neither traced nor measured, so that
/// they drown neither real traces nor the request metrics.
fn is_probe(route: &str) -> bool {
    route == "/healthz" || route == "/readyz"
}

/// The method as an attribute: one of the standard ones, or `_OTHER`, so that a client cannot make new series.
fn known_method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}
