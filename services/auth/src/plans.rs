//! Plans: what an app may store and transfer, and its monthly price, known before the billing period starts
//! (`synckit_protocol::plans` prices). The owner quotes and changes an app's plan with a console token; the
//! operator's commands (`synckit-server admin quote`, `set-plan`) call the same operations.
//!
//! A change takes effect at once when it lowers no limit (the app's first plan, more storage or more transfer), billed
//! from the next period; a change that lowers a limit waits for the next period, so that nothing already stored or
//! used this period is held to limits it was not sold with. The operator's plans apply at once. The store keeps the
//! plan in force and the change waiting; the waiting one is in force from its period on, whoever reads it first.

use axum::extract::{Path, RawQuery, State};
use serde::Deserialize;
use synckit_http::{ApiError, AuthenticatedAccount, Json};
use synckit_protocol::plans::{AppPlan, Period, Plan, PlanTerms, Quote, SIMPLE_BURST, ScheduledPlan, SetPlanRequest};
use synckit_protocol::{ErrorBody, paths};
use synckit_store::{AccountStore, PendingPlan, PlanRecord};
use tracing::instrument;
use uuid::Uuid;

use crate::AuthState;
use crate::apps::{app_not_found, owned};

/// How a plan change is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// By the app's owner: at once unless it lowers a limit, then from the next period.
    ByOwner,
    /// By the operator: at once, whatever it does.
    AtOnce,
}

/// The plan in force in `period` and the change still waiting, from the stored record.
fn in_force(record: PlanRecord, period: Period) -> (Plan, Option<(Plan, Period)>) {
    let plan = |storage_bytes, burst| Plan::new(storage_bytes, burst).expect("stored plans were valid plans");
    let current = plan(record.storage_bytes, record.burst);
    match record.next {
        Some(next) if next.from_period <= period.index() => (plan(next.storage_bytes, next.burst), None),
        Some(next) => (current, Some((plan(next.storage_bytes, next.burst), Period::from_index(next.from_period)))),
        None => (current, None),
    }
}

fn view(record: Option<PlanRecord>, period: Period) -> AppPlan {
    let (current, next) = match record.map(|r| in_force(r, period)) {
        Some((current, next)) => (Some(current), next),
        None => (None, None),
    };
    AppPlan {
        period: period.to_string(),
        current: current.as_ref().map(PlanTerms::of),
        next: next.map(|(plan, from)| ScheduledPlan { terms: PlanTerms::of(&plan), from: from.to_string() }),
    }
}

/// The app's plan now; `None` when there is no such app.
pub async fn plan_of(accounts: &dyn AccountStore, app_id: Uuid) -> Result<Option<AppPlan>, ApiError> {
    if accounts.app(app_id).await?.is_none() {
        return Ok(None);
    }
    Ok(Some(view(accounts.app_plan(app_id).await?, Period::current())))
}

/// Moves the app to `plan`, as `how` says; `None` when there is no such app.
pub async fn change_plan(
    accounts: &dyn AccountStore,
    app_id: Uuid,
    plan: Plan,
    how: Change,
) -> Result<Option<AppPlan>, ApiError> {
    let period = Period::current();
    let current = accounts.app_plan(app_id).await?.map(|record| in_force(record, period).0);
    let record = match current {
        Some(current) if how == Change::ByOwner && !plan.lowers_nothing_of(&current) => PlanRecord {
            storage_bytes: current.storage_bytes(),
            burst: current.burst(),
            next: Some(PendingPlan {
                storage_bytes: plan.storage_bytes(),
                burst: plan.burst(),
                from_period: period.next().index(),
            }),
        },
        // The first plan, one that lowers nothing, or the operator's: at once, and a change waiting is dropped.
        _ => PlanRecord { storage_bytes: plan.storage_bytes(), burst: plan.burst(), next: None },
    };
    if !accounts.set_app_plan(app_id, record).await? {
        return Ok(None);
    }
    Ok(Some(view(Some(record), period)))
}

/// The query of `GET /api/apps/quote`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuoteQuery {
    /// GB stored (a GB is 10^9 bytes): more than 0, at most 100,000, at most 9 decimals.
    #[param(value_type = String, pattern = r"^[0-9]{1,6}(\.[0-9]{1,9})?$", example = "50")]
    storage_gb: String,
    /// The transfer budget of a billing period as a multiple of storage: 1 to 20; 5 (Simple mode) when left out.
    #[param(minimum = 1, maximum = 20)]
    burst: Option<u32>,
}

/// The monthly price of a plan: $0.15 per GB stored plus $0.03 per GB of transfer budget (burst × storage).
#[utoipa::path(get, path = paths::APPS_QUOTE, tag = "apps", security(("console" = [])), params(QuoteQuery),
    responses(
        (status = 200, body = Quote),
        (status = 400, description = "- `invalid_request`: storage_gb is not a decimal number of GB above 0 and \
            at most 100000 with at most 9 decimals, or burst is not 1 to 20", body = ErrorBody),
    ))]
#[instrument(skip_all, err(Display, level = "debug"))]
pub async fn quote(_owner: AuthenticatedAccount, RawQuery(query): RawQuery) -> Result<Json<Quote>, ApiError> {
    // Read here rather than by axum's extractor, whose refusal would not be the API's error body.
    let query: QuoteQuery = serde_urlencoded::from_str(query.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::invalid(format!("the query must give storage_gb, and may give burst: {e}")))?;
    let plan = Plan::from_gb(&query.storage_gb, query.burst).map_err(|e| ApiError::invalid(e.0))?;
    Ok(Json(Quote::of(&plan)))
}

/// One of the caller's apps' plan: the one in force this billing period, and a change waiting for the next.
#[utoipa::path(get, path = paths::APP_PLAN, tag = "apps", security(("console" = [])),
    params(("id" = Uuid, Path, description = "the app id")),
    responses(
        (status = 200, body = AppPlan),
        (status = 400, description = "- `invalid_request`: the id is not a UUID", body = ErrorBody),
        (status = 404, description = "- `app_not_found`: the caller owns no app with this id", body = ErrorBody),
    ))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %owner.user_id, app.id = %id))]
pub async fn get(
    State(state): State<AuthState>,
    owner: AuthenticatedAccount,
    Path(id): Path<String>,
) -> Result<Json<AppPlan>, ApiError> {
    let app = owned(&state, &owner, &id).await?;
    Ok(Json(plan_of(&*state.accounts, app.id).await?.ok_or_else(app_not_found)?))
}

/// Changes one of the caller's apps' plan: at once when it lowers no limit (billed from the next period), else from
/// the next billing period.
#[utoipa::path(put, path = paths::APP_PLAN, tag = "apps", request_body = SetPlanRequest, security(("console" = [])),
    params(("id" = Uuid, Path, description = "the app id")),
    responses(
        (status = 200, description = "the plan now, and the change waiting if it lowers a limit", body = AppPlan),
        (status = 400, description = "- `invalid_request`: the id is not a UUID, storage_gb is not above 0 and at \
            most 100000 with at most 9 decimals, or burst is not 1 to 20", body = ErrorBody),
        (status = 404, description = "- `app_not_found`: the caller owns no app with this id", body = ErrorBody),
    ))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %owner.user_id, app.id = %id))]
pub async fn set(
    State(state): State<AuthState>,
    owner: AuthenticatedAccount,
    Path(id): Path<String>,
    Json(req): Json<SetPlanRequest>,
) -> Result<Json<AppPlan>, ApiError> {
    let plan = Plan::new(req.storage_gb.0, req.burst.unwrap_or(SIMPLE_BURST)).map_err(|e| ApiError::invalid(e.0))?;
    let app = owned(&state, &owner, &id).await?;
    let changed = change_plan(&*state.accounts, app.id, plan, Change::ByOwner).await?;
    Ok(Json(changed.ok_or_else(app_not_found)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(storage_gb: u64, burst: u32, next: Option<(u64, u32, Period)>) -> PlanRecord {
        PlanRecord {
            storage_bytes: storage_gb * 1_000_000_000,
            burst,
            next: next.map(|(gb, burst, from)| PendingPlan {
                storage_bytes: gb * 1_000_000_000,
                burst,
                from_period: from.index(),
            }),
        }
    }

    #[test]
    fn a_waiting_change_is_in_force_from_its_period_on() {
        let now = Period::containing(time::macros::datetime!(2026-12-15 12:00 UTC));
        let waiting = record(50, 5, Some((10, 5, now.next())));
        let (current, next) = in_force(waiting, now);
        assert_eq!(
            (current.storage_bytes(), next.map(|(p, from)| (p.storage_bytes(), from))),
            (50_000_000_000, Some((10_000_000_000, now.next())))
        );
        let (current, next) = in_force(waiting, now.next());
        assert_eq!((current.storage_bytes(), next), (10_000_000_000, None));
        let shown = view(Some(waiting), now);
        assert_eq!((shown.period.as_str(), shown.current.unwrap().monthly_usd.as_str()), ("2026-12", "15.00"));
        assert_eq!(shown.next.map(|n| (n.from, n.terms.monthly_usd)), Some(("2027-01".to_owned(), "3.00".to_owned())));
        assert_eq!(view(None, now), AppPlan { period: "2026-12".to_owned(), current: None, next: None });
    }
}
