//! Every path of the HTTP API, written once: the server routes and documents them with these constants, and the
//! SDK calls them.
//!
//! [`ALL`] lists the endpoints of the OpenAPI document. [`OPENAPI`] and [`BLOBS_LOCAL`] are served too, but are
//! not endpoints a client calls by name.

use uuid::Uuid;

/// Declares each endpoint and puts it in [`ALL`], so that no endpoint can be left out of that list: the server's
/// tests check it serves every path in it with exactly the methods its OpenAPI document gives.
macro_rules! endpoints {
    ($($(#[$doc:meta])* $name:ident = $path:literal;)*) => {
        $($(#[$doc])* pub const $name: &str = $path;)*

        /// Every endpoint above, each in the OpenAPI document.
        pub const ALL: &[&str] = &[$($name),*];
    };
}

endpoints! {
    /// `POST`: creates an account.
    ACCOUNTS_REGISTER = "/api/accounts/register";
    /// `POST`: the salt to derive an account's login key with.
    ACCOUNTS_PRELOGIN = "/api/accounts/prelogin";
    /// `POST`: changes the password: the login key and the key envelope together.
    ACCOUNTS_PASSWORD = "/api/accounts/password";
    /// `GET`: the account's key envelope in every app, for a password change to re-wrap.
    ACCOUNTS_KEYS = "/api/accounts/keys";
    /// `POST`: sets or replaces the account's recovery key.
    ACCOUNTS_RECOVERY_KEY = "/api/accounts/recovery-key";
    /// `POST`: proves a recovery key; the recovery envelopes to open.
    ACCOUNTS_RECOVERY = "/api/accounts/recovery";
    /// `POST`: with a recovery key, sets a new password and a new recovery key.
    ACCOUNTS_RECOVER = "/api/accounts/recover";
    /// `POST`: signs in to the console, with the account alone: a token that manages the account's apps.
    ACCOUNTS_CONSOLE_AUTH = "/api/accounts/console-auth";
    /// `POST` registers an app, `GET` lists the caller's.
    APPS = "/api/apps";
    /// `GET` one app, `DELETE` it with everything stored under it.
    APP = "/api/apps/{id}";
    /// `PUT`: replaces an app's redirect URIs.
    APP_REDIRECT_URIS = "/api/apps/{id}/redirect-uris";
    /// `POST`: gives an app a new API key; the one before stops working.
    APP_ROTATE_KEY = "/api/apps/{id}/rotate-key";
    /// `GET`: the monthly price of a plan.
    APPS_QUOTE = "/api/apps/quote";
    /// `GET` an app's plan, `PUT` a new one.
    APP_PLAN = "/api/apps/{id}/plan";
    /// `GET`: what an app stores and transferred this billing period, against its limits.
    APP_USAGE = "/api/apps/{id}/usage";
    /// `POST`: signs in to an app: a token.
    AUTH = "/api/sync/auth";
    /// `POST`: which app an API key is: its id, name and OAuth client id.
    APP_INFO = "/api/sync/app";
    /// `POST`: exchanges an authorization code and its PKCE verifier for a sign-in token (form-encoded).
    OAUTH_TOKEN = "/oauth/token";
    /// `POST`: appends a device's changes to its stream.
    PUSH = "/api/sync/push";
    /// `POST`: a page of the stream after a cursor.
    PULL = "/api/sync/pull";
    /// `POST`: marks entries of the stream superseded, freeing their payloads.
    SUPERSEDE = "/api/sync/supersede";
    /// `GET`: the stream's size and newest cursor.
    STATUS = "/api/sync/status";
    /// `GET`: server-sent events that tell a device to pull.
    EVENTS = "/api/sync/events";
    /// `POST` registers a device, `GET` lists them.
    DEVICES = "/api/sync/devices";
    /// `DELETE`: removes one device; [`device`] fills in its id.
    DEVICE = "/api/sync/devices/{id}";
    /// `GET` and `PUT`: the wrapped master key.
    KEYS = "/api/sync/keys";
    /// `POST`: declares a blob and signs a URL to upload it to.
    BLOBS_UPLOAD = "/api/sync/blobs/upload";
    /// `POST`: records an uploaded blob once the store holds what was declared.
    BLOBS_CONFIRM = "/api/sync/blobs/confirm";
    /// `POST`: signs a URL to download a confirmed blob from.
    BLOBS_DOWNLOAD = "/api/sync/blobs/download";
    /// `DELETE`: deletes one of the user's blobs; [`blob`] fills in its hash.
    BLOB = "/api/sync/blobs/{hash}";
}

/// `GET`: the browser's sign-in page of an OAuth authorization request; `POST`: the page's form. Not in the OpenAPI
/// document: a browser calls it, not a client.
pub const OAUTH_AUTHORIZE: &str = "/oauth/authorize";

/// `GET`: the OAuth authorization server's metadata (RFC 8414).
pub const OAUTH_METADATA: &str = "/.well-known/oauth-authorization-server";

/// `GET`: the OpenAPI document of these endpoints.
pub const OPENAPI: &str = "/api/openapi.json";

/// Where the embedded blob store serves the signed URLs it hands out (`…/{app}/{user}/{hash}?…`). A client never
/// builds one: it uses the URL the blob endpoints answer.
pub const BLOBS_LOCAL: &str = "/api/sync/blobs/local";

/// [`BLOB`] for one blob's hash (64 lowercase hex characters).
///
/// ```
/// let hash = "ab".repeat(32);
/// assert_eq!(synckit_protocol::paths::blob(&hash), format!("/api/sync/blobs/{hash}"));
/// ```
pub fn blob(hash: &str) -> String {
    BLOB.replace("{hash}", hash)
}

/// [`DEVICE`] for one device.
///
/// ```
/// let id = uuid::Uuid::nil();
/// assert_eq!(synckit_protocol::paths::device(id), format!("/api/sync/devices/{id}"));
/// ```
pub fn device(id: Uuid) -> String {
    DEVICE.replace("{id}", &id.to_string())
}
