use std::collections::HashSet;

use async_trait::async_trait;
use synckit_store::usage::today;
use synckit_store::{Appended, ChangelogStore, Entry, NewEntry, Page, StoreError, StreamId, Superseded};
use tracing::instrument;
use uuid::Uuid;

use crate::error::db_error;
use crate::usage::ADD_TO_DAY;
use crate::{PgStore, to_i64, to_u64};

// The push transaction, as docs/architecture.md lays it out. Locking the head row first serialises the writers of
// one stream until commit; the duplicate check comes after the lock so that a concurrent retry of the same push
// cannot slip between check and insert.
pub(crate) const LOCK_HEAD: &str = "SELECT head FROM streams WHERE app_id = $1 AND user_id = $2 FOR UPDATE";
const CREATE_HEAD: &str = "INSERT INTO streams (app_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
// The duplicate check probes the unique index `changes_change_id (app_id, user_id, change_id)` once per pushed id,
// so it reads at most as many index entries as the push holds, however long the stream. The shape is what makes
// that hold for every plan: the statement is prepared once per connection and Postgres soon switches it to a
// generic plan, costed on whatever the table looked like then. Planned on an empty table,
// `change_id = ANY($3)` becomes a range scan of the whole stream by (app, user) with the ids as a row filter, and
// a plain join against `unnest($3)` becomes a hash join over that same scan: both read every entry of the stream
// on every push. A LATERAL subquery with a LIMIT is never flattened into a join, and it depends on the outer id,
// so it can only run as a nested loop that looks each id up (the LIMIT changes nothing else: the index is unique).
pub(crate) const EXISTING_IDS: &str = "SELECT c.change_id FROM unnest($3::uuid[]) AS t(change_id) \
     CROSS JOIN LATERAL ( \
         SELECT change_id FROM changes \
         WHERE app_id = $1 AND user_id = $2 AND change_id = t.change_id LIMIT 1 \
     ) c";
pub(crate) const ADVANCE_HEAD: &str = "UPDATE streams SET head = head + $3, changelog_bytes = changelog_bytes + $4 \
     WHERE app_id = $1 AND user_id = $2 RETURNING head";
const INSERT_ENTRIES: &str = "INSERT INTO changes (app_id, user_id, seq, change_id, device_id, payload) \
     SELECT $1, $2, seq, change_id, $3, payload \
     FROM UNNEST($4::bigint[], $5::uuid[], $6::bytea[]) AS t(seq, change_id, payload)";

// One statement, so the head and the entries come from the same snapshot. The page is a range of the primary key
// (app_id, user_id, seq) from the cursor on, cut by the LIMIT, so it reads one page whatever the stream's length.
// The running total of payload sizes then cuts it at the byte budget ($5), keeping the first entry (the cursor's
// successor: sequence numbers are contiguous) whatever its size. The total is taken over the page after its LIMIT,
// so that the window never reads a row past it. `octet_length` reads a stored value's size from
// its header, so the entries past the budget are counted without being loaded, and they are never sent.
pub(crate) const READ_PAGE: &str = "SELECT s.head, c.seq, c.change_id, c.device_id, c.payload, c.created_at, \
         c.superseded \
     FROM streams s LEFT JOIN LATERAL ( \
         SELECT seq, change_id, device_id, payload, created_at, superseded FROM ( \
             SELECT *, sum(octet_length(payload)) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING) AS total FROM ( \
                 SELECT seq, change_id, device_id, payload, created_at, superseded FROM changes \
                 WHERE app_id = s.app_id AND user_id = s.user_id AND seq > $3 ORDER BY seq LIMIT $4 \
             ) page \
         ) totals WHERE total <= $5 OR seq = $3 + 1 \
     ) c ON true \
     WHERE s.app_id = $1 AND s.user_id = $2 ORDER BY c.seq";
pub(crate) const HEAD: &str = "SELECT head FROM streams WHERE app_id = $1 AND user_id = $2";
// Probes the primary key once per sequence number, reading each dropped payload's size before it goes.
const SUPERSEDE: &str = "WITH target AS ( \
         SELECT seq, octet_length(payload) AS size FROM changes \
         WHERE app_id = $1 AND user_id = $2 AND seq = ANY($3) AND NOT superseded FOR UPDATE), \
     dropped AS ( \
         UPDATE changes c SET payload = ''::bytea, superseded = true FROM target \
         WHERE c.app_id = $1 AND c.user_id = $2 AND c.seq = target.seq RETURNING target.size) \
     SELECT count(*), coalesce(sum(size), 0)::bigint FROM dropped";

#[async_trait]
impl ChangelogStore for PgStore {
    #[instrument(level = "debug", name = "postgres append", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "append"))]
    async fn append(&self, stream: StreamId, device_id: Uuid, entries: Vec<NewEntry>) -> Result<Appended, StoreError> {
        let (app, user) = (&stream.app_id, &stream.user_id);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        // A push holds a pooled connection while it waits for the head-row lock: bound the wait, and each statement,
        // so that a stream written from elsewhere (another instance) or a stuck statement cannot keep connections
        // from everyone else. Either limit ends the push as unavailable (503, Retry-After), and nothing is stored.
        tx.batch_execute(&self.push_limits).await.map_err(db_error)?;

        let lock = tx.prepare_cached(LOCK_HEAD).await.map_err(db_error)?;
        let head = match tx.query_opt(&lock, &[app, user]).await.map_err(db_error)? {
            Some(row) => row.get::<_, i64>(0),
            None => {
                // First push to this stream. Two first pushes may race here; ON CONFLICT lets both through to the
                // lock, which then orders them.
                tx.execute(CREATE_HEAD, &[app, user]).await.map_err(db_error)?;
                tx.query_one(&lock, &[app, user]).await.map_err(db_error)?.get::<_, i64>(0)
            }
        };

        let ids: Vec<Uuid> = entries.iter().map(|e| e.change_id).collect();
        let existing = tx.prepare_cached(EXISTING_IDS).await.map_err(db_error)?;
        let mut seen: HashSet<Uuid> =
            tx.query(&existing, &[app, user, &ids]).await.map_err(db_error)?.iter().map(|r| r.get(0)).collect();
        let fresh: Vec<&NewEntry> = entries.iter().filter(|e| seen.insert(e.change_id)).collect();
        let duplicates = (entries.len() - fresh.len()) as u32;

        if fresh.is_empty() {
            // Nothing to write: let the transaction roll back and report the head as it is.
            return Ok(Appended { head: to_u64(head), accepted: 0, duplicates, bytes: 0 });
        }

        let n = fresh.len() as i64;
        let bytes: i64 = fresh.iter().map(|e| e.payload.len() as i64).sum();
        let advance = tx.prepare_cached(ADVANCE_HEAD).await.map_err(db_error)?;
        let new_head: i64 = tx.query_one(&advance, &[app, user, &n, &bytes]).await.map_err(db_error)?.get(0);
        let seqs: Vec<i64> = (new_head - n + 1..=new_head).collect();
        let ids: Vec<Uuid> = fresh.iter().map(|e| e.change_id).collect();
        let payloads: Vec<&[u8]> = fresh.iter().map(|e| e.payload.as_slice()).collect();
        let insert = tx.prepare_cached(INSERT_ENTRIES).await.map_err(db_error)?;
        tx.execute(&insert, &[app, user, &device_id, &seqs, &ids, &payloads]).await.map_err(db_error)?;
        // What the push stored is both transferred and stored: counted in the transaction that stores it, so a
        // retry that stores nothing counts nothing.
        let day = tx.prepare_cached(ADD_TO_DAY).await.map_err(db_error)?;
        tx.execute(&day, &[app, &today(), user, &bytes, &bytes]).await.map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;

        Ok(Appended { head: to_u64(new_head), accepted: fresh.len() as u32, duplicates, bytes: bytes as u64 })
    }

    #[instrument(level = "debug", name = "postgres read", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "read"))]
    async fn read(&self, stream: StreamId, after: u64, limit: u32, max_bytes: usize) -> Result<Page, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(READ_PAGE).await.map_err(db_error)?;
        let max_bytes = i64::try_from(max_bytes).unwrap_or(i64::MAX);
        let rows = client
            .query(&stmt, &[&stream.app_id, &stream.user_id, &to_i64(after), &i64::from(limit), &max_bytes])
            .await
            .map_err(db_error)?;
        let head = rows.first().map_or(0, |r| to_u64(r.get(0)));
        let entries = rows
            .iter()
            .filter_map(|row| {
                let seq: Option<i64> = row.get(1);
                Some(Entry {
                    seq: to_u64(seq?),
                    change_id: row.get(2),
                    device_id: row.get(3),
                    payload: row.get(4),
                    created_at: row.get(5),
                    superseded: row.get(6),
                })
            })
            .collect();
        Ok(Page { entries, head })
    }

    #[instrument(level = "debug", name = "postgres supersede", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "supersede"))]
    async fn supersede(&self, stream: StreamId, seqs: Vec<u64>) -> Result<Superseded, StoreError> {
        let (app, user) = (&stream.app_id, &stream.user_id);
        let seqs: Vec<i64> = seqs.into_iter().map(to_i64).collect();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        tx.batch_execute(&self.push_limits).await.map_err(db_error)?;
        // The head row first, as a push takes it: the two never wait on each other in opposite orders.
        let lock = tx.prepare_cached(LOCK_HEAD).await.map_err(db_error)?;
        if tx.query_opt(&lock, &[app, user]).await.map_err(db_error)?.is_none() {
            return Ok(Superseded { entries: 0, bytes: 0 });
        }
        let row = tx.query_one(SUPERSEDE, &[app, user, &seqs]).await.map_err(db_error)?;
        let done = Superseded { entries: row.get::<_, i64>(0) as u32, bytes: to_u64(row.get(1)) };
        if done.bytes > 0 {
            let freed = -to_i64(done.bytes);
            tx.execute(
                "UPDATE streams SET changelog_bytes = changelog_bytes + $3 WHERE app_id = $1 AND user_id = $2",
                &[app, user, &freed],
            )
            .await
            .map_err(db_error)?;
            tx.execute(ADD_TO_DAY, &[app, &today(), user, &0i64, &freed]).await.map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(done)
    }

    #[instrument(level = "debug", name = "postgres head", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "head"))]
    async fn head(&self, stream: StreamId) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(HEAD).await.map_err(db_error)?;
        let row = client.query_opt(&stmt, &[&stream.app_id, &stream.user_id]).await.map_err(db_error)?;
        Ok(row.map_or(0, |r| to_u64(r.get(0))))
    }

    /// On the token checks' pool: readiness asks whether the database answers, and a main pool busy with pushes and
    /// pulls is load, not an outage.
    #[instrument(level = "debug", name = "postgres ping", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "ping"))]
    async fn ping(&self) -> Result<(), StoreError> {
        self.token_client().await?.simple_query("SELECT 1").await.map_err(db_error)?;
        Ok(())
    }
}
