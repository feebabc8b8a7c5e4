//! The OpenAPI schemas of request fields whose rules a plain type cannot carry: each says exactly what the server
//! accepts, so that every request valid by the published document is accepted and the others are refused.
//!
//! The patterns are ECMA-262 regular expressions that read the same in Python. Whitespace is spelled out as the
//! characters Rust's `char::is_whitespace` (and so `str::trim`) knows, and control characters as `char::is_control`
//! does, because `\s` means other things in other engines.

use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, Type};

use crate::apps::REDIRECT_URI_PATTERN;
use crate::base64::schema::sized;
use crate::limits::{
    LOGIN_KEY_BYTES, LOGIN_SALT_BYTES, MAX_APP_NAME_CHARS, MAX_DEVICE_FIELD_CHARS, MAX_EMAIL_CHARS, MAX_ENTRY_BYTES,
    MAX_ENVELOPE_BYTES, MAX_PUSH_ENTRIES, MAX_REDIRECT_URI_CHARS, MAX_REDIRECT_URIS,
};

/// What `str::trim` removes.
const WHITESPACE: &str = r"\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// What `char::is_control` is true of.
const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// An email: at most [`MAX_EMAIL_CHARS`] characters, one `@` between non-empty parts, no whitespace or control
/// characters but around it (trimmed). Compared in lower case.
pub(crate) fn email() -> Object {
    let part = format!("[^{WHITESPACE}{CONTROL}@]+");
    string()
        .description(Some("an email address, compared in lower case; surrounding whitespace is ignored"))
        .min_length(Some(3))
        .max_length(Some(MAX_EMAIL_CHARS))
        .pattern(Some(format!("^[{WHITESPACE}]*{part}@{part}[{WHITESPACE}]*$")))
        .build()
}

/// A name: at most `max` characters, and once trimmed at least one, none of them a control character.
fn name(max: usize) -> Object {
    let visible = format!("[^{WHITESPACE}{CONTROL}]");
    string()
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(format!("^[{WHITESPACE}]*{visible}(?:[^{CONTROL}]*{visible})?[{WHITESPACE}]*$")))
        .build()
}

/// A device's name or platform: a name of at most [`MAX_DEVICE_FIELD_CHARS`] characters.
pub(crate) fn device_field() -> Object {
    name(MAX_DEVICE_FIELD_CHARS)
}

/// An app's name: a name of at most [`MAX_APP_NAME_CHARS`] characters.
pub(crate) fn app_name() -> Object {
    name(MAX_APP_NAME_CHARS)
}

/// An app's redirect URIs: at most [`MAX_REDIRECT_URIS`], none twice, each of [`REDIRECT_URI_PATTERN`] and at most
/// [`MAX_REDIRECT_URI_CHARS`] characters.
pub(crate) fn redirect_uris() -> Array {
    let uri = string()
        .description(Some("https, http on loopback, or a private-use scheme such as com.example.app:/callback"))
        .min_length(Some(1))
        .max_length(Some(MAX_REDIRECT_URI_CHARS))
        .pattern(Some(REDIRECT_URI_PATTERN));
    ArrayBuilder::new().items(uri).max_items(Some(MAX_REDIRECT_URIS)).unique_items(true).build()
}

/// Sequence numbers to supersede: at most [`MAX_PUSH_ENTRIES`], each 0 to `i64::MAX`.
pub(crate) fn sequence_numbers() -> Array {
    let seq = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).maximum(Some(i64::MAX));
    ArrayBuilder::new().items(seq).max_items(Some(MAX_PUSH_ENTRIES)).build()
}

/// A login salt: [`LOGIN_SALT_BYTES`] bytes.
pub(crate) fn salt() -> Object {
    sized(LOGIN_SALT_BYTES, LOGIN_SALT_BYTES)
}

/// A login key: [`LOGIN_KEY_BYTES`] bytes.
pub(crate) fn login_key() -> Object {
    sized(LOGIN_KEY_BYTES, LOGIN_KEY_BYTES)
}

/// A key envelope: 1 to [`MAX_ENVELOPE_BYTES`] bytes.
pub(crate) fn envelope() -> Object {
    sized(1, MAX_ENVELOPE_BYTES)
}

/// An entry's payload: at most [`MAX_ENTRY_BYTES`] bytes.
pub(crate) fn payload() -> Object {
    sized(0, MAX_ENTRY_BYTES)
}

/// A SHA-256 in base64: 32 bytes.
pub(crate) fn sha256() -> Object {
    sized(32, 32)
}

/// A blob's content id: 64 lowercase hex characters.
pub(crate) fn blob_hash() -> Object {
    string().min_length(Some(64)).max_length(Some(64)).pattern(Some("^[0-9a-f]{64}$")).build()
}

/// An app's API key, as `synckit-server admin create-app` prints it. Any string is looked up (and one of no app
/// answers `401 invalid_api_key`); the bound keeps sign-in within its body limit.
pub(crate) fn api_key() -> Object {
    string().max_length(Some(256)).build()
}
