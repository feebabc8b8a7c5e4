use std::collections::BTreeMap;

use async_trait::async_trait;
use synckit_store::usage::{AppBytes, Day, Standing, Transfer, UsageStore, app_bytes};
use synckit_store::{PendingPlan, PlanRecord, StoreError};
use tracing::instrument;
use uuid::Uuid;

use crate::error::db_error;
use crate::{PgStore, to_i64, to_u64};

/// Adds to one stream's day: ($1 app, $2 day, $3 user, $4 transferred bytes, $5 change of stored bytes).
pub(crate) const ADD_TO_DAY: &str = "INSERT INTO usage_days (app_id, day, user_id, transfer_bytes, stored_delta) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (app_id, day, user_id) DO UPDATE SET \
         transfer_bytes = usage_days.transfer_bytes + excluded.transfer_bytes, \
         stored_delta = usage_days.stored_delta + excluded.stored_delta";

// Both sums read the app's range of a primary key: its streams, and its days since `since`.
const STANDING: &str = "SELECT \
     (SELECT coalesce(sum(changelog_bytes + blob_bytes), 0)::bigint FROM streams WHERE app_id = $1), \
     (SELECT coalesce(sum(transfer_bytes), 0)::bigint FROM usage_days WHERE app_id = $1 AND day >= $2), \
     p.storage_bytes, p.burst, p.next_storage_bytes, p.next_burst, p.next_from_period \
     FROM (SELECT 1) one LEFT JOIN app_plans p ON p.app_id = $1";

fn plan(storage: Option<i64>, burst: Option<i32>, next: (Option<i64>, Option<i32>, Option<i64>)) -> Option<PlanRecord> {
    let next = match next {
        (Some(storage_bytes), Some(burst), Some(from_period)) => {
            Some(PendingPlan { storage_bytes: to_u64(storage_bytes), burst: burst as u32, from_period })
        }
        _ => None,
    };
    Some(PlanRecord { storage_bytes: to_u64(storage?), burst: burst? as u32, next })
}

#[async_trait]
impl UsageStore for PgStore {
    #[instrument(level = "debug", name = "postgres record_transfer", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "record_transfer"))]
    async fn record_transfer(&self, transfers: Vec<Transfer>) -> Result<(), StoreError> {
        // One row per key (a statement may not update a row twice), in key order, so that two instances adding to
        // the same days lock them in the same order and never deadlock.
        let mut rows: BTreeMap<(Uuid, Day, Uuid), u64> = BTreeMap::new();
        for t in transfers.into_iter().filter(|t| t.bytes > 0) {
            *rows.entry((t.stream.app_id, t.day, t.stream.user_id)).or_default() += t.bytes;
        }
        if rows.is_empty() {
            return Ok(());
        }
        let (mut apps, mut days, mut users, mut bytes) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((app, day, user), n) in rows {
            apps.push(app);
            days.push(day);
            users.push(user);
            bytes.push(to_i64(n));
        }
        self.client()
            .await?
            .execute(
                "INSERT INTO usage_days (app_id, day, user_id, transfer_bytes) \
                 SELECT * FROM UNNEST($1::uuid[], $2::integer[], $3::uuid[], $4::bigint[]) \
                 ON CONFLICT (app_id, day, user_id) \
                 DO UPDATE SET transfer_bytes = usage_days.transfer_bytes + excluded.transfer_bytes",
                &[&apps, &days, &users, &bytes],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    #[instrument(level = "debug", name = "postgres standing", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "standing"))]
    async fn standing(&self, app_id: Uuid, since: Day) -> Result<Standing, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(STANDING).await.map_err(db_error)?;
        let row = client.query_one(&statement, &[&app_id, &since]).await.map_err(db_error)?;
        Ok(Standing {
            stored_bytes: to_u64(row.get(0)),
            transfer_bytes: to_u64(row.get(1)),
            plan: plan(row.get(2), row.get(3), (row.get(4), row.get(5), row.get(6))),
        })
    }

    #[instrument(level = "debug", name = "postgres app_usage", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "app_usage"))]
    async fn app_usage(&self, app_id: Uuid, since: Day, until: Day) -> Result<AppBytes, StoreError> {
        let mut client = self.client().await?;
        // One snapshot, so that the stored bytes and the days' changes agree.
        let tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await
            .map_err(db_error)?;
        let stored = tx
            .query(
                "SELECT user_id, changelog_bytes + blob_bytes FROM streams \
                 WHERE app_id = $1 AND changelog_bytes + blob_bytes > 0",
                &[&app_id],
            )
            .await
            .map_err(db_error)?;
        let days = tx
            .query(
                "SELECT day, user_id, transfer_bytes, stored_delta FROM usage_days WHERE app_id = $1 AND day >= $2",
                &[&app_id, &since],
            )
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;

        let stored: Vec<(Uuid, u64)> = stored.iter().map(|r| (r.get(0), to_u64(r.get(1)))).collect();
        let days: Vec<(Day, Uuid, u64, i64)> =
            days.iter().map(|r| (r.get(0), r.get(1), to_u64(r.get(2)), r.get(3))).collect();
        Ok(app_bytes(&stored, &days, since, until))
    }
}
