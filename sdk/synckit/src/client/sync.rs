//! The user's stream of changes: push, pull, status, the saved cursors, and live sync.

use reqwest::Method;
use synckit_protocol::limits::{MAX_ENTRY_BYTES, MAX_PULL_LIMIT, MAX_PUSH_BODY_BYTES, MAX_PUSH_ENTRIES};
use synckit_protocol::paths;
use synckit_protocol::sync::{PullRequest, PullResponse, PushEntry, PushRequest, PushResponse, StatusResponse};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::SyncKitClient;
use crate::error::{Error, ErrorKind, Result};
use crate::http::Retry;
use crate::live::{LiveOptions, LiveSync};
use crate::model::{ChangeEntry, Status};
use crate::page::PullPage;

impl SyncKitClient {
    /// Encrypts and pushes changes made on `device_id`, in as many requests as the protocol's limits need, and
    /// returns the stream's cursor after them. Each change is encrypted once; a retry after a lost answer resends
    /// the same bytes under the same change ids, so nothing is stored twice.
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
        let session = self.require_session()?;
        let keys = self.keys()?;
        let mut batches: Vec<Vec<PushEntry>> = vec![Vec::new()];
        let mut batch_bytes = 0usize;
        for change in changes {
            let change_id = Uuid::now_v7();
            let plaintext = Zeroizing::new(serde_json::to_vec(&change).expect("a change entry serialises"));
            let payload = keys.seal_entry(&plaintext, session.app_id, session.user_id, change_id);
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
            // Base64 and JSON framing: 4/3 of the payload plus the id, with room to spare.
            let wire = payload.len().div_ceil(3) * 4 + 80;
            let full = batches.last().expect("never empty");
            if full.len() == MAX_PUSH_ENTRIES || batch_bytes + wire > MAX_PUSH_BODY_BYTES - 1024 {
                batches.push(Vec::new());
                batch_bytes = 0;
            }
            batch_bytes += wire;
            batches.last_mut().expect("never empty").push(PushEntry { change_id, payload: payload.into() });
        }
        let mut cursor = None;
        for entries in batches.into_iter().filter(|b| !b.is_empty()) {
            let req = PushRequest { device_id, entries };
            let resp: PushResponse = self.call(Method::POST, paths::PUSH, true, Some(&req), Retry::Idempotent).await?;
            cursor = Some(resp.cursor);
        }
        match cursor {
            Some(cursor) => Ok(cursor),
            None => Ok(self.status().await?.cursor),
        }
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
        let req = PullRequest { cursor, limit: Some(MAX_PULL_LIMIT) };
        let page: PullResponse = self.call(Method::POST, paths::PULL, true, Some(&req), Retry::Idempotent).await?;
        Ok(crate::page::open(page, &keys, &session, device_id))
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
    /// [`LiveSync`] pulls, decrypts and hands over the new changes. It reconnects by itself after network or
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
