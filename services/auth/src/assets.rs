//! The static files of the server's pages, embedded at build time (`build.rs`) from `web/src`, with hash-wasm's
//! Argon2id build from the npm registry.
//!
//! - `/oauth/assets/{name}`: the sign-in page's script, style and icon, and the login-key derivation
//!   (`loginkey.js`), the Web Worker that runs it and the Argon2 build the worker loads.

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

/// The policy of the worker, which is its own document: it loads the Argon2 build from this server and compiles
/// its WebAssembly (`'wasm-unsafe-eval'`, which the pages themselves do not get), and fetches nothing.
const WORKER_POLICY: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'";

/// `GET /oauth/assets/{name}`.
pub async fn sign_in(Path(name): Path<String>) -> Response {
    serve(&SIGN_IN, &name)
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
