//! The sign-in page's static files, embedded at build time (`build.rs`): its script, style and icon from `web/src`,
//! the Web Worker that derives the login key, and hash-wasm's Argon2id build from the npm registry, which the worker
//! loads. Served at `/oauth/assets/{name}`.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

macro_rules! asset {
    ($name:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/assets/", $name))
    };
}

/// Each asset: its name, content type and bytes.
const ASSETS: [(&str, &str, &[u8]); 5] = [
    ("signin.js", "text/javascript; charset=utf-8", asset!("signin.js")),
    ("worker.js", "text/javascript; charset=utf-8", asset!("worker.js")),
    ("argon2.js", "text/javascript; charset=utf-8", asset!("argon2.js")),
    ("signin.css", "text/css; charset=utf-8", asset!("signin.css")),
    ("favicon.svg", "image/svg+xml", asset!("favicon.svg")),
];

/// The policy of the worker, which is its own document: it loads the Argon2 build from this server and compiles
/// its WebAssembly (`'wasm-unsafe-eval'`, which the page itself does not get), and fetches nothing.
const WORKER_POLICY: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'";

/// `GET /oauth/assets/{name}`.
pub async fn get(Path(name): Path<String>) -> Response {
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
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
