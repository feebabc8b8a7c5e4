//! An OTLP/HTTP receiver of the test's own: it accepts `POST /v1/traces` and `/v1/metrics` in protobuf, decodes them
//! with the protocol's own message types, and keeps what it got.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

/// One span as exported, with the service that exported it.
#[derive(Debug, Clone)]
pub struct GotSpan {
    pub service: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub kind: i32,
    pub attributes: Vec<(String, String)>,
}

impl GotSpan {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// One data point of a metric as exported: its attributes and its value (a sum's or gauge's value, a histogram's
/// count).
#[derive(Debug, Clone)]
pub struct GotPoint {
    pub service: String,
    pub metric: String,
    pub unit: String,
    pub attributes: Vec<(String, String)>,
    pub value: f64,
}

impl GotPoint {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Got {
    spans: Vec<GotSpan>,
    points: Vec<GotPoint>,
    exports: usize,
    undecodable: usize,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Got>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Got::default()));
        let app =
            Router::new().route("/v1/traces", post(traces)).route("/v1/metrics", post(metrics)).with_state(got.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, got }
    }

    pub fn spans(&self) -> Vec<GotSpan> {
        self.got.lock().unwrap().spans.clone()
    }

    pub fn points(&self) -> Vec<GotPoint> {
        self.got.lock().unwrap().points.clone()
    }

    /// Export requests received, of either signal, decodable or not.
    pub fn exports(&self) -> usize {
        self.got.lock().unwrap().exports
    }

    pub fn undecodable(&self) -> usize {
        self.got.lock().unwrap().undecodable
    }

    /// Waits up to `within` for `done` to hold of what was received; false if it never did.
    pub async fn until(&self, within: Duration, done: impl Fn(&[GotSpan], &[GotPoint]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            {
                let got = self.got.lock().unwrap();
                if done(&got.spans, &got.points) {
                    return true;
                }
            }
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn traces(State(got): State<Arc<Mutex<Got>>>, body: Bytes) -> StatusCode {
    let mut got = got.lock().unwrap();
    got.exports += 1;
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        got.undecodable += 1;
        return StatusCode::BAD_REQUEST;
    };
    for resource in request.resource_spans {
        let service = service(resource.resource.as_ref());
        for scope in resource.scope_spans {
            for span in scope.spans {
                got.spans.push(GotSpan {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex::encode(span.trace_id),
                    span_id: hex::encode(span.span_id),
                    parent_span_id: hex::encode(span.parent_span_id),
                    kind: span.kind,
                    attributes: attributes(&span.attributes),
                });
            }
        }
    }
    StatusCode::OK
}

async fn metrics(State(got): State<Arc<Mutex<Got>>>, body: Bytes) -> StatusCode {
    let mut got = got.lock().unwrap();
    got.exports += 1;
    let Ok(request) = ExportMetricsServiceRequest::decode(body) else {
        got.undecodable += 1;
        return StatusCode::BAD_REQUEST;
    };
    for resource in request.resource_metrics {
        let service = service(resource.resource.as_ref());
        for scope in resource.scope_metrics {
            for metric in scope.metrics {
                let mut point = |attrs: &[KeyValue], value: f64| {
                    got.points.push(GotPoint {
                        service: service.clone(),
                        metric: metric.name.clone(),
                        unit: metric.unit.clone(),
                        attributes: attributes(attrs),
                        value,
                    })
                };
                let number = |v: Option<number_data_point::Value>| match v {
                    Some(number_data_point::Value::AsInt(n)) => n as f64,
                    Some(number_data_point::Value::AsDouble(x)) => x,
                    None => f64::NAN,
                };
                match &metric.data {
                    Some(metric::Data::Sum(sum)) => {
                        sum.data_points.iter().for_each(|p| point(&p.attributes, number(p.value)));
                    }
                    Some(metric::Data::Gauge(gauge)) => {
                        gauge.data_points.iter().for_each(|p| point(&p.attributes, number(p.value)));
                    }
                    Some(metric::Data::Histogram(h)) => {
                        h.data_points.iter().for_each(|p| point(&p.attributes, p.count as f64));
                    }
                    _ => {}
                }
            }
        }
    }
    StatusCode::OK
}

fn service(resource: Option<&Resource>) -> String {
    resource
        .and_then(|r| attributes(&r.attributes).into_iter().find(|(k, _)| k == "service.name"))
        .map(|(_, v)| v)
        .unwrap_or_default()
}

fn attributes(kvs: &[KeyValue]) -> Vec<(String, String)> {
    kvs.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                Some(any_value::Value::IntValue(n)) => n.to_string(),
                Some(any_value::Value::BoolValue(b)) => b.to_string(),
                Some(any_value::Value::DoubleValue(x)) => x.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}
