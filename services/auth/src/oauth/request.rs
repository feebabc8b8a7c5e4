//! An authorization request (`GET` or `POST /oauth/authorize`): its parameters, checked in the order RFC 6749
//! section 4.1.2.1 asks for. Until the client and its redirect URI are known to be good, a refusal is told on the
//! page and the browser goes nowhere; after that it goes back to the client, at the redirect URI, with the `state`.

use axum::http::StatusCode;
use synckit_protocol::oauth::CHALLENGE_METHOD;
use synckit_store::{AccountStore, App};

/// The longest `state` taken: enough for any client's random value, and a bound on what the page echoes.
pub const MAX_STATE_CHARS: usize = 512;

/// The most parameters a request may have: an authorization request has six, the form eleven.
const MAX_PARAMS: usize = 32;

/// The form or query parameters of a request, each name at most once (RFC 6749 section 3.1).
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` text; `Err` names a parameter given twice, or says the text is
    /// not form-encoded.
    pub fn parse(text: &str) -> Result<Self, String> {
        // Counted before parsing: the check for names given twice below compares each with those before it.
        if text.split('&').count() > MAX_PARAMS {
            return Err(format!("more than {MAX_PARAMS} parameters"));
        }
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(text).map_err(|_| "the parameters are not form-encoded".to_owned())?;
        for (i, (name, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(earlier, _)| earlier == name) {
                return Err(format!("the parameter {name} is given more than once"));
            }
        }
        Ok(Self(pairs))
    }

    /// The parameter `name`; an empty one counts as missing.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, v)| n == name && !v.is_empty()).map(|(_, v)| v.as_str())
    }
}

/// A request with a known client and a redirect URI it registered, and every other parameter good.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub app: App,
    pub redirect_uri: String,
    pub state: String,
    pub code_challenge: String,
}

/// Why a request was refused, and where to say so.
#[derive(Debug)]
pub enum Refusal {
    /// The client or redirect URI cannot be trusted: the page says why, and the browser stays.
    Page { status: StatusCode, message: String },
    /// Told to the client at its redirect URI (RFC 6749 section 4.1.2.1): at once when `automatic`, else by a link
    /// on the page (see [`sends_back_unasked`]).
    Redirect { redirect_uri: String, state: Option<String>, error: &'static str, description: String, automatic: bool },
}

/// Whether the server may send the browser to `redirect_uri` of `app` before the person has done anything: for an
/// app the operator registered, or a redirect URI that stays on the device (loopback, a private-use scheme).
/// Otherwise anyone could register an app with a web redirect URI of their choosing and use this server as an open
/// redirector (RFC 9700 section 4.11.2): the page says what is wrong and links back instead.
pub fn sends_back_unasked(app: &App, redirect_uri: &str) -> bool {
    app.owner_id.is_none() || !redirect_uri.starts_with("https://")
}

impl Refusal {
    /// Parameters that could not be read at all.
    pub fn broken(why: &str) -> Self {
        Self::Page { status: StatusCode::BAD_REQUEST, message: format!("This sign-in link is broken: {why}.") }
    }
}

/// Checks an authorization request's parameters (those of the sign-in form's post included).
pub async fn check(accounts: &dyn AccountStore, params: &Params) -> Result<AuthorizationRequest, Refusal> {
    let page = |status, message: String| Refusal::Page { status, message };
    let client_id = params.get("client_id").ok_or_else(|| {
        page(StatusCode::BAD_REQUEST, "This sign-in link names no app (client_id is missing).".to_owned())
    })?;
    let app = accounts.app_by_client_id(client_id).await.map_err(|e| {
        tracing::error!(error = %e, "looking up an OAuth client failed");
        page(StatusCode::INTERNAL_SERVER_ERROR, "The server could not look up the app; try again.".to_owned())
    })?;
    let app = app.ok_or_else(|| {
        page(
            StatusCode::BAD_REQUEST,
            "This sign-in link is for an app this server does not know (unknown client_id). Ask the app's developer \
             to check its client id."
                .to_owned(),
        )
    })?;
    let redirect_uri = params.get("redirect_uri").ok_or_else(|| {
        page(StatusCode::BAD_REQUEST, format!("{} did not say where to return to (redirect_uri is missing).", app.name))
    })?;
    if !app.redirect_uris.iter().any(|registered| redirect_matches(registered, redirect_uri)) {
        return Err(page(
            StatusCode::BAD_REQUEST,
            format!(
                "{} asked to return to an address it has not registered ({}), so this page will not send you there. \
                 Ask the app's developer to register it.",
                app.name,
                shortened(redirect_uri)
            ),
        ));
    }

    let automatic = sends_back_unasked(&app, redirect_uri);
    let redirect = |error, description: &str| Refusal::Redirect {
        automatic,
        redirect_uri: redirect_uri.to_owned(),
        state: params.get("state").filter(|s| s.chars().count() <= MAX_STATE_CHARS).map(str::to_owned),
        error,
        description: description.to_owned(),
    };
    if params.get("response_type") != Some("code") {
        return Err(redirect("unsupported_response_type", "response_type must be code"));
    }
    let state = match params.get("state") {
        None => return Err(redirect("invalid_request", "state is required")),
        Some(state) if state.chars().count() > MAX_STATE_CHARS => {
            return Err(redirect("invalid_request", "state is longer than 512 characters"));
        }
        Some(state) => state,
    };
    let code_challenge = params
        .get("code_challenge")
        .ok_or_else(|| redirect("invalid_request", "code_challenge is required (PKCE, RFC 7636)"))?;
    if params.get("code_challenge_method") != Some(CHALLENGE_METHOD) {
        return Err(redirect("invalid_request", "code_challenge_method must be S256"));
    }
    if !is_s256_challenge(code_challenge) {
        return Err(redirect("invalid_request", "code_challenge must be 43 characters of unpadded base64url"));
    }
    Ok(AuthorizationRequest {
        redirect_uri: redirect_uri.to_owned(),
        state: state.to_owned(),
        code_challenge: code_challenge.to_owned(),
        app,
    })
}

/// At most 100 characters of `text`, for a page that shows what a request asked for.
fn shortened(text: &str) -> String {
    match text.char_indices().nth(100) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// A SHA-256 digest in unpadded base64url.
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `requested` is the registered redirect URI `registered`: the same text, or, when `registered` is on a
/// loopback IP literal over http, the same text but for the port, which a native app picks when it starts
/// listening (RFC 8252 section 7.3). `localhost` is matched exactly, as RFC 8252 section 8.3 advises against it.
pub fn redirect_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    ["http://127.0.0.1", "http://[::1]"].iter().any(|host| {
        match (registered.strip_prefix(host), requested.strip_prefix(host)) {
            (Some(registered), Some(requested)) => match (after_port(registered), after_port(requested)) {
                (Some(registered), Some(requested)) => registered == requested,
                _ => false,
            },
            _ => false,
        }
    })
}

/// What follows the host of a URI once its port (if any) is taken off: a path or query, or nothing. `None` for a
/// port that is not one, or for anything else after the host (`127.0.0.1.example.com`).
fn after_port(rest: &str) -> Option<&str> {
    let rest = match rest.strip_prefix(':') {
        Some(port) => {
            let digits = port.bytes().take_while(u8::is_ascii_digit).count();
            port[..digits].parse::<u16>().ok().filter(|&p| p > 0)?;
            &port[digits..]
        }
        None => rest,
    };
    (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_ip_redirects_take_any_port_and_nothing_else_differs() {
        let ok = [
            ("https://a.example/cb", "https://a.example/cb"),
            ("http://127.0.0.1/callback", "http://127.0.0.1:53124/callback"),
            ("http://127.0.0.1:8000/callback", "http://127.0.0.1:53124/callback"),
            ("http://127.0.0.1/callback", "http://127.0.0.1/callback"),
            ("http://[::1]/callback", "http://[::1]:9/callback"),
            ("http://127.0.0.1", "http://127.0.0.1:80"),
            ("com.example.app:/cb", "com.example.app:/cb"),
        ];
        for (registered, requested) in ok {
            assert!(redirect_matches(registered, requested), "{registered} takes {requested}");
        }
        let refused = [
            ("https://a.example/cb", "https://a.example:444/cb"),
            ("https://a.example/cb", "https://a.example/cb/"),
            ("https://a.example/cb", "https://a.example/cb?x=1"),
            ("http://localhost/callback", "http://localhost:53124/callback"),
            ("http://127.0.0.1/callback", "http://127.0.0.1:53124/other"),
            ("http://127.0.0.1/callback", "http://127.0.0.1:0/callback"),
            ("http://127.0.0.1/callback", "http://127.0.0.1:99999/callback"),
            ("http://127.0.0.1/callback", "http://127.0.0.1:/callback"),
            ("http://127.0.0.1/callback", "http://127.0.0.1.evil.example/callback"),
            ("http://127.0.0.1/callback", "http://127.0.0.1:80@evil.example/callback"),
            ("http://127.0.0.1/callback", "http://[::1]:80/callback"),
            ("http://127.0.0.1/callback", "https://127.0.0.1:80/callback"),
            ("com.example.app:/cb", "com.example.app:/cb2"),
        ];
        for (registered, requested) in refused {
            assert!(!redirect_matches(registered, requested), "{registered} refuses {requested}");
        }
    }

    #[test]
    fn parameters_are_given_once() {
        let params = Params::parse("a=1&b=&c=x%20y").unwrap();
        assert_eq!((params.get("a"), params.get("b"), params.get("c")), (Some("1"), None, Some("x y")));
        assert!(Params::parse("a=1&a=2").unwrap_err().contains("a is given more than once"));
        let many = (0..33).map(|i| format!("p{i}=1")).collect::<Vec<_>>().join("&");
        assert!(Params::parse(&many).unwrap_err().contains("more than 32 parameters"));
        assert_eq!(shortened(&"x".repeat(101)), format!("{}…", "x".repeat(100)));
    }

    #[test]
    fn challenges_are_unpadded_base64url_digests() {
        assert!(is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c"));
        assert!(!is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM="));
        assert!(!is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"));
    }
}
