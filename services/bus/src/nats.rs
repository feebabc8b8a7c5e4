use async_nats::HeaderMap;
use async_trait::async_trait;
use futures::StreamExt;
use opentelemetry::propagation::{Extractor, Injector};
use serde::{Deserialize, Serialize};
use synckit_store::StreamId;
use tracing::instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use uuid::Uuid;

use crate::{BusError, CommitBus, CommitNotice, NoticeStream};

const PREFIX: &str = "synckit.commits";

#[derive(Serialize, Deserialize)]
struct Payload {
    cursor: u64,
    device_id: Uuid,
}

/// Core NATS pub/sub: one subject per stream, `synckit.commits.<app>.<user>`; subscribers take them all with a
/// wildcard. The client reconnects by itself and restores subscriptions, so a NATS restart needs nothing from us.
#[derive(Debug, Clone)]
pub struct NatsBus {
    client: async_nats::Client,
}

impl NatsBus {
    /// Connects to `url`. A server that does not answer yet is retried in the background, so the caller starts
    /// either way; notices flow once it answers.
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        let client = async_nats::ConnectOptions::new()
            .name("synckit")
            .retry_on_initial_connect()
            .connection_timeout(std::time::Duration::from_secs(2))
            .event_callback(|event| async move { tracing::info!(%event, "nats") })
            .connect(url)
            .await
            .map_err(|e| BusError::new(format!("cannot use NATS at {}", without_credentials(url)), e))?;
        Ok(Self { client })
    }

    /// Whether the connection to NATS is up right now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}

/// A NATS URL (or a comma-separated list of them) fit for a log line: the user and password or token it may carry
/// are replaced with `***` (`nats://synckit:secret@nats:4222` is `nats://***@nats:4222`).
pub fn without_credentials(url: &str) -> String {
    let one = |url: &str| {
        let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
        let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
        match authority.rfind('@') {
            Some(at) if scheme.is_empty() => format!("***{}", &rest[at..]),
            Some(at) => format!("{scheme}://***{}", &rest[at..]),
            None => url.to_owned(),
        }
    };
    url.split(',').map(one).collect::<Vec<_>>().join(",")
}

fn subject(stream: &StreamId) -> String {
    format!("{PREFIX}.{}.{}", stream.app_id.simple(), stream.user_id.simple())
}

fn parse(subject: &str, payload: &[u8]) -> Option<CommitNotice> {
    let mut parts = subject.strip_prefix(PREFIX)?.strip_prefix('.')?.split('.');
    let app_id = Uuid::parse_str(parts.next()?).ok()?;
    let user_id = Uuid::parse_str(parts.next()?).ok()?;
    let Payload { cursor, device_id } = serde_json::from_slice(payload).ok()?;
    Some(CommitNotice { stream: StreamId { app_id, user_id }, cursor, device_id })
}

/// Writes a trace context into a message's headers.
struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value);
    }
}

/// Reads a trace context from a message's headers.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

/// The trace of the push that published a notice, carried in the message's headers (W3C `traceparent`), so that the
/// push's trace shows the notice reaching each query instance. Without a trace being exported, the process's
/// propagator is the no-op one and the headers stay empty.
fn trace_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut HeaderInjector(&mut headers)));
    headers
}

/// A short span, child of the publishing push's, that marks a notice's arrival at this instance: the notice is handed
/// to the instance's event streams right after.
fn received(headers: &HeaderMap, notice: &CommitNotice) {
    let span = tracing::debug_span!(
        "commit notice received",
        otel.kind = "consumer",
        messaging.system = "nats",
        messaging.operation.type = "receive",
        cursor = notice.cursor,
    );
    if span.is_disabled() {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    let _ = span.set_parent(parent);
}

#[async_trait]
impl CommitBus for NatsBus {
    #[instrument(level = "debug", name = "commit notice publish", skip_all,
        fields(otel.kind = "producer", messaging.system = "nats", messaging.operation.type = "send"))]
    async fn publish(&self, notice: &CommitNotice) -> Result<(), BusError> {
        let payload = serde_json::to_vec(&Payload { cursor: notice.cursor, device_id: notice.device_id })
            .expect("a notice serialises");
        let headers = trace_headers();
        let sent = if headers.is_empty() {
            self.client.publish(subject(&notice.stream), payload.into()).await
        } else {
            self.client.publish_with_headers(subject(&notice.stream), headers, payload.into()).await
        };
        sent.map_err(|e| BusError::new("publishing a commit notice failed", e))
    }

    async fn subscribe(&self) -> Result<NoticeStream, BusError> {
        let sub = self
            .client
            .subscribe(format!("{PREFIX}.>"))
            .await
            .map_err(|e| BusError::new("subscribing to commit notices failed", e))?;
        Ok(Box::pin(sub.filter_map(|msg| async move {
            let notice = parse(&msg.subject, &msg.payload);
            match (&notice, &msg.headers) {
                (None, _) => tracing::warn!(subject = %msg.subject, "ignoring a malformed commit notice"),
                (Some(notice), Some(headers)) => received(headers, notice),
                (Some(_), None) => {}
            }
            notice
        })))
    }

    /// Whether the client is connected to NATS now. While it is not, notices are lost (live sync falls back to the
    /// SDK's interval pulls) until it reconnects by itself.
    async fn ready(&self) -> Result<(), BusError> {
        match self.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            state => Err(BusError::unavailable(format!("not connected to NATS ({state:?})"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip() {
        let stream = StreamId { app_id: Uuid::now_v7(), user_id: Uuid::now_v7() };
        let device_id = Uuid::now_v7();
        let payload = serde_json::to_vec(&Payload { cursor: 9, device_id }).unwrap();
        assert_eq!(parse(&subject(&stream), &payload), Some(CommitNotice { stream, cursor: 9, device_id }));
        assert_eq!(parse("synckit.commits.x.y", &payload), None);
        assert_eq!(parse(&subject(&stream), b"{}"), None);
    }

    #[test]
    fn urls_lose_their_credentials_for_the_logs() {
        for (url, shown) in [
            ("nats://synckit:s3cret@nats:4222", "nats://***@nats:4222"),
            ("tls://t0ken@nats.example.com", "tls://***@nats.example.com"),
            ("nats://a:s3cret@n1:4222,nats://a:s3cret@n2:4222", "nats://***@n1:4222,nats://***@n2:4222"),
            ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
            ("u:s3cret@127.0.0.1", "***@127.0.0.1"),
        ] {
            assert_eq!(without_credentials(url), shown);
        }
    }

    #[tokio::test]
    async fn a_refused_url_is_reported_without_its_credentials() {
        let err = NatsBus::connect("nats://synckit:s3cret@127.0.0.1:not-a-port").await.unwrap_err();
        let mut text = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(e) = source {
            text.push_str(&format!(": {e}"));
            source = e.source();
        }
        assert!(text.contains("127.0.0.1"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}
