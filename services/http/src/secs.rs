//! `Duration` settings written as whole seconds, as operators write them (`SYNCKIT_…_SECS=30`).
//!
//! Use with `#[serde(with = "synckit_http::secs", rename = "…_secs")]` on a `Duration` field.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Reads whole seconds.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_secs)
}

/// Writes whole seconds (a fraction is dropped).
pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(duration.as_secs())
}
