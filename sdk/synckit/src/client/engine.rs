//! The SDK as a sync engine: changes enqueued in the device's outbox, and one call that pushes them and pulls and
//! hands over everything new.

use reqwest::Method;
use synckit_protocol::limits::MAX_PUSH_ENTRIES;
use synckit_protocol::paths;
use synckit_protocol::sync::{PushEntry, PushRequest, PushResponse};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::sync::PUSH_BATCH_PAYLOAD_BYTES;
use crate::SyncKitClient;
use crate::error::{Error, ErrorKind, Result};
use crate::http::Retry;
use crate::model::ChangeEntry;
use crate::page::{SyncPage, SyncReport};
use crate::task::{blocking, internal};

/// What the app's `apply` callback of [`SyncKitClient::sync`] returns: any error, which ends the sync.
pub type ApplyResult = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Decrypted pages waiting for the app, beyond the one it applies: enough to keep the next request and its
/// decryption going while the app applies, few enough that a slow app does not fill memory.
const PAGES_AHEAD: usize = 2;

impl SyncKitClient {
    /// Encrypts `changes` and stores them in the device's outbox (the signed-in user's queue in the data
    /// directory), then returns their change ids, in order. Nothing is sent: it works offline, and
    /// [`sync`](Self::sync) or live sync pushes them later, under the id of the device that syncs. One data
    /// directory is one device: two clients of the same user sharing one would push each other's changes.
    ///
    /// Each change is encrypted once, here, so every push of it sends the same bytes under the same id and the
    /// server stores it once, however often a lost answer makes the SDK send it. The outbox (by default a SQLite
    /// database in the data directory) keeps each call's changes whole, synced to disk before this returns: after
    /// a crash, every change of a call that returned is there, and none of a call that did not. Calls are replayed
    /// in the order they returned. It needs a session and the unlocked key, as [`push`](Self::push) does. A change
    /// too large to push fails the call with [`ErrorKind::InvalidInput`], and nothing of it is enqueued. Once the
    /// store is writing, dropping the call does not stop it: the changes may be enqueued without their ids
    /// reaching the app (they come back through `sync` all the same).
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
    /// use synckit::ChangeEntry;
    /// let ids = client.enqueue([ChangeEntry::insert("notes", "n1", serde_json::json!({"title": "Hi"}))]).await?;
    /// let report = client.sync(device, |page| { /* apply page.changes */ Ok(()) }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn enqueue(&self, changes: impl IntoIterator<Item = ChangeEntry>) -> Result<Vec<Uuid>> {
        let changes: Vec<(Uuid, ChangeEntry)> = changes.into_iter().map(|c| (Uuid::now_v7(), c)).collect();
        let ids: Vec<Uuid> = changes.iter().map(|(id, _)| *id).collect();
        if changes.is_empty() {
            return Ok(ids);
        }
        let (client, queue) = (self.clone(), self.outbox_queue()?);
        blocking(move || {
            let sealed = client.seal(changes)?;
            client.inner.outbox.append(&queue, &sealed)
        })
        .await?;
        self.inner.enqueued.send_modify(|n| *n = n.wrapping_add(1));
        Ok(ids)
    }

    /// How many changes wait in the outbox of the signed-in user.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
    /// if client.pending().await? > 0 { println!("not everything is on the server yet"); }
    /// # Ok(()) }
    /// ```
    pub async fn pending(&self) -> Result<u64> {
        let (outbox, queue) = (self.inner.outbox.clone(), self.outbox_queue()?);
        blocking(move || outbox.len(&queue)).await
    }

    /// Pushes the outbox as `device_id`, oldest first, in requests of at most 500 changes and about 2 MiB, and
    /// returns how many changes the server acknowledged (stored now, or already). A change leaves the outbox only
    /// once the server acknowledged it, so after an error (the network, the server) a later call sends what is
    /// left, and nothing twice. [`sync`](Self::sync) and live sync call this; call it directly to push without
    /// pulling.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
    /// let pushed = client.push_outbox(device).await?;
    /// # Ok(()) }
    /// ```
    pub async fn push_outbox(&self, device_id: Uuid) -> Result<u64> {
        let queue = self.outbox_queue()?;
        let outbox = self.inner.outbox.clone();
        // Concurrent calls would send the same batch twice: harmless, but wasted.
        let _one_at_a_time = self.inner.pushing.lock().await;
        let mut pushed = 0u64;
        loop {
            let (store, name) = (outbox.clone(), queue.clone());
            let batch = blocking(move || store.oldest(&name, MAX_PUSH_ENTRIES, PUSH_BATCH_PAYLOAD_BYTES)).await?;
            let Some(last) = batch.last().map(|e| e.seq) else { return Ok(pushed) };
            let count = batch.len() as u64;
            let entries = batch.into_iter().map(|e| PushEntry { change_id: e.change_id, payload: e.payload.into() });
            let req = PushRequest { device_id, entries: entries.collect() };
            let _: PushResponse = self.call(Method::POST, paths::PUSH, true, Some(&req), Retry::Idempotent).await?;
            let (store, name) = (outbox.clone(), queue.clone());
            blocking(move || store.remove_through(&name, last)).await?;
            pushed += count;
        }
    }

    /// Brings `device_id` up to date in one call: pushes the outbox ([`push_outbox`](Self::push_outbox)), then
    /// pulls every page after its saved cursor, hands each to `apply`, and saves the cursor after each page
    /// `apply` accepted. Returns what it did.
    ///
    /// `apply` receives each page's changes in stream order with their `seq`, the device's own included (where its
    /// pushed changes landed: see [`SyncPage`] for resolving conflicts by it), and entries that cannot be read in
    /// [`SyncPage::undecryptable`]. It runs on the calling task: keep it short, or hand the work to the app's own
    /// thread and wait there. If it fails, sync stops with [`ErrorKind::Apply`] (its error as the source) and the
    /// cursor stays before that page, so the next sync hands it over again. Delivery is at least once: a crash
    /// between the app's commit and the cursor's save hands the page over again too, so apply idempotently (by
    /// `seq`, as `sdk/examples/notes` does), or keep the cursor in the app's own transaction with a
    /// [`CursorStore`](crate::cursor::CursorStore) of its own. Pages are fetched and decrypted ahead, off the async
    /// runtime, while `apply` runs.
    ///
    /// On any other error nothing is lost either: what the server acknowledged has left the outbox, the rest
    /// waits, and the cursor is that of the last page applied. Call `sync` again.
    ///
    /// When the app is at its plan's storage limit the push is refused, and sync still pulls and applies every page,
    /// then fails with [`ErrorKind::QuotaExceeded`]: the refused changes wait in the outbox, and a later sync pushes
    /// them, once, when the app has room.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
    /// let mut notes = std::collections::BTreeMap::new();
    /// let report = client
    ///     .sync(device, |page| {
    ///         for synced in page.changes {
    ///             match synced.change.data {
    ///                 Some(data) => notes.insert(synced.change.row_id, data),
    ///                 None => notes.remove(&synced.change.row_id),
    ///             };
    ///         }
    ///         Ok(())
    ///     })
    ///     .await?;
    /// println!("pushed {}, pulled {}, {} still to push", report.pushed, report.pulled, report.pending);
    /// for skipped in &report.undecryptable { eprintln!("{skipped}") }
    /// # Ok(()) }
    /// ```
    pub async fn sync(&self, device_id: Uuid, mut apply: impl FnMut(SyncPage) -> ApplyResult) -> Result<SyncReport> {
        let session = self.require_session()?;
        let keys = self.keys()?;
        // A full app still pulls: what others stored is the device's to see, whatever it cannot store itself.
        let (pushed, refused) = match self.push_outbox(device_id).await {
            Ok(pushed) => (pushed, None),
            Err(e) if e.kind() == ErrorKind::QuotaExceeded => (0, Some(e)),
            Err(e) => return Err(e),
        };
        let store = self.inner.cursor_store.clone();
        let name = self.cursor_name(device_id)?;
        let start = {
            let (store, name) = (store.clone(), name.clone());
            blocking(move || store.load(&name)).await?.unwrap_or(0)
        };
        let mut report = SyncReport { pushed, pulled: 0, undecryptable: Vec::new(), pending: 0, cursor: start };

        let (tx, mut pages) = mpsc::channel::<Result<tokio::task::JoinHandle<SyncPage>>>(PAGES_AHEAD);
        let fetcher = self.clone();
        let _fetching = AbortOnDrop(tokio::spawn(async move {
            let mut cursor = start;
            loop {
                let page = match fetcher.pull_encrypted(cursor).await {
                    Ok(page) => page,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                let more = page.has_more && page.cursor > cursor;
                cursor = page.cursor;
                let (keys, session) = (keys.clone(), session.clone());
                let opening = tokio::task::spawn_blocking(move || crate::page::open_all(page, &keys, &session));
                if tx.send(Ok(opening)).await.is_err() || !more {
                    return;
                }
            }
        }));

        while let Some(opening) = pages.recv().await {
            let page = opening?.await.map_err(|e| internal("decrypting a page", e))?;
            let cursor = page.cursor;
            report.pulled += page.changes.iter().filter(|c| c.device_id != device_id).count() as u64;
            report.undecryptable.extend(page.undecryptable.iter().cloned());
            if !page.changes.is_empty() || !page.undecryptable.is_empty() {
                apply(page).map_err(|e| {
                    Error::new(ErrorKind::Apply, "the app could not apply a page of changes; it will come again")
                        .with_source(e)
                })?;
            }
            if cursor != report.cursor {
                let (store, name) = (store.clone(), name.clone());
                blocking(move || store.save(&name, cursor)).await?;
                report.cursor = cursor;
            }
        }
        report.pending = self.pending().await?;
        match refused {
            Some(refused) => Err(Error::new(
                ErrorKind::QuotaExceeded,
                format!(
                    "{} changes wait in the outbox: the app is at its plan's storage limit; everything new was pulled \
                     (to cursor {}), and the next sync pushes them once the app has room",
                    report.pending, report.cursor
                ),
            )
            .with_source(refused)),
            None => Ok(report),
        }
    }

    /// The outbox queue: one per server, app and user, whichever device id pushes it, so that what a profile
    /// enqueued before it registered as a new device (its old one deleted, say) still goes, under the new id.
    fn outbox_queue(&self) -> Result<String> {
        self.key_account()
    }

    /// Changes whenever something is enqueued.
    pub(crate) fn enqueued(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.enqueued.subscribe()
    }
}

/// A task of `sync` that stops when sync does, however it ends.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
