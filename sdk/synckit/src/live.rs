//! Live sync: the server tells the device when to pull, and [`LiveSync`] pulls, decrypts and hands pages over.
//!
//! One background task per handle keeps a server-sent-events connection open (`GET /api/sync/events`). Each
//! `hello` or `commit` event whose cursor is past the device's makes it pull everything new; events that arrive
//! while it pulls are folded into that pull, so a burst of pushes costs one catch-up, not one per push. While no
//! event arrives it still pulls every `poll_interval` (the bus may be down while pushes go on), and after a lost
//! connection it reconnects with back-off and catches up from its cursor. Dropping the handle stops it.
//!
//! It pushes too: the device's outbox on connecting (so after every reconnect, when the network is back) and
//! whenever the app enqueues, so an app that uses live sync only ever calls
//! [`enqueue`](crate::SyncKitClient::enqueue). Changes the server refuses because the app is at its plan's storage
//! limit stay in the outbox, live sync goes on pulling, and every poll interval it tries them again.
//!
//! An entry that cannot be read is not an error here either: it travels in [`LivePage::undecryptable`] and live
//! sync goes on past it. Only what no retry can mend (the session ended, encryption locked) stops it.

use std::time::Duration;

use futures::StreamExt;
use synckit_protocol::paths;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::SyncKitClient;
use crate::error::{Error, ErrorKind, Result};
use crate::model::ChangeEntry;
use crate::page::{PullPage, Undecryptable};

/// Changes that arrived live, decrypted, with the cursor to resume from.
///
/// ```no_run
/// # async fn demo(mut live: synckit::LiveSync) -> synckit::Result<()> {
/// while let Some(page) = live.next().await {
///     let synckit::LivePage { changes, undecryptable, cursor } = page?;
///     for skipped in &undecryptable {
///         eprintln!("{skipped}"); // or keep it for the user to see: it will not be reported again
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LivePage {
    /// Other devices' changes, oldest first.
    pub changes: Vec<ChangeEntry>,
    /// Entries of other devices that could not be read, oldest first, passed over as
    /// [`PullPage::undecryptable`] says. Each is reported once, in the page whose cursor passes it.
    pub undecryptable: Vec<Undecryptable>,
    /// The cursor after them: save it to resume after a restart.
    pub cursor: u64,
}

/// How live sync behaves; the defaults suit most apps.
///
/// ```
/// let options = synckit::LiveOptions { poll_interval: std::time::Duration::from_secs(60), ..Default::default() };
/// assert_eq!(options.max_reconnect_delay, std::time::Duration::from_secs(30));
/// ```
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Pull at least this often while no event arrives.
    pub poll_interval: Duration,
    /// The longest wait between reconnection attempts.
    pub max_reconnect_delay: Duration,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self { poll_interval: Duration::from_secs(30), max_reconnect_delay: Duration::from_secs(30) }
    }
}

/// A running live sync; dropping it (or [`LiveSync::stop`]) stops it.
///
/// ```no_run
/// # async fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
/// let mut live = client.live(device, client.load_cursor(device)?);
/// while let Some(page) = live.next().await {
///     let page = page?;
///     for change in &page.changes { /* apply */ }
///     for skipped in &page.undecryptable { eprintln!("{skipped}") }
///     client.save_cursor(device, page.cursor)?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct LiveSync {
    pages: mpsc::Receiver<Result<LivePage>>,
    task: tokio::task::JoinHandle<()>,
}

impl LiveSync {
    /// The next page of changes; `None` once stopped. An `Err` is final (the session ended, or encryption is not
    /// set up); network and server trouble is retried inside and never surfaces here, and an entry that cannot be
    /// read arrives in [`LivePage::undecryptable`], not as an error.
    ///
    /// ```no_run
    /// # async fn demo(mut live: synckit::LiveSync) {
    /// if let Some(Ok(page)) = live.next().await { println!("now at {}", page.cursor); }
    /// # }
    /// ```
    pub async fn next(&mut self) -> Option<Result<LivePage>> {
        self.pages.recv().await
    }

    /// Stops live sync.
    ///
    /// ```no_run
    /// # fn demo(live: synckit::LiveSync) { live.stop(); }
    /// ```
    pub fn stop(self) {}
}

impl Drop for LiveSync {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) fn start(client: SyncKitClient, device_id: Uuid, cursor: u64, options: LiveOptions) -> LiveSync {
    // Small: a consumer that falls behind slows the pulling, never grows memory.
    let (tx, pages) = mpsc::channel(4);
    let task = tokio::spawn(async move {
        let enqueued = client.enqueued();
        let mut worker = Worker { client, device_id, cursor, options, tx, enqueued };
        if let Err(e) = worker.run().await {
            let _ = worker.tx.send(Err(e)).await;
        }
    });
    LiveSync { pages, task }
}

struct Worker {
    client: SyncKitClient,
    device_id: Uuid,
    cursor: u64,
    options: LiveOptions,
    tx: mpsc::Sender<Result<LivePage>>,
    /// Changes when the app enqueues: the outbox has something to push.
    enqueued: watch::Receiver<u64>,
}

/// What woke the worker: the outbox has something to push, the stream may have something to pull, or the poll
/// interval passed.
enum Wake {
    Push,
    Pull(bool),
    Poll,
}

/// Whether an error ends live sync or is worth a reconnect. Entries that do not decrypt are not errors (pages
/// report them), so `Crypto` here would be about the key itself, which no reconnect mends.
fn is_final(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Unauthorized | ErrorKind::Crypto | ErrorKind::Locked | ErrorKind::InvalidRequest)
}

impl Worker {
    async fn run(&mut self) -> Result<()> {
        let mut failures = 0u32;
        loop {
            match self.connected().await {
                Ok(()) => return Ok(()), // the consumer went away
                Err(e) if is_final(&e) => return Err(e),
                Err(e) => {
                    let delay = crate::http::backoff(failures).min(self.options.max_reconnect_delay);
                    tracing::debug!(error = %e, ?delay, "live sync reconnecting");
                    failures = failures.saturating_add(1);
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// One connection's life: returns Ok when the consumer is gone, Err when the connection or a pull failed.
    async fn connected(&mut self) -> Result<()> {
        let token =
            self.client.session().map(|s| s.token).ok_or_else(|| {
                Error::new(ErrorKind::Unauthorized, "not signed in: call authenticate before live sync")
            })?;
        let events = self.client.transport().event_stream(paths::EVENTS, &token, self.cursor).await?;
        let mut events = std::pin::pin!(events);
        // Whatever happened while disconnected, both ways: what was enqueued, and what others pushed.
        self.push_outbox().await?;
        if !self.catch_up().await? {
            return Ok(());
        }
        loop {
            let cursor = self.cursor;
            let wake = tokio::select! {
                event = events.next() => match event {
                    Some(Ok(event)) => Wake::Pull(event_cursor(&event).is_some_and(|c| c > cursor)),
                    Some(Err(e)) => return Err(e),
                    None => return Err(Error::new(ErrorKind::Transport, "the server closed the event stream")),
                },
                Ok(()) = self.enqueued.changed() => Wake::Push,
                () = tokio::time::sleep(self.options.poll_interval) => Wake::Poll,
            };
            match wake {
                Wake::Push => self.push_outbox().await?,
                Wake::Poll => {
                    // Changes a full app could not store wait for room: try them again now and then.
                    if self.client.pending().await? > 0 {
                        self.push_outbox().await?;
                    }
                    if !self.catch_up().await? {
                        return Ok(());
                    }
                }
                Wake::Pull(true) => {
                    if !self.catch_up().await? {
                        return Ok(());
                    }
                }
                Wake::Pull(false) => {}
            }
        }
    }

    /// Pushes everything in the outbox, including what is enqueued meanwhile.
    /// Pushes the outbox. A refusal for the app's storage limit keeps the changes in the outbox and live sync going
    /// (pulls still work); the next poll tries again.
    async fn push_outbox(&mut self) -> Result<()> {
        self.enqueued.borrow_and_update();
        match self.client.push_outbox(self.device_id).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::QuotaExceeded => {
                tracing::warn!(error = %e, "changes kept in the outbox: the app is at its storage limit");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Pulls until nothing is left, handing each non-empty page over. False when the consumer is gone.
    async fn catch_up(&mut self) -> Result<bool> {
        loop {
            let PullPage { changes, undecryptable, cursor, has_more } =
                self.client.pull(self.device_id, self.cursor).await?;
            let moved = cursor != self.cursor;
            self.cursor = cursor;
            let page = LivePage { changes, undecryptable, cursor };
            if (moved || !page.changes.is_empty()) && self.tx.send(Ok(page)).await.is_err() {
                return Ok(false);
            }
            if !has_more {
                return Ok(true);
            }
        }
    }
}

pub(crate) fn event_cursor(event: &eventsource_stream::Event) -> Option<u64> {
    if event.event != "hello" && event.event != "commit" {
        return None;
    }
    serde_json::from_str::<serde_json::Value>(&event.data).ok()?.get("cursor")?.as_u64()
}
