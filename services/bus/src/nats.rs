use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use synckit_store::StreamId;
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
            .map_err(|e| BusError::new(format!("cannot use NATS at {url}"), e))?;
        Ok(Self { client })
    }

    /// Whether the connection to NATS is up right now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
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

#[async_trait]
impl CommitBus for NatsBus {
    async fn publish(&self, notice: &CommitNotice) -> Result<(), BusError> {
        let payload = serde_json::to_vec(&Payload { cursor: notice.cursor, device_id: notice.device_id })
            .expect("a notice serialises");
        self.client
            .publish(subject(&notice.stream), payload.into())
            .await
            .map_err(|e| BusError::new("publishing a commit notice failed", e))
    }

    async fn subscribe(&self) -> Result<NoticeStream, BusError> {
        let sub = self
            .client
            .subscribe(format!("{PREFIX}.>"))
            .await
            .map_err(|e| BusError::new("subscribing to commit notices failed", e))?;
        Ok(Box::pin(sub.filter_map(|msg| async move {
            let notice = parse(&msg.subject, &msg.payload);
            if notice.is_none() {
                tracing::warn!(subject = %msg.subject, "ignoring a malformed commit notice");
            }
            notice
        })))
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
}
