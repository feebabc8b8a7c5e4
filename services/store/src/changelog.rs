//! The changelog port.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::StoreError;

/// One (app, user): the unit of ordering. Always taken from a verified token, never from a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamId {
    pub app_id: Uuid,
    pub user_id: Uuid,
}

/// A change to append: opaque ciphertext under a client-chosen id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub change_id: Uuid,
    pub payload: Vec<u8>,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The stream's head after the append: the newest sequence number.
    pub head: u64,
    /// Entries stored, numbered `head - accepted + 1 ..= head`.
    pub accepted: u32,
    /// Entries skipped: their change id was already in the stream, or repeated earlier in the same batch.
    pub duplicates: u32,
    /// The payload bytes of the entries stored: what the append added to the stream's stored and transferred bytes.
    pub bytes: u64,
}

/// A stored change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub change_id: Uuid,
    pub device_id: Uuid,
    /// Empty when superseded.
    pub payload: Vec<u8>,
    pub created_at: OffsetDateTime,
    /// Marked superseded by a device: its payload was dropped; its place and change id are kept.
    pub superseded: bool,
}

/// What [`ChangelogStore::supersede`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superseded {
    /// Entries superseded now (not those superseded before).
    pub entries: u32,
    /// Their payload bytes, no longer stored.
    pub bytes: u64,
}

/// A slice of a stream, read in one snapshot together with the stream's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Consecutive entries, oldest first.
    pub entries: Vec<Entry>,
    /// The stream's newest sequence number when the page was read (0 for an empty stream). Because sequence
    /// numbers are contiguous, it is also the number of entries in the stream.
    pub head: u64,
}

/// The append-only log of changes.
///
/// Guarantees every adapter keeps (and the conformance suite checks):
/// - sequence numbers of a stream are 1, 2, 3, … with no gaps, and commit order equals sequence order, so a reader
///   that has seen `n` has seen everything up to `n`;
/// - a change id is stored at most once per stream, so retries are harmless;
/// - appends to one stream are serialised; the Postgres adapter never makes different streams wait on each other
///   (the embedded SQLite adapter serialises all writes, which a single box can afford).
#[async_trait]
pub trait ChangelogStore: Send + Sync + 'static {
    /// Appends the entries not already in the stream, in order, all from `device_id`. The entries are taken by
    /// value: a push's payloads are the bulk of its memory, and an adapter that hands them to another thread (the
    /// SQLite adapter does) can move them there instead of copying them.
    async fn append(&self, stream: StreamId, device_id: Uuid, entries: Vec<NewEntry>) -> Result<Appended, StoreError>;

    /// Up to `limit` entries with sequence numbers greater than `after`, and the stream's head. The page stops
    /// before the entry whose payload would take the page's payloads past `max_bytes` in total, except that it
    /// always holds the first entry after `after` when there is one, so a reader always makes progress.
    async fn read(&self, stream: StreamId, after: u64, limit: u32, max_bytes: usize) -> Result<Page, StoreError>;

    /// Marks the stream's entries at `seqs` superseded: drops their payloads (they stop counting as stored) and keeps
    /// their places and change ids, so sequence numbers stay contiguous and a late retry is still a duplicate.
    /// Sequence numbers past the head, and entries superseded already, are skipped.
    async fn supersede(&self, stream: StreamId, seqs: Vec<u64>) -> Result<Superseded, StoreError>;

    /// The stream's newest sequence number, 0 when it has none.
    async fn head(&self, stream: StreamId) -> Result<u64, StoreError>;

    /// Succeeds when the engine answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

impl std::fmt::Debug for dyn ChangelogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn ChangelogStore")
    }
}
