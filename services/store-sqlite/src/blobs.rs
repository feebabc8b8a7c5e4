use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};
use synckit_store::usage::today;
use synckit_store::{BlobCatalog, BlobHash, BlobRecord, StoreError, StreamId, SweptUpload, UploadBegun};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::usage::add_to_day;
use crate::{SqliteStore, now_micros, to_i64, to_u64, uuid_at};

// Each reads one blob by its primary key, or the pending ones through the partial index `blobs_pending`.
const BEGIN_UPLOAD: &str = "INSERT INTO blobs (app_id, user_id, hash, size, checksum, created_at, upload_id) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
     ON CONFLICT (app_id, user_id, hash) DO UPDATE \
         SET size = excluded.size, checksum = excluded.checksum, created_at = excluded.created_at \
         WHERE blobs.confirmed_at IS NULL \
     RETURNING upload_id";
pub(crate) const CONFIRMED: &str =
    "SELECT size, checksum, true, upload_id FROM blobs WHERE app_id = ?1 AND user_id = ?2 AND hash = ?3";
pub(crate) const BLOB: &str = "SELECT size, checksum, confirmed_at IS NOT NULL, upload_id FROM blobs \
     WHERE app_id = ?1 AND user_id = ?2 AND hash = ?3";
/// The first confirmation: it answers the size, and a confirmation again nothing.
pub(crate) const CONFIRM: &str = "UPDATE blobs SET confirmed_at = ?7 \
     WHERE app_id = ?1 AND user_id = ?2 AND hash = ?3 AND upload_id IS ?4 AND size = ?5 AND checksum = ?6 \
         AND confirmed_at IS NULL \
     RETURNING size";
const CONFIRMED_AGAIN: &str = "SELECT 1 FROM blobs \
     WHERE app_id = ?1 AND user_id = ?2 AND hash = ?3 AND upload_id IS ?4 AND size = ?5 AND checksum = ?6 \
         AND confirmed_at IS NOT NULL";
const ADD_BLOB_BYTES: &str = "INSERT INTO streams (app_id, user_id, blob_bytes) VALUES (?1, ?2, ?3) \
     ON CONFLICT (app_id, user_id) DO UPDATE SET blob_bytes = blob_bytes + excluded.blob_bytes";
pub(crate) const SWEEP: &str = "DELETE FROM blobs WHERE rowid IN ( \
         SELECT rowid FROM blobs WHERE confirmed_at IS NULL AND created_at < ?1 \
         ORDER BY created_at LIMIT ?2) \
     RETURNING app_id, user_id, hash, upload_id";

fn upload_id_at(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Uuid>> {
    Ok(r.get::<_, Option<[u8; 16]>>(idx)?.map(Uuid::from_bytes))
}

fn record(r: &Row<'_>) -> rusqlite::Result<BlobRecord> {
    Ok(BlobRecord {
        size: to_u64(r.get(0)?),
        checksum: r.get(1)?,
        confirmed: r.get(2)?,
        upload_id: upload_id_at(r, 3)?,
    })
}

#[async_trait]
impl BlobCatalog for SqliteStore {
    async fn begin_upload(
        &self,
        stream: StreamId,
        hash: BlobHash,
        size: u64,
        checksum: [u8; 32],
    ) -> Result<UploadBegun, StoreError> {
        self.with_writer(move |conn| {
            let (app, user) = (stream.app_id.as_bytes(), stream.user_id.as_bytes());
            let fresh = Uuid::new_v4();
            let begun = conn
                .query_row(
                    BEGIN_UPLOAD,
                    params![app, user, hash, to_i64(size), checksum, now_micros(), fresh.as_bytes()],
                    |r| upload_id_at(r, 0),
                )
                .optional()?;
            if let Some(upload_id) = begun {
                return Ok(UploadBegun::Pending { upload_id });
            }
            let confirmed = conn.query_row(CONFIRMED, params![app, user, hash], record)?;
            Ok(UploadBegun::AlreadyConfirmed(confirmed))
        })
        .await
    }

    async fn blob(&self, stream: StreamId, hash: BlobHash) -> Result<Option<BlobRecord>, StoreError> {
        self.with_reader(move |conn| {
            conn.query_row(BLOB, params![stream.app_id.as_bytes(), stream.user_id.as_bytes(), hash], record).optional()
        })
        .await
    }

    async fn delete(&self, stream: StreamId, hash: BlobHash) -> Result<Option<BlobRecord>, StoreError> {
        self.with_writer(move |conn| {
            let tx = conn.transaction()?;
            let gone = tx
                .query_row(
                    "DELETE FROM blobs WHERE app_id = ?1 AND user_id = ?2 AND hash = ?3 \
                     RETURNING size, checksum, confirmed_at IS NOT NULL, upload_id",
                    params![stream.app_id.as_bytes(), stream.user_id.as_bytes(), hash],
                    record,
                )
                .optional()?;
            // A confirmed blob's bytes stop counting as stored in the transaction that removes it.
            if let Some(gone) = gone.filter(|g| g.confirmed) {
                tx.execute(
                    ADD_BLOB_BYTES,
                    params![stream.app_id.as_bytes(), stream.user_id.as_bytes(), -to_i64(gone.size)],
                )?;
                add_to_day(&tx, stream, today(), 0, -to_i64(gone.size))?;
            }
            tx.commit()?;
            Ok(gone)
        })
        .await
    }

    async fn confirm(
        &self,
        stream: StreamId,
        hash: BlobHash,
        upload_id: Option<Uuid>,
        size: u64,
        checksum: [u8; 32],
    ) -> Result<bool, StoreError> {
        self.with_writer(move |conn| {
            let (app, user) = (stream.app_id.as_bytes(), stream.user_id.as_bytes());
            let upload_id = upload_id.as_ref().map(Uuid::as_bytes);
            let tx = conn.transaction()?;
            let first: Option<i64> = tx
                .query_row(CONFIRM, params![app, user, hash, upload_id, to_i64(size), checksum, now_micros()], |r| {
                    r.get(0)
                })
                .optional()?;
            // The first confirmation alone adds the blob to what the stream stores and transferred.
            let confirmed = match first {
                Some(size) => {
                    tx.execute(ADD_BLOB_BYTES, params![app, user, size])?;
                    add_to_day(&tx, stream, today(), size, size)?;
                    true
                }
                None => tx.prepare_cached(CONFIRMED_AGAIN)?.exists(params![
                    app,
                    user,
                    hash,
                    upload_id,
                    to_i64(size),
                    checksum
                ])?,
            };
            tx.commit()?;
            Ok(confirmed)
        })
        .await
    }

    async fn sweep_pending(&self, before: OffsetDateTime, limit: u32) -> Result<Vec<SweptUpload>, StoreError> {
        let before = (before.unix_timestamp_nanos() / 1000) as i64;
        self.with_writer(move |conn| {
            let mut statement = conn.prepare_cached(SWEEP)?;
            let swept = statement.query_map(params![before, limit], |r| {
                Ok(SweptUpload {
                    stream: StreamId { app_id: uuid_at(r, 0)?, user_id: uuid_at(r, 1)? },
                    hash: r.get(2)?,
                    upload_id: upload_id_at(r, 3)?,
                })
            })?;
            swept.collect()
        })
        .await
    }
}
