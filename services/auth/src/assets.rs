//! The static files of the server's pages, embedded at build time (`build.rs`) from `web/src`, with hash-wasm's
//! Argon2id build from the npm registry.
//!
//! - `/oauth/assets/{name}`: the sign-in page's script, style and icon, and what the console shares with it: the
//!   login-key derivation (`loginkey.js`), the Web Worker that runs it and the Argon2 build the worker loads.
//! - `/console/assets/{name}`: the console's own script (`console.js`, which imports the other `console-*.js` as
//!   modules) and style. The console's HTML is [`CONSOLE_PAGE`].

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

macro_rules! asset {
    ($name:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/assets/", $name))
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// One file: its name, content type and bytes.
type Asset = (&'static str, &'static str, &'static [u8]);

/// Served at `/oauth/assets/{name}`.
const SIGN_IN: [Asset; 6] = [
    ("signin.js", JS, asset!("signin.js")),
    ("loginkey.js", JS, asset!("loginkey.js")),
    ("worker.js", JS, asset!("worker.js")),
    ("argon2.js", JS, asset!("argon2.js")),
    ("signin.css", CSS, asset!("signin.css")),
    ("favicon.svg", "image/svg+xml", asset!("favicon.svg")),
];

/// Served at `/console/assets/{name}`: `console.js` and the modules it imports.
const CONSOLE: [Asset; 7] = [
    ("console.js", JS, asset!("console.js")),
    ("console-api.js", JS, asset!("console-api.js")),
    ("console-chart.js", JS, asset!("console-chart.js")),
    ("console-plan.js", JS, asset!("console-plan.js")),
    ("console-usage.js", JS, asset!("console-usage.js")),
    ("console-util.js", JS, asset!("console-util.js")),
    ("console.css", CSS, asset!("console.css")),
];

/// The console's page, which has no values of the server's in it: its script fills it in.
pub const CONSOLE_PAGE: &str = include_str!(concat!(env!("OUT_DIR"), "/assets/console.html"));

/// The policy of the worker, which is its own document: it loads the Argon2 build from this server and compiles
/// its WebAssembly (`'wasm-unsafe-eval'`, which the pages themselves do not get), and fetches nothing.
const WORKER_POLICY: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'";

/// `GET /oauth/assets/{name}`.
pub async fn sign_in(Path(name): Path<String>) -> Response {
    serve(&SIGN_IN, &name)
}

/// `GET /console/assets/{name}`.
pub async fn console(Path(name): Path<String>) -> Response {
    serve(&CONSOLE, &name)
}

fn serve(assets: &[Asset], name: &str) -> Response {
    let Some((_, content_type, bytes)) = assets.iter().find(|(n, _, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            // Unversioned names: browsers revalidate after a few minutes, so a new build reaches them soon.
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300")),
        ],
        *bytes,
    )
        .into_response();
    if name == "worker.js" {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(WORKER_POLICY));
    }
    response
}
