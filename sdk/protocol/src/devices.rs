//! The device registry: `/api/sync/devices`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// `POST /api/sync/devices`: registers a device, or returns the existing one of that name (updating its platform).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterDeviceRequest {
    /// Unique per user and app, e.g. "MacBook".
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::device_field))]
    pub name: String,
    /// Free-form, e.g. "macos", "ios", "linux".
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::device_field))]
    pub platform: String,
}

/// A device of the user in this app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Device {
    pub id: Uuid,
    pub name: String,
    pub platform: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
}

/// `POST /api/sync/devices`: the device, and a token bound to it. The device acts with this token from then on:
/// push and pull need a device's token, it acts only as its own device, and removing the device revokes it at
/// once, open event streams included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisteredDevice {
    #[serde(flatten)]
    pub device: Device,
    /// The device's bearer token.
    pub token: String,
    /// When the token stops working; register the device again (with a fresh sign-in if needed) to get another.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: OffsetDateTime,
}
