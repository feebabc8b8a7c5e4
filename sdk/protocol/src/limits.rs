//! Sizes the server enforces, so clients can split work before sending it.

/// At most this many entries in one push.
pub const MAX_PUSH_ENTRIES: usize = 500;
/// At most this many entries in one pulled page, and the default page size.
pub const MAX_PULL_LIMIT: u32 = 500;
/// The payloads of one pulled page, decoded, in bytes: a page stops before the entry that would pass it (but always
/// holds at least one entry), and `has_more` says that more follow. It keeps a page's response near 5.5 MiB of JSON
/// however large its entries are.
pub const MAX_PULL_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// One entry's encrypted payload, decoded, in bytes.
pub const MAX_ENTRY_BYTES: usize = 64 * 1024;
/// A wrapped master-key envelope, decoded, in bytes.
pub const MAX_ENVELOPE_BYTES: usize = 4 * 1024;
/// A device name or platform, in characters as sent (surrounding whitespace, which is trimmed, included).
pub const MAX_DEVICE_FIELD_CHARS: usize = 200;
/// An app's name, in characters as sent (surrounding whitespace, which is trimmed, included).
pub const MAX_APP_NAME_CHARS: usize = 100;
/// Apps one account owns at most: plenty for a developer's products and their staging copies, few enough that one
/// account on an open deployment cannot fill its database with apps.
pub const MAX_APPS_PER_ACCOUNT: usize = 100;
/// Redirect URIs one app registers at most: a few per platform it ships on.
pub const MAX_REDIRECT_URIS: usize = 10;
/// One redirect URI, in characters (all of them ASCII: see [`crate::apps::REDIRECT_URI_PATTERN`]).
pub const MAX_REDIRECT_URI_CHARS: usize = 1024;
/// An email, in characters as sent (surrounding whitespace, which is trimmed, included).
pub const MAX_EMAIL_CHARS: usize = 254;
/// Re-wrapped key envelopes in one password change: one per app of the deployment that has the account's
/// envelope, and room for all of them within the body limit.
pub const MAX_ACCOUNT_KEYS: usize = 256;
/// A push request body, in bytes: room for the largest push (500 entries of the largest size, base64-encoded).
pub const MAX_PUSH_BODY_BYTES: usize = 48 * 1024 * 1024;
/// The largest request body of sign-up, pre-login and sign-in, which anyone may send without a token: their
/// bodies are an email and two 32-byte values, so a small bound keeps strangers from making the server buffer much.
pub const MAX_PUBLIC_BODY_BYTES: usize = 16 * 1024;
/// The body of a recovery (`POST /api/accounts/recover`), which is sent without a token: room for the largest body
/// the schema allows, [`MAX_ACCOUNT_KEYS`] apps each with an envelope and a recovery envelope of
/// [`MAX_ENVELOPE_BYTES`] in base64 (about 2.7 MiB). The SDK's envelopes make about 450 bytes per app. What strangers
/// may make the server hold at once is bounded by the memory budget's share for callers without a token.
pub const MAX_RECOVER_BODY_BYTES: usize = 3 * 1024 * 1024;
/// A login salt, decoded, in bytes. One fixed size, so the made-up salts pre-login answers for unknown emails
/// cannot be told from real ones.
pub const LOGIN_SALT_BYTES: usize = 32;
/// A login key, decoded, in bytes.
pub const LOGIN_KEY_BYTES: usize = 32;
/// A blob's plaintext, in bytes: 500 MiB.
pub const MAX_BLOB_PLAINTEXT_BYTES: u64 = 500 * 1024 * 1024;
/// A blob's ciphertext, in bytes: the largest plaintext plus the SDK's encryption overhead (16 bytes per 64 KiB
/// chunk).
pub const MAX_BLOB_BYTES: u64 = MAX_BLOB_PLAINTEXT_BYTES + MAX_BLOB_PLAINTEXT_BYTES / (64 * 1024) * 16;
