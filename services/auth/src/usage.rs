//! An app's usage in this billing period against its plan's limits, for its owner (`GET /api/apps/{id}/usage`, the
//! console's charts) and the operator (`synckit-server admin usage`). The figures are the store's: what an instance
//! counted in the last second (pulls, downloads) may not be in them yet.

use axum::extract::{Path, State};
use synckit_http::{ApiError, AuthenticatedAccount, Json};
use synckit_protocol::plans::Period;
use synckit_protocol::usage::{AppUsage, DayUsage, UserUsage};
use synckit_protocol::{ErrorBody, paths};
use synckit_store::usage::{date_of, day_of, today};
use synckit_store::{AccountStore, UsageStore};
use tracing::instrument;
use uuid::Uuid;

use crate::AuthState;
use crate::apps::{app_not_found, owned};

/// The app's usage this period; `None` when there is no such app.
pub async fn usage_of(
    accounts: &dyn AccountStore,
    usage: &dyn UsageStore,
    app_id: Uuid,
) -> Result<Option<AppUsage>, ApiError> {
    if accounts.app(app_id).await?.is_none() {
        return Ok(None);
    }
    let period = Period::current();
    let report = usage.app_usage(app_id, day_of(period.first_day()), today()).await?;
    let plan = accounts.app_plan(app_id).await?.map(|plan| plan.in_force(period.index()));
    let mut users: Vec<UserUsage> = report
        .users
        .iter()
        .map(|u| UserUsage { user_id: u.user_id, stored_bytes: u.stored_bytes, transfer_bytes: u.transfer_bytes })
        .collect();
    users.sort_by(|a, b| {
        (b.stored_bytes + b.transfer_bytes, a.user_id).cmp(&(a.stored_bytes + a.transfer_bytes, b.user_id))
    });
    Ok(Some(AppUsage {
        period: period.to_string(),
        stored_bytes: report.stored_bytes,
        transfer_bytes: report.transfer_bytes,
        storage_limit_bytes: plan.map(|(storage, _)| storage),
        transfer_limit_bytes: plan.map(|(storage, burst)| storage.saturating_mul(u64::from(burst))),
        users,
        days: report
            .days
            .iter()
            .map(|d| DayUsage {
                day: date_of(d.day).to_string(),
                stored_bytes: d.stored_bytes,
                transfer_bytes: d.transfer_bytes,
            })
            .collect(),
    }))
}

/// One of the caller's apps' usage in this billing period: bytes stored now and transferred since the period began,
/// against the plan's limits, per user and per day.
#[utoipa::path(get, path = paths::APP_USAGE, tag = "apps", security(("console" = [])),
    params(("id" = Uuid, Path, description = "the app id")),
    responses(
        (status = 200, body = AppUsage),
        (status = 400, description = "- `invalid_request`: the id is not a UUID", body = ErrorBody),
        (status = 404, description = "- `app_not_found`: the caller owns no app with this id", body = ErrorBody),
    ))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %owner.user_id, app.id = %id))]
pub async fn get(
    State(state): State<AuthState>,
    owner: AuthenticatedAccount,
    Path(id): Path<String>,
) -> Result<Json<AppUsage>, ApiError> {
    let app = owned(&state, &owner, &id).await?;
    Ok(Json(usage_of(&*state.accounts, &*state.usage, app.id).await?.ok_or_else(app_not_found)?))
}
