//! App registration: `/api/apps`, with a console token (`POST /api/accounts/console-auth`).
//!
//! An app has a name, an API key that it ships and signs its users in with (shown once: the server keeps only its
//! hash), an OAuth client id (public: there is no client secret) and the redirect URIs that OAuth may send a user
//! back to. The account that registered it manages it; apps made by the operator have no owner.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// One character of a URI after its scheme and host, or one percent-encoded byte: RFC 3986's characters, less `#`
/// (a redirect URI has no fragment) and `[` `]` (only a host has them: the loopback `[::1]` is the one IPv6 host
/// taken, spelt out).
macro_rules! uri_char {
    () => {
        r"(?:[A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})"
    };
}

/// What the server takes as a redirect URI, exactly: the OpenAPI document publishes it and the server checks with
/// it, so the two cannot disagree. ECMA-262 syntax that reads the same in Python and Rust. One of, RFC 8252's
/// choices for native apps and the usual one for the web:
///
/// - `https://` a host name or IPv4 address (letters, digits, dots and dashes), maybe a port, maybe a path and
///   query;
/// - `http://` on loopback only: `127.0.0.1`, `[::1]` or `localhost`, maybe a port (RFC 8252 section 7.3);
/// - a private-use scheme in reverse domain order, with a dot in it, then `:/` (`com.example.app:/callback`,
///   RFC 8252 section 7.1).
///
/// No fragment, no whitespace, no user name or password, only ASCII: `%`-encode anything else. At most
/// [`crate::limits::MAX_REDIRECT_URI_CHARS`] characters.
///
/// ```
/// let re = regex_lite::Regex::new(synckit_protocol::apps::REDIRECT_URI_PATTERN).unwrap();
/// assert!(re.is_match("com.example.notes:/oauth/callback"));
/// assert!(!re.is_match("http://example.com/callback"));
/// ```
pub const REDIRECT_URI_PATTERN: &str = concat!(
    "^(?:",
    r"https://[A-Za-z0-9][A-Za-z0-9.-]*(?::[0-9]{1,5})?(?:[/?]",
    uri_char!(),
    "*)?",
    r"|http://(?:127\.0\.0\.1|\[::1\]|localhost)(?::[0-9]{1,5})?(?:[/?]",
    uri_char!(),
    "*)?",
    r"|[a-z][a-z0-9+-]*\.[a-z0-9+.-]*:/",
    uri_char!(),
    "*",
    ")$"
);

/// `POST /api/apps` (console token): registers an app owned by the caller.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateAppRequest {
    /// Shown to the owner; 1 to [`crate::limits::MAX_APP_NAME_CHARS`] characters, trimmed, no control characters.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::app_name))]
    pub name: String,
    /// See [`RedirectUrisRequest`]; none when left out.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::redirect_uris))]
    pub redirect_uris: Vec<String>,
}

/// `PUT /api/apps/{id}/redirect-uris` (console token): replaces the app's redirect URIs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RedirectUrisRequest {
    /// Where OAuth may send a user back to, each matching [`REDIRECT_URI_PATTERN`], none twice, at most
    /// [`crate::limits::MAX_REDIRECT_URIS`]. Empty: the app signs in with its API key only.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::redirect_uris))]
    pub redirect_uris: Vec<String>,
}

/// An app, as its owner (or the operator) sees it: never its API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct App {
    pub app_id: Uuid,
    pub name: String,
    /// The account that manages the app; null for an app the operator made (`synckit-server admin create-app`).
    pub owner_id: Option<Uuid>,
    /// The app's OAuth client id: public (the app has no client secret), random, unrelated to `app_id`.
    pub client_id: String,
    pub redirect_uris: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
}

/// Answer to [`CreateAppRequest`]: the app and its API key, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedApp {
    #[serde(flatten)]
    pub app: App,
    /// `sk_…`: the app signs its users in with it (`POST /api/sync/auth`). The server keeps only its hash, so a
    /// lost one cannot be shown again: rotate it.
    pub api_key: String,
}

/// `GET /api/apps`: the caller's apps, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppList {
    pub apps: Vec<App>,
}

/// `POST /api/apps/{id}/rotate-key`: the app's new API key, shown this once. The one before no longer works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RotatedApiKey {
    pub app_id: Uuid,
    pub api_key: String,
}

#[cfg(test)]
mod tests {
    use super::REDIRECT_URI_PATTERN;

    #[test]
    fn redirect_uris_of_rfc_8252_and_https_are_taken_and_no_others() {
        let re = regex_lite::Regex::new(REDIRECT_URI_PATTERN).unwrap();
        for good in [
            "https://notes.example.com/oauth/callback",
            "https://example.com",
            "https://example.com:8443/cb?x=1&y=%20",
            "http://127.0.0.1/callback",
            "http://127.0.0.1:53682/callback",
            "http://[::1]:8080/cb",
            "http://localhost:3000",
            "com.example.notes:/oauth2redirect",
            "com.example.notes://callback",
            "org.example.a-b+c:/",
        ] {
            assert!(re.is_match(good), "{good} is refused");
        }
        for bad in [
            "",
            "/callback",
            "example.com/callback",
            "http://example.com/callback",
            "http://127.0.0.2/callback",
            "http://localhost.example.com/cb",
            "https://example.com/cb#fragment",
            "https://example.com/a b",
            "https://user:pass@example.com/cb",
            "https://[2001:db8::1]/cb",
            "https://[ce]/cb",
            "https://",
            "https:///path",
            "HTTPS://example.com",
            "javascript:alert(1)",
            "myapp:/callback",
            "com.example.app:callback",
            "com.example.app:/cb#x",
            "https://example.com/caf\u{e9}",
            "https://example.com/%zz",
            "https://example.com/cb\n",
        ] {
            assert!(!re.is_match(bad), "{bad:?} is taken");
        }
    }
}
