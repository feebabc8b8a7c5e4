//! The device registry of one (app, user).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use synckit_http::{ApiError, Authenticated, Json};
use synckit_protocol::devices::{Device, RegisterDeviceRequest};
use synckit_protocol::limits::MAX_DEVICE_FIELD_BYTES;
use synckit_protocol::{ErrorBody, ErrorCode, paths};
use tracing::instrument;
use uuid::Uuid;

use crate::AuthState;

/// Registers a device, or returns the one already registered under that name (with its platform updated).
#[utoipa::path(post, path = paths::DEVICES, tag = "devices", request_body = RegisterDeviceRequest,
    security(("bearer" = [])), responses((status = 200, body = Device), (status = 400, body = ErrorBody)))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %auth.user_id, app.id = %auth.app_id))]
pub async fn register(
    State(state): State<AuthState>,
    auth: Authenticated,
    Json(req): Json<RegisterDeviceRequest>,
) -> Result<Json<Device>, ApiError> {
    let name = check_field("name", &req.name)?;
    let platform = check_field("platform", &req.platform)?;
    let device = state.accounts.upsert_device(auth.stream(), Uuid::now_v7(), name, platform).await?;
    Ok(Json(to_wire(device)))
}

/// The caller's devices, oldest first.
#[utoipa::path(get, path = paths::DEVICES, tag = "devices", security(("bearer" = [])),
    responses((status = 200, body = [Device])))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %auth.user_id, app.id = %auth.app_id))]
pub async fn list(State(state): State<AuthState>, auth: Authenticated) -> Result<Json<Vec<Device>>, ApiError> {
    let devices = state.accounts.devices(auth.stream()).await?;
    Ok(Json(devices.into_iter().map(to_wire).collect()))
}

/// Removes one of the caller's devices. Its changes stay in the log.
#[utoipa::path(delete, path = paths::DEVICE, tag = "devices", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the device id")),
    responses((status = 204, description = "removed"), (status = 404, description = "device_not_found", body = ErrorBody)))]
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

fn check_field<'a>(field: &str, value: &'a str) -> Result<&'a str, ApiError> {
    let value = value.trim();
    if value.is_empty() || value.len() > MAX_DEVICE_FIELD_BYTES {
        return Err(ApiError::invalid(format!("{field} must be 1 to {MAX_DEVICE_FIELD_BYTES} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!("{field} must not contain control characters")));
    }
    Ok(value)
}

fn to_wire(d: synckit_store::Device) -> Device {
    Device { id: d.id, name: d.name, platform: d.platform, created_at: d.created_at }
}
