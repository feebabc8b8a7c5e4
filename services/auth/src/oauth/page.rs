//! The sign-in page: HTML written here, with every value escaped, and the headers that lock it down. Its script,
//! style, icon and the Argon2 worker are the static assets of [`crate::assets`]; the page has no inline script or
//! style, so its Content-Security-Policy allows only files of this server.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::request::AuthorizationRequest;
use crate::html;

/// What the sign-in form shows and carries.
pub struct SignInForm<'a> {
    pub request: &'a AuthorizationRequest,
    /// The CSRF token, also in the page's cookie.
    pub csrf: &'a str,
    /// The email to fill in again after a refusal.
    pub email: &'a str,
    /// `sign_in` or `sign_up`.
    pub intent: &'a str,
    /// Whether the page offers sign-up.
    pub open_registration: bool,
    /// What went wrong with the last attempt.
    pub error: Option<&'a str>,
}

/// The sign-in page, with `status` (200, or the refusal of the attempt before).
pub fn sign_in(status: StatusCode, form: &SignInForm<'_>, headers: HeaderMap) -> Response {
    let request = form.request;
    let app = escape(&request.app.name);
    let hidden = [
        ("response_type", "code"),
        ("client_id", request.app.client_id.as_str()),
        ("redirect_uri", request.redirect_uri.as_str()),
        ("state", request.state.as_str()),
        ("code_challenge", request.code_challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("csrf", form.csrf),
        ("intent", form.intent),
        ("login_key", ""),
        ("salt", ""),
    ]
    .iter()
    .map(|(name, value)| format!(r#"<input type="hidden" name="{name}" value="{}">"#, escape(value)))
    .collect::<Vec<_>>()
    .join("\n      ");
    let error = form.error.map(escape).unwrap_or_default();
    let error_hidden = if form.error.is_some() { "" } else { " hidden" };
    let switch = if form.open_registration {
        r#"<p class="switch" id="switch" hidden><span id="switch-text">New here?</span>
      <button type="button" class="link" id="switch-button">Create an account</button></p>"#
    } else {
        ""
    };
    let body = format!(
        r#"<main>
    <p class="brand"><img src="/oauth/assets/favicon.svg" alt="">SyncKit</p>
    <h1 id="heading">Sign in to {app}</h1>
    <p class="error" id="error" role="alert"{error_hidden}>{error}</p>
    <form id="signin" method="post" action="/oauth/authorize" data-app="{app}" novalidate>
      {hidden}
      <label for="email">Email</label>
      <input id="email" name="email" type="email" autocomplete="username" required autofocus value="{email}">
      <label for="password">Password</label>
      <input id="password" type="password" autocomplete="current-password" required>
      <div id="repeat-row" hidden>
        <label for="repeat">Repeat the password</label>
        <input id="repeat" type="password" autocomplete="new-password">
      </div>
      <button type="submit" id="submit-button">Sign in</button>
      <div class="progress" id="progress" role="status" hidden><span class="spinner"></span>
        <span>Deriving a key from your password…</span></div>
      <button type="submit" class="link cancel" name="cancel" value="1" formnovalidate>Cancel and return to {app}</button>
    </form>
    {switch}
    <noscript><p class="error">This page needs JavaScript: it turns your password into a key in this browser, so
      that the password itself is never sent.</p></noscript>
    <p class="note">{destination}</p>
    <p class="note">Your password never leaves this browser: a key derived from it is sent instead.</p>
  </main>"#,
        email = escape(form.email),
        destination = escape(&destination(request)),
    );
    respond(status, &format!("Sign in to {}", request.app.name), &body, &form_action(&request.redirect_uri), headers)
}

/// A page that only says `message`: for a request whose client or redirect URI cannot be trusted, and so goes
/// nowhere.
pub fn message(status: StatusCode, title: &str, message: &str) -> Response {
    respond(status, title, &message_body(title, message, ""), "'none'", HeaderMap::new())
}

/// A page that says `message` and links back to the app at `back`, where the server does not send the browser on
/// its own.
pub fn message_with_link(status: StatusCode, title: &str, message: &str, back: &str) -> Response {
    let link = format!(r#"<p><a href="{}">Return to the app</a></p>"#, escape(back));
    respond(status, title, &message_body(title, message, &link), "'none'", HeaderMap::new())
}

fn message_body(title: &str, message: &str, extra: &str) -> String {
    format!(
        r#"<main>
    <p class="brand"><img src="/oauth/assets/favicon.svg" alt="">SyncKit</p>
    <h1>{}</h1>
    <p class="error" role="alert">{}</p>
    {extra}
  </main>"#,
        escape(title),
        escape(message)
    )
}

fn respond(status: StatusCode, title: &str, body: &str, form_action: &str, headers: HeaderMap) -> Response {
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{} · SyncKit</title>
  <link rel="icon" href="/oauth/assets/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/oauth/assets/signin.css">
  <script src="/oauth/assets/loginkey.js" defer></script>
  <script src="/oauth/assets/signin.js" defer></script>
</head>
<body>
  {body}
</body>
</html>
"#,
        escape(title)
    );
    let csp = format!(
        "default-src 'none'; script-src 'self'; worker-src 'self'; connect-src 'self'; style-src 'self'; \
         img-src 'self'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    html::page(status, html, &csp, headers)
}

/// Where the person goes after signing in, and who registered the app: the page cannot vouch for an app that any
/// account may have registered under any name.
fn destination(request: &AuthorizationRequest) -> String {
    let uri = &request.redirect_uri;
    let place = match uri.split_once("://") {
        Some(("https", rest)) => format!("the website {}", rest.split(['/', '?', ':']).next().unwrap_or_default()),
        Some(_) => "the app on this device".to_owned(),
        None => format!("the app on this device ({})", uri.split(':').next().unwrap_or_default()),
    };
    let who = match request.app.owner_id {
        None => "registered by this server's operator",
        Some(_) => "registered by a SyncKit account, not by this server's operator",
    };
    format!("After you sign in, you go back to {place}. {} is {who}.", request.app.name)
}

/// The `form-action` sources of a page whose form posts to this server, which then sends the browser on to
/// `redirect_uri` (browsers hold the redirect after a form's post to the form's policy too): this server, and the
/// redirect URI's origin, or its scheme for a private-use one. The redirect URI matched one the app registered, so an
/// http(s) origin is made of the pattern's host and port characters, none of which ends a CSP source; what follows a
/// private-use scheme might, so it is left out.
fn form_action(redirect_uri: &str) -> String {
    let target = match redirect_uri.split_once("://") {
        // IPv6 literals are not CSP host sources; a [::1] loopback redirect is allowed by its scheme.
        Some(("http", rest)) if rest.starts_with('[') => "http:".to_owned(),
        Some((scheme @ ("http" | "https"), rest)) => {
            let authority = rest.split(['/', '?']).next().unwrap_or_default();
            format!("{scheme}://{authority}")
        }
        // A private-use scheme: by the scheme alone, whatever follows it.
        _ => format!("{}:", redirect_uri.split(':').next().unwrap_or_default()),
    };
    format!("'self' {target}")
}

/// `text` safe inside HTML text and double-quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_action_allows_this_server_and_the_redirect_target() {
        assert_eq!(form_action("http://127.0.0.1:5312/callback"), "'self' http://127.0.0.1:5312");
        assert_eq!(form_action("https://a.example/cb?x=1"), "'self' https://a.example");
        assert_eq!(form_action("https://a.example:8443"), "'self' https://a.example:8443");
        assert_eq!(form_action("com.example.app:/cb"), "'self' com.example.app:");
        assert_eq!(form_action("http://[::1]:5312/cb"), "'self' http:");
        assert_eq!(form_action("com.example.app://a;b/cb"), "'self' com.example.app:");
    }

    #[test]
    fn markup_is_escaped() {
        assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }
}
