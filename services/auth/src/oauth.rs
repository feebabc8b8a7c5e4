//! Signing in through the browser: OAuth 2.0 authorization code with PKCE (RFC 6749, RFC 7636 with `S256` only,
//! RFC 8252 for native apps, following RFC 9700), for the apps registered at `/api/apps`.
//!
//! - `GET /oauth/authorize` checks the request ([`request`]) and renders the sign-in page ([`page`]), which derives
//!   the login key in the browser ([`crate::assets`]) and posts it, never the password, to `POST /oauth/authorize`. That
//!   checks the request again and the CSRF token, signs in (or signs up) as `POST /api/sync/auth` does, throttled
//!   alike, and sends the browser back to the app with a single-use code.
//! - `POST /oauth/token` exchanges the code and its verifier for the sign-in token `/api/sync/auth` gives, with
//!   RFC 6749's error bodies.
//! - `GET /.well-known/oauth-authorization-server` (RFC 8414), and `POST /api/sync/app`, which tells an app its
//!   client id from its API key.

mod page;
mod request;

use std::net::SocketAddr;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use synckit_http::auth::TokenClaims;
use synckit_http::{ApiError, Json};
use synckit_protocol::oauth::{
    AppInfo, AppInfoRequest, CHALLENGE_METHOD, CODE_LIFETIME_SECS, OAuthError, ServerMetadata, TokenRequest,
    TokenResponse, VERIFIER_CHARS, VERIFIER_LEN,
};
use synckit_protocol::{Base64Bytes, ErrorBody, ErrorCode, paths};
use synckit_store::{AuthorizationCode, User};
use time::{Duration, OffsetDateTime};
use tracing::instrument;

use crate::AuthState;
use crate::accounts::{app_for_key, create_account, sign_in};
use crate::credentials::{code_hash, new_secret};
use page::SignInForm;
use request::{AuthorizationRequest, Params, Refusal};

/// The cookie that carries the sign-in page's CSRF token: the form's post must carry the same token, which a page
/// of another site can neither read nor make a browser send (`SameSite=Strict`).
const CSRF_COOKIE: &str = "synckit_oauth_csrf";

/// `GET /oauth/authorize`: the sign-in page of an authorization request.
#[instrument(skip_all, fields(app.id))]
pub async fn authorize(State(state): State<AuthState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let request = match Params::parse(query.as_deref().unwrap_or_default()) {
        Ok(params) => request::check(&*state.accounts, &params).await,
        Err(why) => Err(Refusal::broken(&why)),
    };
    let request = match request {
        Ok(request) => request,
        Err(refusal) => return refuse(refusal),
    };
    tracing::Span::current().record("app.id", tracing::field::display(request.app.id));
    let ours =
        |token: &&str| token.len() == 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let (csrf, set_cookie) = match cookie(&headers, CSRF_COOKIE).filter(ours) {
        Some(token) => (token.to_owned(), None),
        None => {
            let token = new_secret();
            let cookie = format!("{CSRF_COOKIE}={token}; Path={}; HttpOnly; SameSite=Strict", paths::OAUTH_AUTHORIZE);
            (token, Some(cookie))
        }
    };
    let mut out = HeaderMap::new();
    if let Some(cookie) = set_cookie {
        out.insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("the cookie is ASCII"));
    }
    let form = SignInForm {
        request: &request,
        csrf: &csrf,
        email: "",
        intent: "sign_in",
        open_registration: state.settings.open_registration,
        error: None,
    };
    page::sign_in(StatusCode::OK, &form, out)
}

/// `POST /oauth/authorize`: the sign-in page's form. On success the browser goes back to the app with a code.
#[instrument(skip_all, fields(app.id, user.id))]
pub async fn sign_in_form(
    State(state): State<AuthState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        return page::message(StatusCode::PAYLOAD_TOO_LARGE, "This form is too large", "The form could not be read.");
    };
    let params =
        match std::str::from_utf8(&body).map_err(|_| "the form is not UTF-8".to_owned()).and_then(Params::parse) {
            Ok(params) => params,
            Err(why) => return refuse(Refusal::broken(&why)),
        };
    let request = match request::check(&*state.accounts, &params).await {
        Ok(request) => request,
        Err(refusal) => return refuse(refusal),
    };
    tracing::Span::current().record("app.id", tracing::field::display(request.app.id));
    if !csrf_holds(&headers, &uri, &params) {
        return page::message(
            StatusCode::FORBIDDEN,
            "Start again",
            "This form expired or did not come from this server's sign-in page. Go back to the app and sign in \
             again.",
        );
    }
    if params.get("cancel").is_some() {
        return redirect_error(&request.redirect_uri, Some(&request.state), "access_denied", "the user cancelled");
    }

    let intent = if params.get("intent") == Some("sign_up") { "sign_up" } else { "sign_in" };
    let email = params.get("email").unwrap_or_default();
    let signed_in = match intent {
        "sign_up" => sign_up(&state, email, &params).await,
        _ => match form_key(&params, "login_key") {
            Ok(login_key) => sign_in(&state, peer, email, &login_key).await,
            Err(e) => Err(e),
        },
    };
    match signed_in {
        Ok(user) => {
            tracing::Span::current().record("user.id", tracing::field::display(user.id));
            match issue_code(&state, &request, &user).await {
                Ok(code) => redirect(&request.redirect_uri, &[("code", &code), ("state", &request.state)]),
                Err(e) => refuse_attempt(&state, &request, &params, intent, &e),
            }
        }
        Err(e) => refuse_attempt(&state, &request, &params, intent, &e),
    }
}

/// Signs up from the page, when the server allows it, and answers the new account.
async fn sign_up(state: &AuthState, email: &str, params: &Params) -> Result<User, ApiError> {
    if !state.settings.open_registration {
        return Err(ApiError::new(ErrorCode::RegistrationClosed, "this server does not allow sign-up"));
    }
    let (salt, login_key) = (form_key(params, "salt")?, form_key(params, "login_key")?);
    let id = create_account(state, email, &salt, &login_key).await?;
    state.accounts.user(id).await?.ok_or_else(|| ApiError::new(ErrorCode::Internal, "the new account is not there"))
}

/// A base64 key of the form. Missing when the page's script did not run, which the page says.
fn form_key(params: &Params, name: &str) -> Result<Base64Bytes, ApiError> {
    let value = params.get(name).ok_or_else(|| {
        ApiError::invalid("this page needs JavaScript to turn the password into a key; turn it on and try again")
    })?;
    let bytes = STANDARD.decode(value).map_err(|_| ApiError::invalid(format!("{name} is not base64")))?;
    Ok(bytes.into())
}

/// Stores a new code's grant and answers the code.
async fn issue_code(state: &AuthState, request: &AuthorizationRequest, user: &User) -> Result<String, ApiError> {
    let code = new_secret();
    let now = OffsetDateTime::now_utc();
    let grant = AuthorizationCode {
        code_hash: code_hash(&code),
        app_id: request.app.id,
        user_id: user.id,
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        token_version: user.token_version,
        expires_at: now + Duration::seconds(CODE_LIFETIME_SECS as i64),
    };
    state.accounts.store_authorization_code(grant, now).await?;
    Ok(code)
}

/// The page again, saying why the attempt was refused, with the email filled in.
fn refuse_attempt(
    state: &AuthState,
    request: &AuthorizationRequest,
    params: &Params,
    intent: &str,
    e: &ApiError,
) -> Response {
    let message = match e.code {
        ErrorCode::InvalidCredentials => "Wrong email or password.".to_owned(),
        ErrorCode::EmailTaken => "An account with this email exists already: sign in instead.".to_owned(),
        ErrorCode::RegistrationClosed => {
            "This server does not allow sign-up: ask its operator for an account.".to_owned()
        }
        ErrorCode::RateLimited => format!(
            "Too many wrong attempts for this account or from this address. Wait {} seconds and try again.",
            e.retry_after_secs.unwrap_or(1)
        ),
        ErrorCode::InvalidRequest => format!("{}.", capitalised(&e.message)),
        _ => "The server could not sign you in just now; try again in a moment.".to_owned(),
    };
    let mut headers = HeaderMap::new();
    if let Some(secs) = e.retry_after_secs {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    let form = SignInForm {
        request,
        csrf: params.get("csrf").unwrap_or_default(),
        email: params.get("email").unwrap_or_default(),
        intent,
        open_registration: state.settings.open_registration,
        error: Some(&message),
    };
    page::sign_in(e.status(), &form, headers)
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// Whether the post carries the CSRF token of its cookie, and comes from this server's own page: a browser that
/// says where a request comes from must say it comes from here. `Sec-Fetch-Site` says it plainly, and proxies leave
/// it alone; only a browser without it is judged by its `Origin`, against the host the request was sent to (the
/// `Host` header, or HTTP/2's authority).
fn csrf_holds(headers: &HeaderMap, uri: &Uri, params: &Params) -> bool {
    let from_here = match headers.get("sec-fetch-site") {
        Some(site) => site == "same-origin" || site == "none",
        None => match headers.get(header::ORIGIN) {
            None => true,
            Some(origin) => {
                let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
                let host = host.or_else(|| uri.authority().map(|a| a.as_str()));
                let origin = origin.to_str().ok();
                let origin_host = origin.and_then(|o| o.strip_prefix("https://").or_else(|| o.strip_prefix("http://")));
                matches!((origin_host, host), (Some(o), Some(h)) if o == h)
            }
        },
    };
    let token = match (cookie(headers, CSRF_COOKIE), params.get("csrf")) {
        (Some(cookie), Some(form)) => bool::from(cookie.as_bytes().ct_eq(form.as_bytes())),
        _ => false,
    };
    from_here && token
}

/// The value of the cookie `name`.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(n, v)| (n == name).then_some(v))
}

/// What a refused authorization request answers.
fn refuse(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Page { status, message } => page::message(status, "This sign-in link does not work", &message),
        Refusal::Redirect { redirect_uri, state, error, description, automatic: true } => {
            redirect_error(&redirect_uri, state.as_deref(), error, &description)
        }
        Refusal::Redirect { redirect_uri, state, error, description, automatic: false } => {
            let back = with_query(&redirect_uri, &error_query(state.as_deref(), error, &description));
            let message = format!("The app's sign-in request is not right ({error}: {description}).");
            page::message_with_link(StatusCode::BAD_REQUEST, "This sign-in link does not work", &message, &back)
        }
    }
}

fn error_query<'a>(state: Option<&'a str>, error: &'a str, description: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut query = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        query.push(("state", state));
    }
    query
}

/// Sends the browser back to the client with an error (RFC 6749 section 4.1.2.1).
fn redirect_error(redirect_uri: &str, state: Option<&str>, error: &str, description: &str) -> Response {
    redirect(redirect_uri, &error_query(state, error, description))
}

/// `redirect_uri` with `query` added to its own.
fn with_query(redirect_uri: &str, query: &[(&str, &str)]) -> String {
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    let query = serde_urlencoded::to_string(query).expect("text pairs encode");
    format!("{redirect_uri}{separator}{query}")
}

/// `303 See Other` to `redirect_uri` with `query` added to its own.
fn redirect(redirect_uri: &str, query: &[(&str, &str)]) -> Response {
    let location = with_query(redirect_uri, query);
    match HeaderValue::from_str(&location) {
        Ok(location) => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, location), (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        )
            .into_response(),
        // A registered redirect URI is ASCII, and so is the encoded query.
        Err(_) => page::message(StatusCode::INTERNAL_SERVER_ERROR, "Cannot return", "The app's address is not valid."),
    }
}

/// Exchanges an authorization code and its PKCE verifier for a sign-in token. The code is spent by any attempt
/// that names it, right or wrong.
#[utoipa::path(post, path = paths::OAUTH_TOKEN, tag = "oauth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "the sign-in token `POST /api/sync/auth` gives", body = TokenResponse),
        (status = 400, description = "RFC 6749 section 5.2: `invalid_request` (a parameter missing, given twice or \
            malformed, or a body that is not form-encoded), `unsupported_grant_type`, `invalid_grant` (the code is \
            unknown, spent, expired, another client's or for another redirect URI, the verifier does not match, or \
            the password changed since)", body = OAuthError),
        (status = 401, description = "`invalid_client`: no app has this client id", body = OAuthError),
    ))]
#[instrument(skip_all, err(Debug, level = "debug"), fields(app.id, user.id))]
pub async fn token(
    State(state): State<AuthState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, TokenError> {
    // The body limit's refusal in the API's shape (`413 body_too_large`), as at every endpoint.
    let body = body.map_err(|_| {
        TokenError::Server(ApiError::new(
            ErrorCode::BodyTooLarge,
            "the request body is larger than this endpoint accepts",
        ))
    })?;
    let form = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    });
    if !form {
        return Err(TokenError::request("the body must be application/x-www-form-urlencoded"));
    }
    let params = std::str::from_utf8(&body)
        .map_err(|_| "the body is not UTF-8".to_owned())
        .and_then(Params::parse)
        .map_err(TokenError::request)?;
    let required = |name: &str| params.get(name).ok_or_else(|| TokenError::request(format!("{name} is required")));
    let grant_type = required("grant_type")?;
    if grant_type != "authorization_code" {
        return Err(TokenError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "the only grant_type is authorization_code",
        ));
    }
    let (client_id, code, redirect_uri, verifier) =
        (required("client_id")?, required("code")?, required("redirect_uri")?, required("code_verifier")?);
    if !VERIFIER_LEN.contains(&verifier.len()) || !verifier.chars().all(|c| VERIFIER_CHARS.contains(c)) {
        return Err(TokenError::request("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~"));
    }
    let app = state
        .accounts
        .app_by_client_id(client_id)
        .await
        .map_err(TokenError::server)?
        .ok_or_else(|| TokenError::new(StatusCode::UNAUTHORIZED, "invalid_client", "no app has this client_id"))?;
    tracing::Span::current().record("app.id", tracing::field::display(app.id));

    let grant = state.accounts.redeem_authorization_code(&code_hash(code)).await.map_err(TokenError::server)?;
    let grant = grant.ok_or_else(|| TokenError::grant("the code is unknown, or was used already"))?;
    if grant.app_id != app.id {
        return Err(TokenError::grant("the code was issued to another client"));
    }
    if grant.expires_at < OffsetDateTime::now_utc() {
        return Err(TokenError::grant("the code expired; sign in again"));
    }
    if grant.redirect_uri != redirect_uri {
        return Err(TokenError::grant("redirect_uri is not the one of the authorization request"));
    }
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if !bool::from(challenge.as_bytes().ct_eq(grant.code_challenge.as_bytes())) {
        return Err(TokenError::grant(format!("code_verifier does not match the {CHALLENGE_METHOD} code_challenge")));
    }
    let user = state.accounts.user(grant.user_id).await.map_err(TokenError::server)?;
    let user = user
        .filter(|user| user.token_version == grant.token_version)
        .ok_or_else(|| TokenError::grant("the account's password changed since the sign-in; sign in again"))?;
    tracing::Span::current().record("user.id", tracing::field::display(user.id));

    let claims = TokenClaims { user_id: user.id, app_id: app.id, token_version: user.token_version, device_id: None };
    let (access_token, expires_at) = state.keys.issue(claims);
    let expires_in = u64::try_from((expires_at - OffsetDateTime::now_utc()).whole_seconds()).unwrap_or(0);
    let answer = TokenResponse {
        access_token,
        token_type: "Bearer".to_owned(),
        expires_in,
        user_id: user.id,
        app_id: app.id,
        email: user.email,
    };
    Ok(([(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")], axum::Json(answer)).into_response())
}

/// An error of the token endpoint: a refusal in RFC 6749's shape, or one of the API's own (a body over the limit,
/// `503 unavailable` with `Retry-After` when the store fails), which RFC 6749 has no code for.
#[derive(Debug)]
pub enum TokenError {
    Refused { status: StatusCode, body: OAuthError },
    Server(ApiError),
}

impl TokenError {
    fn new(status: StatusCode, error: &str, description: impl Into<String>) -> Self {
        let body = OAuthError { error: error.to_owned(), error_description: Some(description.into()) };
        Self::Refused { status, body }
    }

    fn request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    fn server(e: synckit_store::StoreError) -> Self {
        Self::Server(e.into())
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        match self {
            Self::Refused { status, body } => {
                (status, [(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
            }
            Self::Server(e) => e.into_response(),
        }
    }
}

/// Which app an API key is: its id, name and OAuth client id, for an app that signs its users in through the
/// browser.
#[utoipa::path(post, path = paths::APP_INFO, tag = "oauth", request_body = AppInfoRequest, responses(
    (status = 200, body = AppInfo),
    (status = 401, description = "- `invalid_api_key`: the API key belongs to no app", body = ErrorBody),
))]
#[instrument(skip_all, err(Display, level = "debug"), fields(app.id))]
pub async fn app_info(
    State(state): State<AuthState>,
    Json(req): Json<AppInfoRequest>,
) -> Result<Json<AppInfo>, ApiError> {
    let app = app_for_key(&state, &req.api_key).await?;
    Ok(Json(AppInfo { app_id: app.id, name: app.name, client_id: app.client_id }))
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414). The issuer is this server as the request reached it:
/// its `Host`, over https when a proxy in front says so (`X-Forwarded-Proto`).
pub async fn metadata(headers: HeaderMap) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let https = headers.get("x-forwarded-proto").is_some_and(|p| p == "https");
    let issuer = format!("{}://{host}", if https { "https" } else { "http" });
    let strings = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
    Json(ServerMetadata {
        authorization_endpoint: format!("{issuer}{}", paths::OAUTH_AUTHORIZE),
        token_endpoint: format!("{issuer}{}", paths::OAUTH_TOKEN),
        issuer,
        response_types_supported: strings(&["code"]),
        grant_types_supported: strings(&["authorization_code"]),
        code_challenge_methods_supported: strings(&[CHALLENGE_METHOD]),
        token_endpoint_auth_methods_supported: strings(&["none"]),
    })
    .into_response()
}
