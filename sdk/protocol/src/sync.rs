//! The changelog: `POST /api/sync/push`, `POST /api/sync/pull`, `GET /api/sync/status`, and
//! `POST /api/sync/supersede`, which compacts it.
//!
//! A stream is one (app, user). Every pushed entry gets the stream's next sequence number; a cursor is the sequence
//! number of the last entry a client has seen (0 before the first).
//!
//! Compaction: a device that knows a later entry makes an earlier one irrelevant to every device (a later full write
//! or a delete of the same row, say) marks the earlier one superseded. The server drops its payload, which stops
//! counting as stored, and keeps its place: pulls still hand it over, as `superseded` with an empty payload, so
//! sequence numbers stay contiguous and every device, however far behind, converges on the entries that follow. Its
//! change id stays too, so a late retry of it is still a duplicate and is never stored again.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Base64Bytes;

/// `POST /api/sync/push`: up to [`crate::limits::MAX_PUSH_ENTRIES`] entries from one device.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    pub device_id: Uuid,
    #[cfg_attr(feature = "openapi", schema(max_items = 500))]
    pub entries: Vec<PushEntry>,
}

/// One change, already encrypted on the device.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PushEntry {
    /// Client-generated (UUIDv7), unique per stream: a retried push with the same ids stores nothing twice.
    pub change_id: Uuid,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::payload))]
    pub payload: Base64Bytes,
}

/// Answer to [`PushRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushResponse {
    /// The stream's head after this push: the sequence number of its newest entry.
    pub cursor: u64,
    /// Entries stored by this push.
    pub accepted: u32,
    /// Entries skipped because their change id was already stored (a retry) or repeated in the request.
    pub duplicates: u32,
}

/// `POST /api/sync/pull`: the entries after `cursor`, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    #[cfg_attr(feature = "openapi", schema(maximum = 9_223_372_036_854_775_807_i64))]
    #[serde(deserialize_with = "crate::integer::deserialize")]
    pub cursor: u64,
    /// Page size, 1 to [`crate::limits::MAX_PULL_LIMIT`] (the default).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::integer::option")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 500))]
    pub limit: Option<u32>,
}

/// A page of the changelog.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PullResponse {
    pub entries: Vec<PulledEntry>,
    /// Pass this to the next pull: the last entry's sequence number, or the request's cursor for an empty page.
    pub cursor: u64,
    /// More entries remain after this page.
    pub has_more: bool,
}

/// One stored change.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PulledEntry {
    pub seq: u64,
    pub change_id: Uuid,
    /// The device that pushed it.
    pub device_id: Uuid,
    pub payload: Base64Bytes,
    /// When the server stored it.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    /// A device marked it superseded: its payload is gone (empty here), and it is to be skipped. Left out when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub superseded: bool,
}

/// `POST /api/sync/supersede`: entries of the caller's stream that later entries make irrelevant to every device.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SupersedeRequest {
    /// Sequence numbers, 1 to the stream's head; at most [`crate::limits::MAX_PUSH_ENTRIES`].
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::sequence_numbers))]
    #[serde(deserialize_with = "crate::integer::sequence_numbers")]
    pub seqs: Vec<u64>,
}

/// Answer to [`SupersedeRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SupersedeResponse {
    /// Entries superseded by this request (not those superseded already).
    pub superseded: u32,
    /// Payload bytes freed: no longer stored.
    pub freed_bytes: u64,
}

/// `GET /api/sync/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusResponse {
    /// Entries stored in the stream.
    pub change_count: u64,
    /// The newest entry's sequence number (0 for an empty stream).
    pub cursor: u64,
}
