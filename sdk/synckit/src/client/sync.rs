//! The user's stream of changes: push, pull, status, the saved cursors, and live sync.

use std::collections::HashSet;

use reqwest::Method;
use synckit_protocol::limits::{MAX_ENTRY_BYTES, MAX_PULL_LIMIT, MAX_PUSH_ENTRIES};
use synckit_protocol::paths;
use synckit_protocol::sync::{
    PullRequest, PullResponse, PushEntry, PushRequest, PushResponse, StatusResponse, SupersedeRequest,
    SupersedeResponse,
};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::SyncKitClient;
use crate::error::{Error, ErrorKind, Result};
use crate::http::Retry;
use crate::live::{LiveOptions, LiveSync};
use crate::model::{ChangeEntry, Compacted, Status};
use crate::page::PullPage;

impl SyncKitClient {
    /// Encrypts and pushes changes made on `device_id`, in as many requests as the protocol's limits need, and
    /// returns the stream's cursor after them. Each request is encrypted once; a retry after a lost answer resends
    /// the same bytes under the same change ids, so nothing is stored twice.
    ///
    /// The change ids are made here, so calling `push` again after an error pushes the changes again under new
    /// ids. An app that wants to retry whole calls safely passes its own ids with
    /// [`push_with_ids`](Self::push_with_ids), or lets the SDK keep its changes: [`enqueue`](Self::enqueue) and
    /// [`sync`](Self::sync).
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
    /// use synckit::ChangeEntry;
    /// let cursor = client.push(device, vec![
    ///     ChangeEntry::insert("notes", "n1", serde_json::json!({"title": "Groceries"})),
    ///     ChangeEntry::delete("notes", "n0"),
    /// ]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn push(&self, device_id: Uuid, changes: impl IntoIterator<Item = ChangeEntry>) -> Result<u64> {
        let sealed = self.seal(changes.into_iter().map(|change| (Uuid::now_v7(), change)))?;
        self.push_sealed(device_id, sealed).await
    }

    /// [`push`](Self::push) with change ids the caller chose and kept (UUIDv7, from `Uuid::now_v7()`, are what the
    /// SDK makes). The server stores each change id once per user: calling this again with the same ids, after a
    /// timeout or a push that failed halfway, stores only what did not arrive before. The ids within one call must
    /// be distinct ([`ErrorKind::InvalidInput`] otherwise, and nothing is sent).
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
    /// use synckit::ChangeEntry;
    /// use uuid::Uuid;
    /// let change = (Uuid::now_v7(), ChangeEntry::insert("notes", "n1", serde_json::json!({"title": "Hi"})));
    /// // Save `change` with the app's data, then push; after a failure, push the same pair again.
    /// let cursor = loop {
    ///     match client.push_with_ids(device, [change.clone()]).await {
    ///         Err(e) if e.is_retryable() => continue,
    ///         other => break other?,
    ///     }
    /// };
    /// # Ok(()) }
    /// ```
    pub async fn push_with_ids(
        &self,
        device_id: Uuid,
        changes: impl IntoIterator<Item = (Uuid, ChangeEntry)>,
    ) -> Result<u64> {
        let sealed = self.seal(changes)?;
        self.push_sealed(device_id, sealed).await
    }

    /// Pushes sealed changes in as many requests as the limits need; the stream's cursor after them.
    async fn push_sealed(&self, device_id: Uuid, sealed: Vec<(Uuid, Vec<u8>)>) -> Result<u64> {
        let mut cursor = None;
        for entries in push_batches(sealed) {
            let req = PushRequest { device_id, entries };
            let resp: PushResponse = self.call(Method::POST, paths::PUSH, true, Some(&req), Retry::Idempotent).await?;
            cursor = Some(resp.cursor);
        }
        match cursor {
            Some(cursor) => Ok(cursor),
            None => Ok(self.status().await?.cursor),
        }
    }

    /// Encrypts each change under its id, refusing the lot when one is too large or an id repeats.
    pub(crate) fn seal(&self, changes: impl IntoIterator<Item = (Uuid, ChangeEntry)>) -> Result<Vec<(Uuid, Vec<u8>)>> {
        let session = self.require_session()?;
        let keys = self.keys()?;
        let mut seen = HashSet::new();
        let mut sealed = Vec::new();
        let mut sealer = keys.entry_sealer(session.app_id, session.user_id);
        for (change_id, change) in changes {
            if !seen.insert(change_id) {
                return Err(Error::new(ErrorKind::InvalidInput, format!("change id {change_id} is given twice")));
            }
            let plaintext = Zeroizing::new(serde_json::to_vec(&change).expect("a change entry serialises"));
            let payload = sealer.seal(&plaintext, change_id);
            if payload.len() > MAX_ENTRY_BYTES {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "a change to {}/{} is {} bytes encrypted; at most {MAX_ENTRY_BYTES}",
                        change.table,
                        change.row_id,
                        payload.len()
                    ),
                ));
            }
            sealed.push((change_id, payload));
        }
        Ok(sealed)
    }

    /// Pulls one page (up to 500) of the changes after `cursor`, decrypted, with the cursor to pass next and whether
    /// more remain. Changes pushed by `device_id` itself are left out (the app already has them), though the cursor
    /// moves past them.
    ///
    /// An entry that cannot be read does not fail the page: it is reported in [`PullPage::undecryptable`] with its
    /// `seq`, change id, device and [`UndecryptableReason`](crate::UndecryptableReason), the other changes are
    /// handed over, and the cursor moves past it, so one bad entry (forged by the server, or pushed by a faulty
    /// device) cannot stop sync. It is reported once, in the page that passes it: log or show it before saving the
    /// cursor. The server keeps it, and a pull from before its `seq` returns it again.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
    /// let mut cursor = client.load_cursor(device)?;
    /// loop {
    ///     let page = client.pull(device, cursor).await?;
    ///     for change in &page.changes { /* apply to the local store */ }
    ///     for skipped in &page.undecryptable {
    ///         eprintln!("{skipped}"); // "entry 7 (change …, from device …) skipped: it does not decrypt: …"
    ///     }
    ///     cursor = page.cursor;
    ///     client.save_cursor(device, cursor)?;
    ///     if !page.has_more { break; }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn pull(&self, device_id: Uuid, cursor: u64) -> Result<PullPage> {
        let session = self.require_session()?;
        let keys = self.keys()?;
        let page = self.pull_encrypted(cursor).await?;
        Ok(crate::page::open(page, &keys, &session, device_id))
    }

    /// One page after `cursor`, as the server sent it.
    pub(crate) async fn pull_encrypted(&self, cursor: u64) -> Result<PullResponse> {
        let req = PullRequest { cursor, limit: Some(MAX_PULL_LIMIT) };
        self.call(Method::POST, paths::PULL, true, Some(&req), Retry::Idempotent).await
    }

    /// Compacts the changelog: marks the entries at `seqs` superseded, so that the server drops their payloads and
    /// they stop counting against the app's storage. Their places stay: pulls skip them, every device converges on
    /// the entries after them, and a late retry of one is still recognised and never stored again.
    ///
    /// Mark an entry only when a later entry of the stream makes it irrelevant to every device: a later insert or
    /// update of the same row (changes carry the whole row) or its delete. Keep deletes themselves: a device that has
    /// the row needs them. Sequence numbers come from [`SyncedChange::seq`](crate::SyncedChange::seq); those past the
    /// head, and entries superseded already, are skipped. Sent in requests of 500, each safe to repeat.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
    /// // Each row's newest seq; an older change of a row is superseded by its newer one.
    /// let mut newest = std::collections::HashMap::new();
    /// let mut superseded = Vec::new();
    /// client
    ///     .sync(device, |page| {
    ///         for c in page.changes {
    ///             if let Some(older) = newest.insert((c.change.table.clone(), c.change.row_id.clone()), c.seq) {
    ///                 superseded.push(older);
    ///             }
    ///         }
    ///         Ok(())
    ///     })
    ///     .await?;
    /// let compacted = client.supersede(superseded).await?;
    /// println!("freed {} bytes", compacted.freed_bytes);
    /// # Ok(()) }
    /// ```
    pub async fn supersede(&self, seqs: impl IntoIterator<Item = u64>) -> Result<Compacted> {
        let seqs: Vec<u64> = seqs.into_iter().collect();
        let mut done = Compacted::default();
        for batch in seqs.chunks(MAX_PUSH_ENTRIES) {
            let req = SupersedeRequest { seqs: batch.to_vec() };
            let answer: SupersedeResponse =
                self.call(Method::POST, paths::SUPERSEDE, true, Some(&req), Retry::Idempotent).await?;
            done.superseded += u64::from(answer.superseded);
            done.freed_bytes += answer.freed_bytes;
        }
        Ok(done)
    }

    /// How many changes this user's stream holds, and its newest cursor.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
    /// let status = client.status().await?;
    /// println!("{} changes", status.change_count);
    /// # Ok(()) }
    /// ```
    pub async fn status(&self) -> Result<Status> {
        let s: StatusResponse = self.call::<(), _>(Method::GET, paths::STATUS, true, None, Retry::Idempotent).await?;
        Ok(Status { change_count: s.change_count, cursor: s.cursor })
    }

    /// The cursor saved for `device_id` in the cursor store (0 when none).
    ///
    /// ```no_run
    /// # fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
    /// let cursor = client.load_cursor(device)?;
    /// # Ok(()) }
    /// ```
    pub fn load_cursor(&self, device_id: Uuid) -> Result<u64> {
        Ok(self.inner.cursor_store.load(&self.cursor_name(device_id)?)?.unwrap_or(0))
    }

    /// Saves the cursor for `device_id` in the cursor store.
    ///
    /// ```no_run
    /// # fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
    /// client.save_cursor(device, 42)?;
    /// # Ok(()) }
    /// ```
    pub fn save_cursor(&self, device_id: Uuid, cursor: u64) -> Result<()> {
        self.inner.cursor_store.save(&self.cursor_name(device_id)?, cursor)
    }

    /// Starts live sync from `cursor`: whenever another device pushes, the server says so and the returned
    /// [`LiveSync`] pulls, decrypts and hands over the new changes. It pushes the device's outbox too, on every
    /// (re)connection and whenever the app [`enqueue`](Self::enqueue)s, so an app on live sync never calls push. It reconnects by itself after network or
    /// server loss, and pulls on an interval while no events arrive. Entries that cannot be read are reported in
    /// [`LivePage::undecryptable`](crate::LivePage::undecryptable) and passed over, as [`pull`](Self::pull) does;
    /// they never stop it. Needs a Tokio runtime.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
    /// let mut live = client.live(device, 0);
    /// while let Some(page) = live.next().await {
    ///     let page = page?;
    ///     println!("{} new changes, {} skipped, now at {}", page.changes.len(), page.undecryptable.len(), page.cursor);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn live(&self, device_id: Uuid, cursor: u64) -> LiveSync {
        self.live_with(device_id, cursor, LiveOptions::default())
    }

    /// [`live`](Self::live) with non-default options.
    ///
    /// ```no_run
    /// # fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) {
    /// let options = synckit::LiveOptions { poll_interval: std::time::Duration::from_secs(5), ..Default::default() };
    /// let live = client.live_with(device, 0, options);
    /// # }
    /// ```
    pub fn live_with(&self, device_id: Uuid, cursor: u64, options: LiveOptions) -> LiveSync {
        crate::live::start(self.clone(), device_id, cursor, options)
    }
}

/// The payload bytes of one push request the SDK sends: the outbox's batches and [`push`](SyncKitClient::push)'s
/// requests stop before the entry that would pass them. Base64 makes it 2 MiB on the wire, which a 1 Mbit/s link
/// sends in about 17 s, well within the server's default 30 s for a whole request, where the largest body the
/// server takes (48 MiB) would not finish. Entries are at most 64 KiB, so a batch of one always fits.
pub(crate) const PUSH_BATCH_PAYLOAD_BYTES: usize = 1536 * 1024;

/// Sealed changes cut into push requests: at most [`MAX_PUSH_ENTRIES`] and [`PUSH_BATCH_PAYLOAD_BYTES`] each.
fn push_batches(sealed: Vec<(Uuid, Vec<u8>)>) -> Vec<Vec<PushEntry>> {
    let mut batches: Vec<Vec<PushEntry>> = Vec::new();
    let mut bytes = 0usize;
    for (change_id, payload) in sealed {
        let full = batches
            .last()
            .is_none_or(|b| b.len() == MAX_PUSH_ENTRIES || bytes + payload.len() > PUSH_BATCH_PAYLOAD_BYTES);
        if full {
            batches.push(Vec::new());
            bytes = 0;
        }
        bytes += payload.len();
        batches.last_mut().expect("pushed above").push(PushEntry { change_id, payload: payload.into() });
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_are_cut_by_count_and_bytes() {
        let sealed = |n: usize, size: usize| (0..n).map(|_| (Uuid::now_v7(), vec![0; size])).collect::<Vec<_>>();
        let sizes = |batches: Vec<Vec<PushEntry>>| batches.iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(sizes(push_batches(sealed(1203, 100))), [500, 500, 203]);
        // 64 KiB entries: 24 fit in 1.5 MiB.
        assert_eq!(sizes(push_batches(sealed(50, 64 * 1024))), [24, 24, 2]);
        assert_eq!(sizes(push_batches(Vec::new())), Vec::<usize>::new());
        let all = sealed(7, 10);
        let ids: Vec<Uuid> = all.iter().map(|(id, _)| *id).collect();
        let pushed: Vec<Uuid> = push_batches(all).concat().iter().map(|e| e.change_id).collect();
        assert_eq!(pushed, ids, "in order");
    }
}
