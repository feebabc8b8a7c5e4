use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::{BusError, CommitBus, CommitNotice, NoticeStream};

/// Notices buffered per subscriber; one that falls further behind skips the oldest (they only say "pull").
const CAPACITY: usize = 4096;

/// Fan-out inside one process.
#[derive(Debug, Clone)]
pub struct InProcessBus {
    tx: broadcast::Sender<CommitNotice>,
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self { tx: broadcast::channel(CAPACITY).0 }
    }
}

#[async_trait]
impl CommitBus for InProcessBus {
    async fn publish(&self, notice: &CommitNotice) -> Result<(), BusError> {
        // An error only means nobody is subscribed.
        let _ = self.tx.send(*notice);
        Ok(())
    }

    async fn subscribe(&self) -> Result<NoticeStream, BusError> {
        let rx = self.tx.subscribe();
        Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(notice) => return Some((notice, rx)),
                    Err(broadcast::error::RecvError::Lagged(skipped)) => {
                        tracing::debug!(skipped, "commit notices skipped by a lagging subscriber");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })))
    }

    /// Always: the channel lives as long as the bus.
    async fn ready(&self) -> Result<(), BusError> {
        Ok(())
    }
}
