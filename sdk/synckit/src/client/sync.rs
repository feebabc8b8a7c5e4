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

    /// Pulls one page (up to 500) of the changes after `cursor`, decrypted, and returns them with the cursor to
    /// pass next and whether more remain. Changes pushed by `device_id` itself are skipped (the app already has
    /// them), though the cursor moves past them.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
    /// let mut cursor = client.load_cursor(device)?;
    /// loop {
    ///     let (changes, next, has_more) = client.pull(device, cursor).await?;
    ///     for change in changes { /* apply to the local store */ }
    ///     cursor = next;
    ///     client.save_cursor(device, cursor)?;
    ///     if !has_more { break; }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn pull(&self, device_id: Uuid, cursor: u64) -> Result<(Vec<ChangeEntry>, u64, bool)> {
        let session = self.require_session()?;
        let keys = self.keys()?;
        let req = PullRequest { cursor, limit: Some(MAX_PULL_LIMIT) };
        let page: PullResponse = self.call(Method::POST, paths::PULL, true, Some(&req), Retry::Idempotent).await?;
        let mut changes = Vec::with_capacity(page.entries.len());
        for e in page.entries.into_iter().filter(|e| e.device_id != device_id) {
            let plaintext =
                Zeroizing::new(keys.open_entry(e.payload.as_bytes(), session.app_id, session.user_id, e.change_id)?);
            let change = serde_json::from_slice(&plaintext).map_err(|err| {
                Error::new(
                    ErrorKind::Crypto,
                    format!("entry {} decrypted to something that is not a change", e.change_id),
                )
                .with_source(err)
            })?;
            changes.push(change);
        }
        Ok((changes, page.cursor, page.has_more))
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
    /// server loss, and pulls on an interval while no events arrive. Needs a Tokio runtime.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
    /// let mut live = client.live(device, 0);
    /// while let Some(page) = live.next().await {
    ///     println!("{} new changes, now at {}", page?.changes.len(), client.load_cursor(device)?);
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
