//! Sweeping uploads that were begun and never confirmed: their records, then their objects.
//!
//! Every instance of the blob service sweeps; the catalogue hands each expired upload to one sweeper only. A
//! record goes first, so a confirm racing the sweep finds no record and answers `blob_not_found` rather than
//! confirming an object about to disappear. The object goes next, by the record's upload id: if the same blob is
//! uploaded and confirmed again meanwhile, its new record has another upload id and so another object, which the
//! sweep cannot reach (see [`ObjectKey`]). An object whose removal fails is logged and left behind: no record points
//! at it, so it can never be downloaded.

use std::sync::Arc;
use std::time::Duration;

use synckit_store::{BlobCatalog, StoreError};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::objects::{ObjectKey, ObjectStore};

/// Records removed per catalogue call.
const BATCH: u32 = 100;

/// Removes every upload begun before `before` and still unconfirmed; returns how many.
pub async fn sweep(
    catalog: &dyn BlobCatalog,
    objects: &dyn ObjectStore,
    before: OffsetDateTime,
) -> Result<usize, StoreError> {
    let mut swept = 0;
    loop {
        let batch = catalog.sweep_pending(before, BATCH).await?;
        for upload in &batch {
            let key = ObjectKey { stream: upload.stream, hash: upload.hash, upload_id: upload.upload_id };
            if let Err(e) = objects.delete(&key).await {
                tracing::warn!(%key, error = %synckit_http::error::ErrorChain(&e), "unconfirmed upload not removed");
            }
        }
        swept += batch.len();
        if batch.len() < BATCH as usize {
            return Ok(swept);
        }
    }
}

/// Sweeps uploads older than `ttl` every `interval` until `shutdown` turns true.
pub fn spawn_sweeper(
    catalog: Arc<dyn BlobCatalog>,
    objects: Arc<dyn ObjectStore>,
    ttl: Duration,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            let before = OffsetDateTime::now_utc() - ttl;
            match sweep(&*catalog, &*objects, before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(swept = n, "removed unconfirmed uploads"),
                Err(e) => tracing::warn!(error = %synckit_http::error::ErrorChain(&e), "sweeping uploads failed"),
            }
        }
    });
}
