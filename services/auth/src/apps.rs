//! App registration: the apps an account owns, which it manages at `/api/apps` with a console token, and the
//! operations behind them, which the operator's commands (`synckit-server admin`) call on any app.
//!
//! Another account's app, or one the operator made, answers exactly as no app does: 404 `app_not_found`. An owner
//! learns nothing of apps that are not theirs, not even that they exist.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use synckit_http::{ApiError, AuthenticatedAccount, Json};
use synckit_protocol::apps::{App, AppList, CreateAppRequest, CreatedApp, RedirectUrisRequest, RotatedApiKey};
use synckit_protocol::limits::{MAX_APP_NAME_CHARS, MAX_APPS_PER_ACCOUNT};
use synckit_protocol::{ErrorBody, ErrorCode, paths};
use synckit_store::{AccountStore, NewApp};
use tracing::instrument;
use uuid::Uuid;

use crate::AuthState;
use crate::credentials::{api_key_hash, new_api_key, new_client_id};
use crate::devices::check_name;
use crate::redirect_uris;

/// Registers an app of `owner_id` (`None`: the operator's) with a new API key and OAuth client id, and answers it
/// with the API key, which is not kept.
pub async fn register(
    accounts: &dyn AccountStore,
    owner_id: Option<Uuid>,
    name: &str,
    redirect_uris: Vec<String>,
) -> Result<CreatedApp, ApiError> {
    let name = check_name("name", name, MAX_APP_NAME_CHARS)?;
    redirect_uris::check(&redirect_uris)?;
    let api_key = new_api_key();
    let app = NewApp {
        id: Uuid::now_v7(),
        name: name.to_owned(),
        owner_id,
        client_id: new_client_id(),
        redirect_uris,
        api_key_hash: api_key_hash(&api_key),
    };
    let app = accounts.create_app(app).await?;
    Ok(CreatedApp { app: to_wire(app), api_key })
}

/// Gives the app a new API key, answered this once: the key before finds no app from then on, so apps shipped with
/// it can no longer sign anyone in. `None` when there is no such app.
pub async fn rotate_api_key(accounts: &dyn AccountStore, app_id: Uuid) -> Result<Option<RotatedApiKey>, ApiError> {
    let api_key = new_api_key();
    let rotated = accounts.set_api_key_hash(app_id, &api_key_hash(&api_key)).await?;
    Ok(rotated.then_some(RotatedApiKey { app_id, api_key }))
}

/// An app as the API shows it.
pub fn to_wire(app: synckit_store::App) -> App {
    App {
        app_id: app.id,
        name: app.name,
        owner_id: app.owner_id,
        client_id: app.client_id,
        redirect_uris: app.redirect_uris,
        created_at: app.created_at,
    }
}

/// Registers an app owned by the caller.
#[utoipa::path(post, path = paths::APPS, tag = "apps", request_body = CreateAppRequest, security(("console" = [])),
    responses(
        (status = 200, description = "the app, and its API key shown this once", body = CreatedApp),
        (status = 400, description = "- `invalid_request`: an empty or over-long name, or one with control \
            characters\n- `invalid_redirect_uri`: a redirect URI that is not https, http on loopback or a \
            private-use scheme, has a fragment or is too long, one listed twice, or too many", body = ErrorBody),
        (status = 409, description = "- `too_many_apps`: the account owns 100 apps already", body = ErrorBody),
    ))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %owner.user_id, app.id))]
pub async fn create(
    State(state): State<AuthState>,
    owner: AuthenticatedAccount,
    Json(req): Json<CreateAppRequest>,
) -> Result<Json<CreatedApp>, ApiError> {
    // Counted before the insert, so requests racing each other may pass the limit by a few: it bounds what one
    // account can store, it is not a quota to the unit.
    if state.accounts.apps(Some(owner.user_id)).await?.len() >= MAX_APPS_PER_ACCOUNT {
        return Err(ApiError::new(
            ErrorCode::TooManyApps,
            format!("an account owns at most {MAX_APPS_PER_ACCOUNT} apps: delete one before creating another"),
        ));
    }
    let created = register(&*state.accounts, Some(owner.user_id), &req.name, req.redirect_uris).await?;
    tracing::Span::current().record("app.id", tracing::field::display(created.app.app_id));
    Ok(Json(created))
}

/// The caller's apps, oldest first.
#[utoipa::path(get, path = paths::APPS, tag = "apps", security(("console" = [])),
    responses((status = 200, body = AppList)))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %owner.user_id))]
pub async fn list(State(state): State<AuthState>, owner: AuthenticatedAccount) -> Result<Json<AppList>, ApiError> {
    let apps = state.accounts.apps(Some(owner.user_id)).await?;
    Ok(Json(AppList { apps: apps.into_iter().map(to_wire).collect() }))
}

/// One of the caller's apps.
#[utoipa::path(get, path = paths::APP, tag = "apps", security(("console" = [])),
    params(("id" = Uuid, Path, description = "the app id")),
    responses(
        (status = 200, body = App),
        (status = 400, description = "- `invalid_request`: the id is not a UUID", body = ErrorBody),
        (status = 404, description = "- `app_not_found`: the caller owns no app with this id", body = ErrorBody),
    ))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %owner.user_id, app.id = %id))]
pub async fn get(
    State(state): State<AuthState>,
    owner: AuthenticatedAccount,
    Path(id): Path<String>,
) -> Result<Json<App>, ApiError> {
    Ok(Json(to_wire(owned(&state, &owner, &id).await?)))
}

/// Replaces the redirect URIs of one of the caller's apps.
#[utoipa::path(put, path = paths::APP_REDIRECT_URIS, tag = "apps", request_body = RedirectUrisRequest,
    security(("console" = [])),
    params(("id" = Uuid, Path, description = "the app id")),
    responses(
        (status = 200, description = "the app with its new redirect URIs", body = App),
        (status = 400, description = "- `invalid_request`: the id is not a UUID\n- `invalid_redirect_uri`: a \
            redirect URI that is not https, http on loopback or a private-use scheme, has a fragment or is too \
            long, one listed twice, or too many", body = ErrorBody),
        (status = 404, description = "- `app_not_found`: the caller owns no app with this id", body = ErrorBody),
    ))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %owner.user_id, app.id = %id))]
pub async fn set_redirect_uris(
    State(state): State<AuthState>,
    owner: AuthenticatedAccount,
    Path(id): Path<String>,
    Json(req): Json<RedirectUrisRequest>,
) -> Result<Json<App>, ApiError> {
    redirect_uris::check(&req.redirect_uris)?;
    let app = owned(&state, &owner, &id).await?;
    // Gone in between only if the owner deleted it meanwhile.
    let app = state.accounts.set_redirect_uris(app.id, &req.redirect_uris).await?.ok_or_else(app_not_found)?;
    Ok(Json(to_wire(app)))
}

/// Gives one of the caller's apps a new API key. The key before stops working at once.
#[utoipa::path(post, path = paths::APP_ROTATE_KEY, tag = "apps", security(("console" = [])),
    params(("id" = Uuid, Path, description = "the app id")),
    responses(
        (status = 200, description = "the new API key, shown this once", body = RotatedApiKey),
        (status = 400, description = "- `invalid_request`: the id is not a UUID", body = ErrorBody),
        (status = 404, description = "- `app_not_found`: the caller owns no app with this id", body = ErrorBody),
    ))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %owner.user_id, app.id = %id))]
pub async fn rotate_key(
    State(state): State<AuthState>,
    owner: AuthenticatedAccount,
    Path(id): Path<String>,
) -> Result<Json<RotatedApiKey>, ApiError> {
    let app = owned(&state, &owner, &id).await?;
    let rotated = rotate_api_key(&*state.accounts, app.id).await?.ok_or_else(app_not_found)?;
    Ok(Json(rotated))
}

/// Deletes one of the caller's apps with everything stored under it: every user's entries, devices, key envelopes
/// and blob records in the app. Its tokens stop working at once and its API key finds nothing.
#[utoipa::path(delete, path = paths::APP, tag = "apps", security(("console" = [])),
    params(("id" = Uuid, Path, description = "the app id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, description = "- `invalid_request`: the id is not a UUID", body = ErrorBody),
        (status = 404, description = "- `app_not_found`: the caller owns no app with this id", body = ErrorBody),
    ))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %owner.user_id, app.id = %id))]
pub async fn delete(
    State(state): State<AuthState>,
    owner: AuthenticatedAccount,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let app = owned(&state, &owner, &id).await?;
    if state.accounts.delete_app(app.id).await? { Ok(StatusCode::NO_CONTENT) } else { Err(app_not_found()) }
}

/// The app `id` names, if `owner` owns it; otherwise, whether it exists or not, 404 `app_not_found`.
pub(crate) async fn owned(
    state: &AuthState,
    owner: &AuthenticatedAccount,
    id: &str,
) -> Result<synckit_store::App, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::invalid(format!("{id:?} is not an app id")))?;
    match state.accounts.app(id).await? {
        Some(app) if app.owner_id == Some(owner.user_id) => Ok(app),
        _ => Err(app_not_found()),
    }
}

pub(crate) fn app_not_found() -> ApiError {
    ApiError::new(ErrorCode::AppNotFound, "you own no app with this id")
}
