use async_trait::async_trait;
use synckit_store::usage::today;
use synckit_store::{BlobCatalog, BlobHash, BlobRecord, StoreError, StreamId, SweptUpload, UploadBegun};
use time::OffsetDateTime;
use tokio_postgres::Row;
use tracing::instrument;
use uuid::Uuid;

use crate::error::db_error;
use crate::{PgStore, to_i64, to_u64};

fn record(row: &Row) -> BlobRecord {
    BlobRecord {
        size: to_u64(row.get(0)),
        checksum: row.get::<_, &[u8]>(1).try_into().expect("stored checksums are 32 bytes"),
        confirmed: row.get(2),
        upload_id: row.get(3),
    }
}

#[async_trait]
impl BlobCatalog for PgStore {
    #[instrument(level = "debug", name = "postgres begin_upload", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "begin_upload"))]
    async fn begin_upload(
        &self,
        stream: StreamId,
        hash: BlobHash,
        size: u64,
        checksum: [u8; 32],
    ) -> Result<UploadBegun, StoreError> {
        let client = self.client().await?;
        let (app, user, hash) = (&stream.app_id, &stream.user_id, &hash.as_slice());
        let begun = client
            .query_opt(
                "INSERT INTO blobs (app_id, user_id, hash, size, checksum, upload_id) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (app_id, user_id, hash) DO UPDATE \
                     SET size = excluded.size, checksum = excluded.checksum, created_at = now() \
                     WHERE blobs.confirmed_at IS NULL \
                 RETURNING upload_id",
                &[app, user, hash, &to_i64(size), &checksum.as_slice(), &Uuid::new_v4()],
            )
            .await
            .map_err(db_error)?;
        if let Some(begun) = begun {
            return Ok(UploadBegun::Pending { upload_id: begun.get(0) });
        }
        // Only a confirmed blob keeps the insert from happening, and confirmed blobs are never removed.
        let row = client
            .query_one(
                "SELECT size, checksum, true, upload_id FROM blobs WHERE app_id = $1 AND user_id = $2 AND hash = $3",
                &[app, user, hash],
            )
            .await
            .map_err(db_error)?;
        Ok(UploadBegun::AlreadyConfirmed(record(&row)))
    }

    #[instrument(level = "debug", name = "postgres delete_blob", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "delete_blob"))]
    async fn delete(&self, stream: StreamId, hash: BlobHash) -> Result<Option<BlobRecord>, StoreError> {
        // A confirmed blob's bytes stop counting as stored in the statement that removes it.
        let row = self
            .client()
            .await?
            .query_opt(
                "WITH gone AS ( \
                     DELETE FROM blobs WHERE app_id = $1 AND user_id = $2 AND hash = $3 \
                     RETURNING size, checksum, confirmed_at IS NOT NULL AS confirmed, upload_id), \
                 stream AS ( \
                     UPDATE streams SET blob_bytes = blob_bytes - gone.size FROM gone \
                     WHERE gone.confirmed AND app_id = $1 AND user_id = $2), \
                 day AS ( \
                     INSERT INTO usage_days (app_id, day, user_id, stored_delta) \
                     SELECT $1::uuid, $4::integer, $2::uuid, -size FROM gone WHERE confirmed \
                     ON CONFLICT (app_id, day, user_id) \
                     DO UPDATE SET stored_delta = usage_days.stored_delta + excluded.stored_delta) \
                 SELECT size, checksum, confirmed, upload_id FROM gone",
                &[&stream.app_id, &stream.user_id, &hash.as_slice(), &today()],
            )
            .await
            .map_err(db_error)?;
        Ok(row.as_ref().map(record))
    }

    #[instrument(level = "debug", name = "postgres blob", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "blob"))]
    async fn blob(&self, stream: StreamId, hash: BlobHash) -> Result<Option<BlobRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT size, checksum, confirmed_at IS NOT NULL, upload_id FROM blobs \
                 WHERE app_id = $1 AND user_id = $2 AND hash = $3",
                &[&stream.app_id, &stream.user_id, &hash.as_slice()],
            )
            .await
            .map_err(db_error)?;
        Ok(row.as_ref().map(record))
    }

    #[instrument(level = "debug", name = "postgres confirm", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "confirm"))]
    async fn confirm(
        &self,
        stream: StreamId,
        hash: BlobHash,
        upload_id: Option<Uuid>,
        size: u64,
        checksum: [u8; 32],
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let (app, user, hash) = (&stream.app_id, &stream.user_id, &hash.as_slice());
        // The first confirmation alone adds the blob to what the stream stores and transferred, in the statement
        // that confirms it: of two confirmations at once, the second waits for the first's row and then finds the
        // blob confirmed.
        let first = client
            .query_one(
                "WITH confirmed AS ( \
                     UPDATE blobs SET confirmed_at = now() \
                     WHERE app_id = $1 AND user_id = $2 AND hash = $3 AND upload_id IS NOT DISTINCT FROM $4 \
                         AND size = $5 AND checksum = $6 AND confirmed_at IS NULL \
                     RETURNING size), \
                 stream AS ( \
                     INSERT INTO streams (app_id, user_id, blob_bytes) SELECT $1::uuid, $2::uuid, size FROM confirmed \
                     ON CONFLICT (app_id, user_id) DO UPDATE SET blob_bytes = streams.blob_bytes + excluded.blob_bytes), \
                 day AS ( \
                     INSERT INTO usage_days (app_id, day, user_id, transfer_bytes, stored_delta) \
                     SELECT $1::uuid, $7::integer, $2::uuid, size, size FROM confirmed \
                     ON CONFLICT (app_id, day, user_id) DO UPDATE SET \
                         transfer_bytes = usage_days.transfer_bytes + excluded.transfer_bytes, \
                         stored_delta = usage_days.stored_delta + excluded.stored_delta) \
                 SELECT count(*) FROM confirmed",
                &[app, user, hash, &upload_id, &to_i64(size), &checksum.as_slice(), &today()],
            )
            .await
            .map_err(db_error)?;
        if first.get::<_, i64>(0) > 0 {
            return Ok(true);
        }
        // Confirming again is fine, and changes nothing.
        let again = client
            .query_opt(
                "SELECT 1 FROM blobs WHERE app_id = $1 AND user_id = $2 AND hash = $3 \
                     AND upload_id IS NOT DISTINCT FROM $4 AND size = $5 AND checksum = $6 AND confirmed_at IS NOT NULL",
                &[app, user, hash, &upload_id, &to_i64(size), &checksum.as_slice()],
            )
            .await
            .map_err(db_error)?;
        Ok(again.is_some())
    }

    #[instrument(level = "debug", name = "postgres sweep_pending", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "sweep_pending"))]
    async fn sweep_pending(&self, before: OffsetDateTime, limit: u32) -> Result<Vec<SweptUpload>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "DELETE FROM blobs WHERE (app_id, user_id, hash) IN ( \
                     SELECT app_id, user_id, hash FROM blobs \
                     WHERE confirmed_at IS NULL AND created_at < $1 \
                     ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 RETURNING app_id, user_id, hash, upload_id",
                &[&before, &i64::from(limit)],
            )
            .await
            .map_err(db_error)?;
        Ok(rows
            .iter()
            .map(|r| SweptUpload {
                stream: StreamId { app_id: r.get(0), user_id: r.get(1) },
                hash: r.get::<_, &[u8]>(2).try_into().expect("stored hashes are 32 bytes"),
                upload_id: r.get(3),
            })
            .collect())
    }
}
