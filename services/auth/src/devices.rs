//! The device registry of one (app, user).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use synckit_http::auth::TokenClaims;
use synckit_http::{ApiError, Authenticated, Json};
use synckit_protocol::devices::{Device, RegisterDeviceRequest, RegisteredDevice};
use synckit_protocol::limits::MAX_DEVICE_FIELD_CHARS;
use synckit_protocol::{ErrorBody, ErrorCode, paths};
use tracing::instrument;
use uuid::Uuid;

use crate::AuthState;

/// Registers a device, or returns the one already registered under that name (with its platform updated), with a
/// token bound to it. A sign-in token may register any name; a device's token only its own, which renews the token:
/// a lost device's token must not be able to mint a token for a device that outlives its removal.
#[utoipa::path(post, path = paths::DEVICES, tag = "devices", request_body = RegisterDeviceRequest,
    security(("bearer" = [])), responses(
        (status = 200, description = "the device and its token", body = RegisteredDevice),
        (status = 400, description = "- `invalid_request`: an empty or over-long name or platform, or one with \
            control characters", body = ErrorBody),
        (status = 403, description = "- `device_mismatch`: a device's token registering another name",
            body = ErrorBody),
    ))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %auth.user_id, app.id = %auth.app_id))]
pub async fn register(
    State(state): State<AuthState>,
    auth: Authenticated,
    Json(req): Json<RegisterDeviceRequest>,
) -> Result<Json<RegisteredDevice>, ApiError> {
    let name = check_name("name", &req.name, MAX_DEVICE_FIELD_CHARS)?;
    let platform = check_name("platform", &req.platform, MAX_DEVICE_FIELD_CHARS)?;
    if let Some(own) = auth.device_id {
        let devices = state.accounts.devices(auth.stream()).await?;
        if !devices.iter().any(|d| d.id == own && d.name == name) {
            return Err(ApiError::new(
                ErrorCode::DeviceMismatch,
                "a device's token registers only its own device; sign in again to register another",
            ));
        }
    }
    let device = state.accounts.upsert_device(auth.stream(), Uuid::now_v7(), name, platform).await?;
    let claims = TokenClaims {
        user_id: auth.user_id,
        app_id: auth.app_id,
        token_version: auth.token_version,
        device_id: Some(device.id),
    };
    let (token, expires_at) = state.keys.issue(claims);
    Ok(Json(RegisteredDevice { device: to_wire(device), token, expires_at }))
}

/// The caller's devices, oldest first.
#[utoipa::path(get, path = paths::DEVICES, tag = "devices", security(("bearer" = [])),
    responses((status = 200, body = [Device])))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %auth.user_id, app.id = %auth.app_id))]
pub async fn list(State(state): State<AuthState>, auth: Authenticated) -> Result<Json<Vec<Device>>, ApiError> {
    let devices = state.accounts.devices(auth.stream()).await?;
    Ok(Json(devices.into_iter().map(to_wire).collect()))
}

/// Removes one of the caller's devices, which revokes its token at once. Its changes stay in the log.
#[utoipa::path(delete, path = paths::DEVICE, tag = "devices", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the device id")),
    responses(
        (status = 204, description = "removed"),
        (status = 400, description = "- `invalid_request`: the id is not a UUID", body = ErrorBody),
        (status = 404, description = "- `device_not_found`: no device with this id for this user in this app",
            body = ErrorBody),
    ))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %auth.user_id, app.id = %auth.app_id))]
pub async fn remove(
    State(state): State<AuthState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::invalid(format!("{id:?} is not a device id")))?;
    if state.accounts.delete_device(auth.stream(), id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(ErrorCode::DeviceNotFound, "no device with this id"))
    }
}

/// A name as given, trimmed: at most `max_chars` characters as sent (surrounding whitespace included, as the OpenAPI
/// document's `maxLength` counts them), at least one once trimmed, and no control characters.
pub(crate) fn check_name<'a>(field: &str, value: &'a str, max_chars: usize) -> Result<&'a str, ApiError> {
    let long = value.chars().count() > max_chars;
    let value = value.trim();
    if value.is_empty() || long {
        return Err(ApiError::invalid(format!("{field} must be 1 to {max_chars} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!("{field} must not contain control characters")));
    }
    Ok(value)
}

fn to_wire(d: synckit_store::Device) -> Device {
    Device { id: d.id, name: d.name, platform: d.platform, created_at: d.created_at }
}
