//! Usage: what an app stores and transferred in a billing period, against its plan's limits, and the headers that
//! carry an app's headroom on every sync response.
//!
//! Stored bytes are the ciphertext the server keeps: changelog payloads and confirmed blobs. Transferred bytes are
//! the ciphertext that moved: the payloads a push stored and a pull returned, the size of each blob upload when it
//! is confirmed, and the size of each blob download when its URL is signed. Protocol framing (JSON, base64,
//! headers) is not counted, and neither is a retried push's payload that was stored already nor a blob confirmed
//! twice.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Response header: bytes the app may still store under its plan (0 when it is at or over its limit). Sent on
/// sync responses of apps with a plan.
pub const STORAGE_REMAINING_HEADER: &str = "synckit-storage-remaining";

/// Response header: bytes the app may still transfer this billing period before its traffic is slowed. Sent on
/// sync responses of apps with a plan.
pub const TRANSFER_REMAINING_HEADER: &str = "synckit-transfer-remaining";

/// `GET /api/apps/{id}/usage`: an app's usage in this billing period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppUsage {
    /// This billing period (`2026-12`).
    pub period: String,
    /// Bytes stored now, every user's.
    pub stored_bytes: u64,
    /// Bytes transferred this period, every user's.
    pub transfer_bytes: u64,
    /// The plan's storage limit; `null` while the app has no plan.
    pub storage_limit_bytes: Option<u64>,
    /// The plan's transfer budget for this period; `null` while the app has no plan.
    pub transfer_limit_bytes: Option<u64>,
    /// Each user that stores or transferred anything, the largest first.
    pub users: Vec<UserUsage>,
    /// Each day of the period so far, the first first.
    pub days: Vec<DayUsage>,
}

/// One user's part of an app's usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserUsage {
    pub user_id: Uuid,
    pub stored_bytes: u64,
    /// This billing period.
    pub transfer_bytes: u64,
}

/// One day of an app's usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayUsage {
    /// The day, in UTC (`2026-12-01`).
    pub day: String,
    /// Bytes stored at the day's end (today: now).
    pub stored_bytes: u64,
    /// Bytes transferred that day.
    pub transfer_bytes: u64,
}
