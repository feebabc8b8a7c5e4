//! SyncKit's commit fan-out: after a push commits, ingest publishes a notice `(stream, cursor, device)`; every
//! query instance subscribes to all notices and tells the stream's connected devices to pull.
//!
//! Notices carry no data: subscribers re-read the log, so a lost notice costs latency, never data. That is why
//! the bus may drop notices (a lagging in-process subscriber, NATS down) and why publishing is best effort.
//!
//! # Layout
//! - [`CommitBus`], [`CommitNotice`]: the port.
//! - [`InProcessBus`]: a tokio broadcast channel, for the single-process embedded default.
//! - [`NatsBus`]: core NATS pub/sub (not JetStream), one subject per stream under `synckit.commits.`; a notice's
//!   headers carry the publishing push's trace context.

mod in_process;
mod nats;

use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;
use synckit_store::StreamId;
use uuid::Uuid;

pub use in_process::InProcessBus;
pub use nats::{NatsBus, without_credentials};

/// A stream has entries up to `cursor`, the last ones pushed by `device_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitNotice {
    pub stream: StreamId,
    pub cursor: u64,
    pub device_id: Uuid,
}

/// Every notice published after the subscription started, from any stream, until the bus closes.
pub type NoticeStream = Pin<Box<dyn Stream<Item = CommitNotice> + Send>>;

/// A failure to publish or subscribe.
#[derive(Debug, thiserror::Error)]
#[error("commit bus: {message}")]
pub struct BusError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl BusError {
    fn unavailable(message: impl Into<String>) -> Self {
        Self { message: message.into(), source: None }
    }

    fn new(message: impl Into<String>, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self { message: message.into(), source: Some(source.into()) }
    }
}

/// The fan-out port.
#[async_trait]
pub trait CommitBus: Send + Sync + std::fmt::Debug + 'static {
    /// Publishes a notice. Best effort: callers bound the time they wait for it.
    async fn publish(&self, notice: &CommitNotice) -> Result<(), BusError>;

    /// Subscribes to the notices of every stream.
    async fn subscribe(&self) -> Result<NoticeStream, BusError>;

    /// Whether notices flow right now: an error says why not. Cheap and immediate, for `/readyz`: it reports the
    /// state of the connection the bus already keeps, and sends nothing.
    async fn ready(&self) -> Result<(), BusError>;
}

#[cfg(feature = "conformance")]
pub mod conformance {
    //! Behaviour every bus adapter shows.

    use futures::StreamExt;
    use std::time::Duration;

    use super::*;

    fn notice(cursor: u64) -> CommitNotice {
        CommitNotice {
            stream: StreamId { app_id: Uuid::now_v7(), user_id: Uuid::now_v7() },
            cursor,
            device_id: Uuid::now_v7(),
        }
    }

    /// A guard so a broken bus fails the test instead of hanging it.
    async fn next(sub: &mut NoticeStream) -> CommitNotice {
        tokio::time::timeout(Duration::from_secs(10), sub.next()).await.expect("a notice within 10 s").expect("open")
    }

    /// Every subscriber receives every notice published after it subscribed, in publish order.
    pub async fn subscribers_receive_every_notice(bus: &dyn CommitBus) {
        let mut a = bus.subscribe().await.unwrap();
        let mut b = bus.subscribe().await.unwrap();
        let sent: Vec<CommitNotice> = (1..=3).map(notice).collect();
        for n in &sent {
            bus.publish(n).await.unwrap();
        }
        for sub in [&mut a, &mut b] {
            for n in &sent {
                assert_eq!(next(sub).await, *n);
            }
        }
    }

    /// Publishing with nobody listening succeeds, and the notice is not kept for whoever subscribes later: a
    /// subscriber's first notice is the first one published after it subscribed.
    pub async fn publishing_without_subscribers_succeeds(bus: &dyn CommitBus) {
        let unheard = notice(1);
        bus.publish(&unheard).await.expect("publishing with nobody listening succeeds");
        let mut sub = bus.subscribe().await.unwrap();
        let heard = notice(2);
        bus.publish(&heard).await.unwrap();
        assert_eq!(next(&mut sub).await, heard, "a notice published before subscribing is not delivered");
    }

    /// A bus that delivers notices says it is ready, and says so at once.
    pub async fn a_working_bus_is_ready(bus: &dyn CommitBus) {
        let answer = tokio::time::timeout(Duration::from_millis(100), bus.ready()).await;
        answer.expect("readiness answers at once").expect("a working bus is ready");
        let mut sub = bus.subscribe().await.unwrap();
        let sent = notice(1);
        bus.publish(&sent).await.unwrap();
        assert_eq!(next(&mut sub).await, sent, "and it does deliver");
    }
}
