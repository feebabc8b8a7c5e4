//! OTLP exporters over HTTP, configured by the standard `OTEL_*` variables.
//!
//! The span processor and the metric reader run on threads of their own and export with a blocking HTTP client, so
//! a slow or absent collector never holds up the runtime's threads: spans queue (and, past the queue's bound, are
//! dropped) while an export waits.

use std::time::Duration;

use anyhow::{Context, bail};
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{MetricExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use crate::settings::Role;

/// The longest shutdown waits for each provider's last export.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The process's OpenTelemetry providers, when it exports; flushed and shut down when this is dropped (or by
/// [`Telemetry::shutdown`]), on a thread of its own so that the blocking exports never run on a runtime thread.
#[derive(Debug)]
pub struct Telemetry {
    providers: Option<(SdkTracerProvider, SdkMeterProvider)>,
}

impl Telemetry {
    /// Builds the exporters the `OTEL_*` variables ask for: none unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and
    /// `OTEL_SDK_DISABLED` is not `true`).
    pub(super) fn from_env(role: Role) -> anyhow::Result<Self> {
        let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_default();
        let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
        if endpoint.trim().is_empty() || disabled {
            return Ok(Self { providers: None });
        }
        let traces_protocol = protocol("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")?;
        let metrics_protocol = protocol("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")?;
        let service = std::env::var("OTEL_SERVICE_NAME")
            .ok()
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| format!("synckit-{}", role.name()));
        let resource = Resource::builder()
            .with_service_name(service)
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();

        let spans = SpanExporter::builder()
            .with_http()
            .with_protocol(traces_protocol)
            .build()
            .context("the OTLP trace exporter (OTEL_EXPORTER_OTLP_*)")?;
        let metrics = MetricExporter::builder()
            .with_http()
            .with_protocol(metrics_protocol)
            .build()
            .context("the OTLP metric exporter (OTEL_EXPORTER_OTLP_*)")?;
        let tracer_provider =
            SdkTracerProvider::builder().with_resource(resource.clone()).with_batch_exporter(spans).build();
        let meter_provider =
            SdkMeterProvider::builder().with_resource(resource).with_periodic_exporter(metrics).build();

        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        opentelemetry::global::set_tracer_provider(tracer_provider.clone());
        opentelemetry::global::set_meter_provider(meter_provider.clone());
        Ok(Self { providers: Some((tracer_provider, meter_provider)) })
    }

    /// Whether traces and metrics are exported.
    pub fn is_exporting(&self) -> bool {
        self.providers.is_some()
    }

    pub(super) fn tracer(&self) -> Option<SdkTracer> {
        self.providers.as_ref().map(|(traces, _)| traces.tracer("synckit"))
    }

    /// Exports what is still queued and stops the exporters' threads.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some((traces, metrics)) = self.providers.take() else { return };
        let flushed = std::thread::spawn(move || {
            if let Err(e) = traces.shutdown_with_timeout(FLUSH_TIMEOUT) {
                eprintln!("synckit-server: exporting the last spans failed: {e}");
            }
            if let Err(e) = metrics.shutdown_with_timeout(FLUSH_TIMEOUT) {
                eprintln!("synckit-server: exporting the last metrics failed: {e}");
            }
        })
        .join();
        if flushed.is_err() {
            eprintln!("synckit-server: shutting the OpenTelemetry exporters down panicked");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `OTEL_EXPORTER_OTLP_PROTOCOL`, or the signal's own `signal_var`: `http/protobuf` (the default) or `http/json`.
fn protocol(signal_var: &str) -> anyhow::Result<Protocol> {
    for var in [signal_var, "OTEL_EXPORTER_OTLP_PROTOCOL"] {
        let Ok(value) = std::env::var(var) else { continue };
        return match value.trim() {
            "" => continue,
            "http/protobuf" => Ok(Protocol::HttpBinary),
            "http/json" => Ok(Protocol::HttpJson),
            other => bail!(
                "{var}={other} is not supported: synckit-server exports OTLP over HTTP, `http/protobuf` (the default) \
                 or `http/json`"
            ),
        };
    }
    Ok(Protocol::HttpBinary)
}
