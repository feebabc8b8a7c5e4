//! The developer console at `GET /console`: one page where an account signs in and manages its apps, their plans,
//! and reads their usage. The page is static (`web/src/console.html`); its script (`console.js`) derives the login
//! key in the browser as the sign-in page does, so that only the key reaches the server, signs in with
//! `POST /api/accounts/console-auth`, and calls `/api/apps` with the console token, which it keeps in the tab's
//! session storage (gone when the tab closes; console tokens last 15 minutes).

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::assets::CONSOLE_PAGE;
use crate::html;

/// Only this server's files, no inline script or style, no form that posts anywhere (the script sends everything
/// with `fetch`), and in no frame.
const POLICY: &str = "default-src 'none'; script-src 'self'; worker-src 'self'; connect-src 'self'; style-src 'self'; \
                      img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// `GET /console`.
pub async fn page() -> Response {
    html::page(StatusCode::OK, CONSOLE_PAGE.to_owned(), POLICY, HeaderMap::new())
}
