use async_trait::async_trait;
use rusqlite::{OptionalExtension, Transaction, params};
use synckit_store::usage::{AppBytes, Day, Standing, Transfer, UsageStore, app_bytes};
use synckit_store::{PendingPlan, PlanRecord, StoreError, StreamId};
use uuid::Uuid;

use crate::{SqliteStore, to_i64, uuid_at};

const ADD_TO_DAY: &str = "INSERT INTO usage_days (app_id, day, user_id, transfer_bytes, stored_delta) \
     VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (app_id, day, user_id) DO UPDATE SET \
         transfer_bytes = transfer_bytes + excluded.transfer_bytes, \
         stored_delta = stored_delta + excluded.stored_delta";

/// Adds `transfer` transferred bytes and a change of `stored_delta` stored bytes to the stream's `day`.
pub(crate) fn add_to_day(
    tx: &Transaction<'_>,
    stream: StreamId,
    day: Day,
    transfer: i64,
    stored_delta: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(ADD_TO_DAY)?.execute(params![
        stream.app_id.as_bytes(),
        day,
        stream.user_id.as_bytes(),
        transfer,
        stored_delta
    ])?;
    Ok(())
}

/// Bytes as the store keeps them, never below zero.
fn bytes(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

#[async_trait]
impl UsageStore for SqliteStore {
    async fn record_transfer(&self, transfers: Vec<Transfer>) -> Result<(), StoreError> {
        if transfers.iter().all(|t| t.bytes == 0) {
            return Ok(());
        }
        self.with_writer(move |conn| {
            let tx = conn.transaction()?;
            for t in transfers.into_iter().filter(|t| t.bytes > 0) {
                add_to_day(&tx, t.stream, t.day, to_i64(t.bytes), 0)?;
            }
            tx.commit()
        })
        .await
    }

    async fn standing(&self, app_id: Uuid, since: Day) -> Result<Standing, StoreError> {
        self.with_reader(move |conn| {
            let tx = conn.transaction()?;
            let app = app_id.as_bytes();
            let stored: i64 = tx.query_row(
                "SELECT coalesce(sum(changelog_bytes + blob_bytes), 0) FROM streams WHERE app_id = ?1",
                [app],
                |r| r.get(0),
            )?;
            let transfer: i64 = tx.query_row(
                "SELECT coalesce(sum(transfer_bytes), 0) FROM usage_days WHERE app_id = ?1 AND day >= ?2",
                params![app, since],
                |r| r.get(0),
            )?;
            let plan = tx
                .query_row(
                    "SELECT storage_bytes, burst, next_storage_bytes, next_burst, next_from_period \
                     FROM app_plans WHERE app_id = ?1",
                    [app],
                    |r| {
                        let next = match (r.get::<_, Option<i64>>(2)?, r.get::<_, Option<u32>>(3)?, r.get(4)?) {
                            (Some(storage), Some(burst), Some(from_period)) => {
                                Some(PendingPlan { storage_bytes: bytes(storage), burst, from_period })
                            }
                            _ => None,
                        };
                        Ok(PlanRecord { storage_bytes: bytes(r.get(0)?), burst: r.get(1)?, next })
                    },
                )
                .optional()?;
            Ok(Standing { plan, stored_bytes: bytes(stored), transfer_bytes: bytes(transfer) })
        })
        .await
    }

    async fn app_usage(&self, app_id: Uuid, since: Day, until: Day) -> Result<AppBytes, StoreError> {
        self.with_reader(move |conn| {
            // One read transaction: one snapshot, so that the stored bytes and the days' changes agree.
            let tx = conn.transaction()?;
            let app = app_id.as_bytes();
            let mut stored = tx.prepare(
                "SELECT user_id, changelog_bytes + blob_bytes FROM streams \
                 WHERE app_id = ?1 AND changelog_bytes + blob_bytes > 0",
            )?;
            let stored: Vec<(Uuid, u64)> = stored
                .query_map([app], |r| Ok((uuid_at(r, 0)?, bytes(r.get(1)?))))?
                .collect::<rusqlite::Result<_>>()?;
            let mut days = tx.prepare(
                "SELECT day, user_id, transfer_bytes, stored_delta FROM usage_days WHERE app_id = ?1 AND day >= ?2",
            )?;
            let days: Vec<(Day, Uuid, u64, i64)> = days
                .query_map(params![app, since], |r| Ok((r.get(0)?, uuid_at(r, 1)?, bytes(r.get(2)?), r.get(3)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(app_bytes(&stored, &days, since, until))
        })
        .await
    }
}
