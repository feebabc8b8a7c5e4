//! Signing in through the browser: OAuth 2.0 authorization code with PKCE (RFC 6749, RFC 7636 with `S256` only,
//! RFC 8252 for native apps).
//!
//! 1. The app makes a `code_verifier` (43 to 128 characters of [`VERIFIER_CHARS`]) and a `state`, listens on
//!    `http://127.0.0.1:{port}/callback`, and opens the system browser at `GET /oauth/authorize` with
//!    `response_type=code`, its `client_id`, that `redirect_uri`, the `state` and
//!    `code_challenge = BASE64URL(SHA-256(code_verifier))` (no padding) with `code_challenge_method=S256`.
//! 2. The person signs in on the server's page, which derives the login key in the browser as the SDK does, so the
//!    password never leaves it. The browser is sent back to `redirect_uri?code=…&state=…`: a single-use code of 256
//!    bits, good for [`CODE_LIFETIME_SECS`] seconds and bound to the client, the redirect URI, the challenge and the
//!    user. The app checks `state`.
//! 3. The app exchanges the code at `POST /oauth/token` ([`TokenRequest`], form-encoded) for the sign-in token
//!    `POST /api/sync/auth` would have given ([`TokenResponse`]). Errors there are [`OAuthError`] (RFC 6749's shape,
//!    not [`crate::ErrorBody`]).
//!
//! A registered loopback redirect URI (`http://127.0.0.1/…` or `http://[::1]/…`) takes any port; every other one
//! must match exactly. The server's metadata is at `GET /.well-known/oauth-authorization-server` (RFC 8414).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A code may be exchanged this long after the server issued it, and once.
pub const CODE_LIFETIME_SECS: u64 = 60;

/// The characters of a `code_verifier` (RFC 7636 section 4.1: unreserved URI characters).
pub const VERIFIER_CHARS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

/// The shortest and longest `code_verifier` (RFC 7636 section 4.1).
pub const VERIFIER_LEN: std::ops::RangeInclusive<usize> = 43..=128;

/// The only `code_challenge_method` taken.
pub const CHALLENGE_METHOD: &str = "S256";

/// The path of the redirect URI the SDK and the CLI listen on, on `http://127.0.0.1:{port}`: register
/// `http://127.0.0.1/callback` for the app.
pub const LOOPBACK_CALLBACK_PATH: &str = "/callback";

/// `POST /oauth/token`, form-encoded (`application/x-www-form-urlencoded`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenRequest {
    /// `authorization_code`, the only grant.
    #[cfg_attr(feature = "openapi", schema(pattern = "^authorization_code$"))]
    pub grant_type: String,
    /// The code the redirect carried.
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
    pub code: String,
    /// The redirect URI the authorization request named, exactly (its port included).
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
    pub redirect_uri: String,
    /// The app's OAuth client id (`cid_…`).
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
    pub client_id: String,
    /// The verifier whose S256 challenge the authorization request carried: 43 to 128 of [`VERIFIER_CHARS`].
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9._~-]{43,128}$"))]
    pub code_verifier: String,
}

/// Answer to [`TokenRequest`]: the sign-in token `POST /api/sync/auth` gives, which registers a device.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Seconds until the token stops working.
    pub expires_in: u64,
    pub user_id: Uuid,
    pub app_id: Uuid,
    /// The account's email, trimmed and lower-cased: the app learns who signed in, and can later check the
    /// password with it (a password change, a recovery key).
    pub email: String,
}

/// An error of `POST /oauth/token` (RFC 6749 section 5.2), or of an authorization request, which the browser
/// carries back to the redirect URI as query parameters with the `state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unsupported_grant_type`, and at the redirect
    /// `invalid_request`, `unsupported_response_type`, `access_denied`.
    pub error: String,
    /// A sentence for the developer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// `POST /api/sync/app`: which app an API key is, for an app that signs in through the browser and needs its
/// client id.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AppInfoRequest {
    pub api_key: String,
}

/// Answer to [`AppInfoRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppInfo {
    pub app_id: Uuid,
    pub name: String,
    /// The app's OAuth client id, for `GET /oauth/authorize` and `POST /oauth/token`.
    pub client_id: String,
}

/// The authorization server's metadata (RFC 8414), at `GET /.well-known/oauth-authorization-server`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub response_types_supported: Vec<String>,
    pub grant_types_supported: Vec<String>,
    pub code_challenge_methods_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
}
