//! What every HTML page of this server (the sign-in page, the console) is sent with: its Content-Security-Policy, and
//! the headers that keep it out of frames, caches and content sniffing.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// `html` with `status`, the policy `csp` and the page headers, on top of `headers`.
pub(crate) fn page(status: StatusCode, html: String, csp: &str, mut headers: HeaderMap) -> Response {
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_str(csp).expect("the policy is ASCII"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: with it, browsers send `Origin: null` on the sign-in form's post, which the CSRF check
    // refuses. `same-origin` keeps a page's address (an authorization request) from the app it redirects to.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    (status, headers, html).into_response()
}
