//! Sizes the server enforces, so clients can split work before sending it.

/// At most this many entries in one push.
pub const MAX_PUSH_ENTRIES: usize = 500;
/// At most this many entries in one pulled page, and the default page size.
pub const MAX_PULL_LIMIT: u32 = 500;
/// One entry's encrypted payload, decoded, in bytes.
pub const MAX_ENTRY_BYTES: usize = 64 * 1024;
/// A wrapped master-key envelope, decoded, in bytes.
pub const MAX_ENVELOPE_BYTES: usize = 4 * 1024;
/// A device name or platform, in bytes.
pub const MAX_DEVICE_FIELD_BYTES: usize = 200;
/// A pre-login salt, decoded, in bytes (inclusive range).
pub const SALT_BYTES: std::ops::RangeInclusive<usize> = 16..=64;
/// A login key, decoded, in bytes.
pub const LOGIN_KEY_BYTES: usize = 32;
