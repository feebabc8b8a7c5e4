//! The SyncKit auth service: accounts, apps, tokens, devices and key envelopes.
//!
//! # Layout
//! - [`router`] and [`AuthState`]: the service as an axum router, composed by `synckit-server`.
//! - `accounts.rs`: sign-up, pre-login, password change, `POST /api/sync/auth` which issues an app's tokens, and
//!   the console's sign-in, which issues a token of the account alone.
//! - [`apps`]: app registration at `/api/apps`, by the app's owner with a console token; its operations are shared
//!   with the operator's commands. `redirect_uris.rs`: which redirect URIs an app may register.
//! - `oauth.rs`: browser sign-in with OAuth 2.0 authorization code and PKCE: the sign-in page, the token endpoint,
//!   the server's metadata, and the lookup of an app's client id by its API key.
//! - `console.rs`: the developer console at [`CONSOLE`], a page whose script manages the account's apps through
//!   `/api/apps`. `assets.rs`: the pages' static files, built in by `build.rs`; `html.rs`: the headers every page
//!   is sent with.
//! - [`plans`]: an app's plan, quoted and changed by its owner (or the operator), priced by
//!   `synckit_protocol::plans`.
//! - [`usage`]: an app's usage this billing period against its plan, for its owner and the operator.
//! - `devices.rs`, `keys.rs`: the device registry and the wrapped master key, per (app, user).
//! - `recovery.rs`: the recovery key: set it with the password, prove it, and recover a forgotten password.
//! - [`credentials`]: how login keys and API keys are hashed and API keys made; shared with the admin commands.
//! - [`throttle`]: how fast wrong passwords may be tried, per account and per client address.
//! - [`ApiDoc`]: this service's part of the OpenAPI document.

mod accounts;
pub mod apps;
mod assets;
mod console;
pub mod credentials;
mod devices;
mod html;
mod keys;
mod oauth;
pub mod plans;
mod recovery;
mod redirect_uris;
pub mod throttle;
pub mod usage;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::{delete, get, post, put};
use synckit_http::{Authenticator, TokenKeys};
use synckit_protocol::limits::{MAX_PUBLIC_BODY_BYTES, MAX_RECOVER_BODY_BYTES};
use synckit_protocol::paths;
use synckit_store::{AccountStore, UsageStore};

pub use throttle::{Throttle, ThrottleSettings};

/// What the auth service's handlers share.
#[derive(Clone, Debug, FromRef)]
pub struct AuthState {
    pub accounts: Arc<dyn AccountStore>,
    pub usage: Arc<dyn UsageStore>,
    pub authenticator: Authenticator,
    pub keys: Arc<TokenKeys>,
    pub settings: AuthSettings,
    pub throttle: Arc<Throttle>,
}

impl AuthState {
    /// State over the account and usage stores and a signing key.
    pub fn new(
        accounts: Arc<dyn AccountStore>,
        usage: Arc<dyn UsageStore>,
        keys: Arc<TokenKeys>,
        settings: AuthSettings,
    ) -> Self {
        let authenticator = Authenticator { keys: keys.clone(), accounts: accounts.clone() };
        let throttle = Arc::new(Throttle::new(settings.sign_in));
        Self { accounts, usage, authenticator, keys, settings, throttle }
    }
}

/// Policy of the auth service.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// Anyone may sign up (`SYNCKIT_OPEN_REGISTRATION`, on by default).
    pub open_registration: bool,
    /// Keys the made-up salts pre-login answers for unknown emails, so they are stable per email and
    /// unpredictable to others. At least 32 bytes.
    pub prelogin_key: Arc<[u8]>,
    /// How fast wrong passwords may be tried.
    pub sign_in: ThrottleSettings,
}

/// The auth service's routes.
pub fn router(state: AuthState) -> Router {
    Router::new()
        .route(paths::ACCOUNTS_REGISTER, post(accounts::register).layer(public_body()))
        .route(paths::ACCOUNTS_PRELOGIN, post(accounts::prelogin).layer(public_body()))
        .route(paths::ACCOUNTS_PASSWORD, post(accounts::change_password))
        .route(paths::ACCOUNTS_KEYS, get(keys::account))
        .route(paths::ACCOUNTS_RECOVERY_KEY, post(recovery::set_recovery_key))
        .route(paths::ACCOUNTS_RECOVERY, post(recovery::recovery).layer(public_body()))
        .route(paths::ACCOUNTS_RECOVER, post(recovery::recover).layer(DefaultBodyLimit::max(MAX_RECOVER_BODY_BYTES)))
        .route(paths::ACCOUNTS_CONSOLE_AUTH, post(accounts::console_auth).layer(public_body()))
        .route(paths::APPS, post(apps::create).get(apps::list))
        .route(paths::APP, get(apps::get).delete(apps::delete))
        .route(paths::APP_REDIRECT_URIS, put(apps::set_redirect_uris))
        .route(paths::APP_ROTATE_KEY, post(apps::rotate_key))
        .route(paths::APPS_QUOTE, get(plans::quote))
        .route(paths::APP_PLAN, get(plans::get).put(plans::set))
        .route(paths::APP_USAGE, get(usage::get))
        .route(paths::AUTH, post(accounts::authenticate).layer(public_body()))
        .route(paths::APP_INFO, post(oauth::app_info).layer(public_body()))
        .route(paths::OAUTH_AUTHORIZE, get(oauth::authorize).post(oauth::sign_in_form).layer(public_body()))
        .route(paths::OAUTH_TOKEN, post(oauth::token).layer(public_body()))
        .route(paths::OAUTH_METADATA, get(oauth::metadata))
        .route(OAUTH_ASSETS, get(assets::sign_in))
        .route(CONSOLE, get(console::page))
        .route(CONSOLE_ASSETS, get(assets::console))
        .route(paths::DEVICES, post(devices::register).get(devices::list))
        .route(paths::DEVICE, delete(devices::remove))
        .route(paths::KEYS, get(keys::get).put(keys::put))
        .with_state(state)
}

/// The sign-in page's script, style and icon, and the login-key derivation it shares with the console.
pub const OAUTH_ASSETS: &str = "/oauth/assets/{name}";

/// The developer console's page.
pub const CONSOLE: &str = "/console";

/// The console's own script and style.
pub const CONSOLE_ASSETS: &str = "/console/assets/{name}";

/// The body limit of the endpoints anyone may call without a token.
fn public_body() -> DefaultBodyLimit {
    DefaultBodyLimit::max(MAX_PUBLIC_BODY_BYTES)
}

/// The auth service's endpoints in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    accounts::register,
    accounts::prelogin,
    accounts::change_password,
    accounts::authenticate,
    accounts::console_auth,
    oauth::app_info,
    oauth::token,
    apps::create,
    apps::list,
    apps::get,
    apps::set_redirect_uris,
    apps::rotate_key,
    apps::delete,
    plans::quote,
    plans::get,
    plans::set,
    usage::get,
    recovery::set_recovery_key,
    recovery::recovery,
    recovery::recover,
    devices::register,
    devices::list,
    devices::remove,
    keys::put,
    keys::get,
    keys::account,
))]
#[derive(Debug)]
pub struct ApiDoc;
