use std::collections::HashSet;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use synckit_store::usage::today;
use synckit_store::{Appended, ChangelogStore, Entry, NewEntry, Page, StoreError, StreamId, Superseded};
use uuid::Uuid;

use crate::usage::add_to_day;
use crate::{SqliteStore, from_micros, now_micros, to_i64, to_u64, uuid_at};

// Every statement here reads through a primary key or the unique index on change ids, so its cost follows the
// batch, never the stream's length (`plans.rs` checks each with EXPLAIN QUERY PLAN).
pub(crate) const HEAD: &str = "SELECT head FROM streams WHERE app_id = ?1 AND user_id = ?2";
/// One probe of the unique index `changes_change_id (app_id, user_id, change_id)` per pushed id.
pub(crate) const EXISTS: &str = "SELECT 1 FROM changes WHERE app_id = ?1 AND user_id = ?2 AND change_id = ?3";
const SET_HEAD: &str = "INSERT INTO streams (app_id, user_id, head, changelog_bytes) VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (app_id, user_id) DO UPDATE \
         SET head = excluded.head, changelog_bytes = changelog_bytes + excluded.changelog_bytes";
const INSERT_ENTRY: &str = "INSERT INTO changes (app_id, user_id, seq, change_id, device_id, payload, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
/// The size of the payload superseding the entry would drop; nothing when it is not there or superseded already.
pub(crate) const SUPERSEDABLE: &str =
    "SELECT length(payload) FROM changes WHERE app_id = ?1 AND user_id = ?2 AND seq = ?3 AND NOT superseded";
pub(crate) const SUPERSEDE: &str =
    "UPDATE changes SET payload = x'', superseded = 1 WHERE app_id = ?1 AND user_id = ?2 AND seq = ?3";
/// A range of the primary key (app_id, user_id, seq) from the cursor on, cut by the LIMIT.
pub(crate) const READ_PAGE: &str = "SELECT seq, change_id, device_id, payload, created_at, superseded FROM changes \
     WHERE app_id = ?1 AND user_id = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4";

fn head(conn: &rusqlite::Connection, s: StreamId) -> rusqlite::Result<i64> {
    conn.prepare_cached(HEAD)?
        .query_row(params![s.app_id.as_bytes(), s.user_id.as_bytes()], |r| r.get(0))
        .optional()
        .map(|h| h.unwrap_or(0))
}

#[async_trait]
impl ChangelogStore for SqliteStore {
    async fn append(&self, stream: StreamId, device_id: Uuid, entries: Vec<NewEntry>) -> Result<Appended, StoreError> {
        self.with_writer_for(move |conn, caller| {
            // IMMEDIATE takes the write lock up front: the whole check-then-insert runs alone.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Taking the lock may have waited (for another process's write, up to the busy timeout): a push whose
            // request has been answered meanwhile (408) must not commit behind its client's back.
            caller.check()?;
            let head = head(&tx, stream)?;
            let mut seen = HashSet::with_capacity(entries.len());
            let fresh: Vec<&NewEntry> = {
                let mut exists = tx.prepare_cached(EXISTS)?;
                let mut fresh = Vec::with_capacity(entries.len());
                for e in &entries {
                    if seen.insert(e.change_id)
                        && !exists.exists(params![
                            stream.app_id.as_bytes(),
                            stream.user_id.as_bytes(),
                            e.change_id.as_bytes()
                        ])?
                    {
                        fresh.push(e);
                    }
                }
                fresh
            };
            let duplicates = (entries.len() - fresh.len()) as u32;
            if fresh.is_empty() {
                return Ok(Appended { head: to_u64(head), accepted: 0, duplicates, bytes: 0 });
            }

            let new_head = head + fresh.len() as i64;
            let bytes: i64 = fresh.iter().map(|e| e.payload.len() as i64).sum();
            tx.execute(SET_HEAD, params![stream.app_id.as_bytes(), stream.user_id.as_bytes(), new_head, bytes])?;
            // What the push stored is both transferred and stored, counted in its transaction: a retry that stores
            // nothing counts nothing.
            add_to_day(&tx, stream, today(), bytes, bytes)?;
            {
                let mut insert = tx.prepare_cached(INSERT_ENTRY)?;
                let now = now_micros();
                for (seq, e) in (head + 1..).zip(&fresh) {
                    insert.execute(params![
                        stream.app_id.as_bytes(),
                        stream.user_id.as_bytes(),
                        seq,
                        e.change_id.as_bytes(),
                        device_id.as_bytes(),
                        e.payload,
                        now
                    ])?;
                }
            }
            tx.commit()?;
            Ok(Appended { head: to_u64(new_head), accepted: fresh.len() as u32, duplicates, bytes: bytes as u64 })
        })
        .await
    }

    async fn read(&self, stream: StreamId, after: u64, limit: u32, max_bytes: usize) -> Result<Page, StoreError> {
        self.with_reader(move |conn| {
            // One read transaction: the head and the entries come from the same snapshot.
            let tx = conn.transaction()?;
            let head = head(&tx, stream)?;
            let mut read_page = tx.prepare_cached(READ_PAGE)?;
            let mut rows =
                read_page.query(params![stream.app_id.as_bytes(), stream.user_id.as_bytes(), to_i64(after), limit])?;
            let mut entries = Vec::new();
            let mut bytes = 0;
            while let Some(r) = rows.next()? {
                // The payload's size is read before the payload is copied: an entry past the budget is not loaded.
                bytes += r.get_ref(3)?.as_blob()?.len();
                if bytes > max_bytes && !entries.is_empty() {
                    break;
                }
                entries.push(Entry {
                    seq: to_u64(r.get(0)?),
                    change_id: uuid_at(r, 1)?,
                    device_id: uuid_at(r, 2)?,
                    payload: r.get(3)?,
                    created_at: from_micros(r.get(4)?),
                    superseded: r.get(5)?,
                });
            }
            drop(rows);
            drop(read_page);
            Ok(Page { entries, head: to_u64(head) })
        })
        .await
    }

    async fn supersede(&self, stream: StreamId, seqs: Vec<u64>) -> Result<Superseded, StoreError> {
        self.with_writer(move |conn| {
            let (app, user) = (stream.app_id.as_bytes(), stream.user_id.as_bytes());
            let tx = conn.transaction()?;
            let mut done = Superseded { entries: 0, bytes: 0 };
            {
                let (mut size, mut supersede) = (tx.prepare_cached(SUPERSEDABLE)?, tx.prepare_cached(SUPERSEDE)?);
                for seq in seqs {
                    let at = params![app, user, to_i64(seq)];
                    if let Some(freed) = size.query_row(at, |r| r.get::<_, i64>(0)).optional()? {
                        supersede.execute(at)?;
                        done.entries += 1;
                        done.bytes += to_u64(freed);
                    }
                }
            }
            if done.bytes > 0 {
                let freed = -to_i64(done.bytes);
                tx.execute(
                    "UPDATE streams SET changelog_bytes = changelog_bytes + ?3 WHERE app_id = ?1 AND user_id = ?2",
                    params![app, user, freed],
                )?;
                add_to_day(&tx, stream, today(), 0, freed)?;
            }
            tx.commit()?;
            Ok(done)
        })
        .await
    }

    async fn head(&self, stream: StreamId) -> Result<u64, StoreError> {
        self.with_reader(move |conn| head(conn, stream).map(to_u64)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with_reader(|conn| conn.query_row("SELECT 1", [], |_| Ok(()))).await
    }
}
