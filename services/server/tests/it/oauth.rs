//! Browser sign-in over HTTP, as a browser and a native app would speak it (the real browser's run is in
//! `tests/browser`): the authorization request and its page, the form's post, the redirect with a code, and the
//! exchange of code and verifier for a token that syncs. And everything refused: wrong verifier, reused, expired or
//! another client's code, unregistered redirect URIs, missing or bad state and challenge, `plain`, a deleted app, a
//! changed password, cross-site posts.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::{HeaderMap, LOCATION};
use reqwest::{Method, StatusCode, redirect};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use synckit_store::AuthorizationCode;
use synckit_testkit::{Engine, TestServer, TestUser, b64, entries, on_each_engine, random_bytes};
use time::{Duration, OffsetDateTime};

on_each_engine!(
    a_user_signs_in_in_the_browser_and_the_app_gets_a_token_that_syncs,
    codes_are_refused_unless_everything_matches,
    authorization_requests_are_checked_before_the_page_shows,
    the_form_refuses_cross_site_posts_and_wrong_passwords,
    people_sign_up_from_the_page_when_registration_is_open,
    a_server_closed_to_sign_up_neither_offers_nor_takes_it,
    the_page_its_assets_and_the_metadata_are_served_locked_down,
);

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const STATE: &str = "af0ifjsldkj";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A browser: keeps its cookie by hand, follows no redirect, so the test sees where it is sent.
struct Browser<'a> {
    app: &'a TestServer,
    http: reqwest::Client,
    cookie: Option<String>,
}

/// An answer: status, headers and body text.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    /// Where a redirect sends the browser.
    fn location(&self) -> &str {
        self.headers.get(LOCATION).map(|l| l.to_str().unwrap()).unwrap_or_else(|| panic!("no redirect: {}", self.body))
    }

    /// The value of the page's hidden field `name`.
    fn field(&self, name: &str) -> String {
        let marker = format!(r#"name="{name}" value=""#);
        let start =
            self.body.find(&marker).unwrap_or_else(|| panic!("no field {name} in {}", self.body)) + marker.len();
        self.body[start..].split('"').next().unwrap().to_owned()
    }
}

/// The parameters of a redirect's query.
fn query(location: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(location.split_once('?').map(|(_, q)| q).unwrap_or_default()).unwrap()
}

fn param<'q>(query: &'q [(String, String)], name: &str) -> Option<&'q str> {
    query.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestServer) -> Self {
        let http = reqwest::Client::builder().redirect(redirect::Policy::none()).build().unwrap();
        Self { app, http, cookie: None }
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        form: Option<&[(&str, &str)]>,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.app.url));
        if let Some(cookie) = &self.cookie {
            req = req.header("cookie", cookie);
        }
        for (name, value) in extra {
            req = req.header(*name, *value);
        }
        if let Some(form) = form {
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(serde_urlencoded::to_string(form).unwrap());
        }
        let resp = req.send().await.unwrap();
        if let Some(set) = resp.headers().get("set-cookie") {
            self.cookie = Some(set.to_str().unwrap().split(';').next().unwrap().to_owned());
        }
        let (status, headers) = (resp.status(), resp.headers().clone());
        Answer { status, headers, body: resp.text().await.unwrap() }
    }

    /// `GET /oauth/authorize` with these parameters.
    async fn authorize(&mut self, params: &[(&str, &str)]) -> Answer {
        let path = format!("/oauth/authorize?{}", serde_urlencoded::to_string(params).unwrap());
        self.send(Method::GET, &path, None, &[]).await
    }

    /// The page's form posted as its script does, with `fields` set or added.
    async fn submit(&mut self, page: &Answer, fields: &[(&str, &str)], extra: &[(&str, &str)]) -> Answer {
        let names = ["response_type", "client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method"];
        let mut form: Vec<(String, String)> =
            names.iter().chain(&["csrf", "intent"]).map(|n| ((*n).to_owned(), page.field(n))).collect();
        for (name, value) in fields {
            form.retain(|(n, _)| n != name);
            form.push(((*name).to_owned(), (*value).to_owned()));
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        self.send(Method::POST, "/oauth/authorize", Some(&form), extra).await
    }

    /// The whole sign-in: the page, then the form with `user`'s credentials; the redirect's query.
    async fn sign_in(&mut self, client_id: &str, redirect_uri: &str, user: &TestUser) -> Vec<(String, String)> {
        let page = self.authorize(&request(client_id, redirect_uri, &challenge(VERIFIER))).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let signed_in = self.submit(&page, &[("email", &user.email), ("login_key", &b64(&user.login_key))], &[]).await;
        assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.body);
        assert!(signed_in.location().starts_with(&format!("{redirect_uri}?")), "{}", signed_in.location());
        query(signed_in.location())
    }
}

fn request<'p>(client_id: &'p str, redirect_uri: &'p str, challenge: &'p str) -> Vec<(&'p str, &'p str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("state", STATE),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
}

/// `POST /oauth/token`: status and JSON body.
async fn exchange(app: &TestServer, form: &[(&str, &str)]) -> (StatusCode, Value, HeaderMap) {
    let resp = app
        .http
        .post(format!("{}/oauth/token", app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap())
        .send()
        .await
        .unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, resp.json().await.unwrap(), headers)
}

fn token_form<'f>(
    code: &'f str,
    redirect_uri: &'f str,
    client_id: &'f str,
    verifier: &'f str,
) -> Vec<(&'f str, &'f str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("client_id", client_id),
        ("code_verifier", verifier),
    ]
}

/// An app of a new owner, with these redirect URIs: (client id, API key, app id).
async fn registered_app(app: &TestServer, redirect_uris: &[&str]) -> (String, String, String) {
    let console = app.console_token(&app.user().await).await;
    let (status, created) =
        app.post("/api/apps", Some(&console), json!({"name": "Notes <&>", "redirect_uris": redirect_uris})).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let field = |name: &str| created[name].as_str().unwrap().to_owned();
    (field("client_id"), field("api_key"), field("app_id"))
}

fn assert_oauth_error(status: StatusCode, body: &Value, expected: (StatusCode, &str), says: &str) {
    assert_eq!((status, body["error"].as_str().unwrap()), (expected.0, expected.1), "{body}");
    assert!(body["error_description"].as_str().unwrap().contains(says), "{body} should say {says:?}");
    assert_eq!(body.as_object().unwrap().len(), 2, "RFC 6749's shape, nothing else: {body}");
}

async fn a_user_signs_in_in_the_browser_and_the_app_gets_a_token_that_syncs(app: TestServer) {
    let (client_id, api_key, app_id) = registered_app(&app, &["http://127.0.0.1/callback"]).await;
    let ada = app.user_in_app(&api_key).await;
    // The app learns its client id from its API key.
    let (status, info) = app.post("/api/sync/app", None, json!({"api_key": api_key})).await;
    assert_eq!(
        (status, &info),
        (StatusCode::OK, &json!({"app_id": app_id, "name": "Notes <&>", "client_id": client_id}))
    );
    let (status, refused) = app.post("/api/sync/app", None, json!({"api_key": "sk_nothing"})).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_api_key")));

    // The app listens on a port of its choosing; the registered loopback URI takes it.
    let redirect_uri = "http://127.0.0.1:53682/callback";
    let mut browser = Browser::new(&app);
    let back = browser.sign_in(&client_id, redirect_uri, &ada).await;
    assert_eq!(param(&back, "state"), Some(STATE));
    let code = param(&back, "code").unwrap();
    assert_eq!(URL_SAFE_NO_PAD.decode(code).unwrap().len(), 32, "256 bits");

    let (status, token, headers) = exchange(&app, &token_form(code, redirect_uri, &client_id, VERIFIER)).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert_eq!(headers["cache-control"], "no-store");
    let fields: Vec<&String> = token.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["access_token", "app_id", "email", "expires_in", "token_type", "user_id"]);
    assert_eq!(token["email"], ada.email);
    assert_eq!((&token["token_type"], &token["app_id"]), (&json!("Bearer"), &json!(app_id)));
    assert_eq!(token["user_id"], ada.user_id.to_string());
    let expires_in = token["expires_in"].as_u64().unwrap();
    assert!((14 * 60..=15 * 60).contains(&expires_in), "a sign-in token's 15 minutes: {expires_in}");

    // It is the token /api/sync/auth gives: it registers a device, whose token pushes, and Ada's other device
    // pulls what it pushed.
    let (device, device_token) = app.device(token["access_token"].as_str().unwrap(), "phone").await;
    let pushed = entries(2);
    let body = json!({"device_id": device, "entries": pushed.iter().map(|(id, p)| json!({"change_id": id, "payload": b64(p)})).collect::<Vec<_>>()});
    let (status, answer) = app.post("/api/sync/push", Some(&device_token), body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let pulled = app.pull_all(&ada.token, 0).await;
    assert_eq!(pulled.iter().map(|(_, id, p)| (*id, p.clone())).collect::<Vec<_>>(), pushed);

    // The code is spent.
    let (status, body, _) = exchange(&app, &token_form(code, redirect_uri, &client_id, VERIFIER)).await;
    assert_oauth_error(status, &body, (StatusCode::BAD_REQUEST, "invalid_grant"), "used already");
}

async fn codes_are_refused_unless_everything_matches(app: TestServer) {
    let (client_id, api_key, app_id) = registered_app(&app, &["http://127.0.0.1/callback"]).await;
    let (other_client, _, _) = registered_app(&app, &["http://127.0.0.1/callback"]).await;
    let ada = app.user_in_app(&api_key).await;
    let uri = "http://127.0.0.1:40001/callback";
    let mut browser = Browser::new(&app);
    let grant_error = (StatusCode::BAD_REQUEST, "invalid_grant");

    // A wrong verifier spends the code: the right one then finds nothing.
    let code = param(&browser.sign_in(&client_id, uri, &ada).await, "code").unwrap().to_owned();
    let wrong = "x".repeat(43);
    let (status, body, _) = exchange(&app, &token_form(&code, uri, &client_id, &wrong)).await;
    assert_oauth_error(status, &body, grant_error, "code_verifier does not match");
    let (status, body, _) = exchange(&app, &token_form(&code, uri, &client_id, VERIFIER)).await;
    assert_oauth_error(status, &body, grant_error, "used already");

    // Another client's code, and another redirect URI than the request's (another port too).
    let code = param(&browser.sign_in(&client_id, uri, &ada).await, "code").unwrap().to_owned();
    let (status, body, _) = exchange(&app, &token_form(&code, uri, &other_client, VERIFIER)).await;
    assert_oauth_error(status, &body, grant_error, "another client");
    let code = param(&browser.sign_in(&client_id, uri, &ada).await, "code").unwrap().to_owned();
    let (status, body, _) =
        exchange(&app, &token_form(&code, "http://127.0.0.1:40002/callback", &client_id, VERIFIER)).await;
    assert_oauth_error(status, &body, grant_error, "redirect_uri");

    // An expired code: its grant stored as the page would have, a minute and more ago.
    let code = "expired-code-expired-code-expired-code-expi";
    let grant = AuthorizationCode {
        code_hash: Sha256::digest(code.as_bytes()).to_vec(),
        app_id: app_id.parse().unwrap(),
        user_id: ada.user_id,
        redirect_uri: uri.to_owned(),
        code_challenge: challenge(VERIFIER),
        token_version: 0,
        expires_at: OffsetDateTime::now_utc() - Duration::seconds(1),
    };
    let stored_at = OffsetDateTime::now_utc() - Duration::seconds(61);
    app.engines.accounts.store_authorization_code(grant, stored_at).await.unwrap();
    let (status, body, _) = exchange(&app, &token_form(code, uri, &client_id, VERIFIER)).await;
    assert_oauth_error(status, &body, grant_error, "expired");

    // A password change in between voids the code.
    let code = param(&browser.sign_in(&client_id, uri, &ada).await, "code").unwrap().to_owned();
    let new_key = random_bytes(32);
    let body = json!({"current_login_key": b64(&ada.login_key), "salt": b64(&random_bytes(32)), "login_key": b64(&new_key), "keys": []});
    let (status, changed) = app.post("/api/accounts/password", Some(&ada.token), body).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let (status, body, _) = exchange(&app, &token_form(&code, uri, &client_id, VERIFIER)).await;
    assert_oauth_error(status, &body, grant_error, "password changed");
    let ada = TestUser { login_key: new_key, ..ada };

    // A deleted app's codes die with it, and its client id is unknown.
    let code = param(&browser.sign_in(&client_id, uri, &ada).await, "code").unwrap().to_owned();
    assert!(app.engines.accounts.delete_app(app_id.parse().unwrap()).await.unwrap());
    let (status, body, _) = exchange(&app, &token_form(&code, uri, &client_id, VERIFIER)).await;
    assert_oauth_error(status, &body, (StatusCode::UNAUTHORIZED, "invalid_client"), "client_id");
    assert_eq!(app.engines.accounts.redeem_authorization_code(&Sha256::digest(code.as_bytes())).await.unwrap(), None);

    // Malformed exchanges.
    let (status, body, _) = exchange(&app, &[("grant_type", "password"), ("username", "ada")]).await;
    assert_oauth_error(status, &body, (StatusCode::BAD_REQUEST, "unsupported_grant_type"), "authorization_code");
    let (status, body, _) = exchange(&app, &token_form("c", uri, &other_client, "short")).await;
    assert_oauth_error(status, &body, (StatusCode::BAD_REQUEST, "invalid_request"), "code_verifier");
    let (status, body, _) = exchange(&app, &[("grant_type", "authorization_code"), ("code", "c")]).await;
    assert_oauth_error(status, &body, (StatusCode::BAD_REQUEST, "invalid_request"), "is required");
    let twice = [token_form("c", uri, &other_client, VERIFIER), vec![("code", "d")]].concat();
    let (status, body, _) = exchange(&app, &twice).await;
    assert_oauth_error(status, &body, (StatusCode::BAD_REQUEST, "invalid_request"), "more than once");
    let (status, body) = app.post("/oauth/token", None, json!({"grant_type": "authorization_code"})).await;
    assert_oauth_error(status, &body, (StatusCode::BAD_REQUEST, "invalid_request"), "form-urlencoded");
}

async fn authorization_requests_are_checked_before_the_page_shows(app: TestServer) {
    let (client_id, _, _) =
        registered_app(&app, &["http://127.0.0.1/callback", "https://notes.example.com/cb?x=1"]).await;
    let mut browser = Browser::new(&app);
    let good = challenge(VERIFIER);

    // An unknown client or an unregistered redirect URI: said on the page, and the browser goes nowhere.
    for (client, uri, says) in [
        ("cid_nobody", "http://127.0.0.1/callback", "unknown client_id"),
        ("", "http://127.0.0.1/callback", "client_id is missing"),
        (client_id.as_str(), "https://evil.example/callback", "has not registered"),
        (client_id.as_str(), "http://localhost:5000/callback", "has not registered"),
        (client_id.as_str(), "http://127.0.0.1:5000/other", "has not registered"),
        (client_id.as_str(), "", "redirect_uri is missing"),
    ] {
        let page = browser.authorize(&request(client, uri, &good)).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{client} {uri}");
        assert!(page.headers.get(LOCATION).is_none());
        assert!(page.body.contains(says), "{client} {uri}: {}", page.body);
        assert!(!page.body.contains("<form"), "no sign-in form for it");
    }

    // A trusted redirect URI hears of the rest, with the state when there is one: at once when it stays on the
    // device; for a web redirect URI of an app any account may have registered, by a link on the page, so that this
    // server is no open redirector.
    for uri in ["http://127.0.0.1:5000/callback", "https://notes.example.com/cb?x=1"] {
        for (name, value, error, says) in [
            ("code_challenge_method", "plain", "invalid_request", "must be S256"),
            ("code_challenge_method", "", "invalid_request", "must be S256"),
            ("code_challenge", "", "invalid_request", "code_challenge is required"),
            ("code_challenge", "too-short", "invalid_request", "43 characters"),
            ("response_type", "token", "unsupported_response_type", "must be code"),
            ("state", "", "invalid_request", "state is required"),
        ] {
            let mut params = request(&client_id, uri, &good);
            params.retain(|(n, _)| *n != name);
            params.push((name, value));
            let answer = browser.authorize(&params).await;
            let back = if uri.starts_with("https://") {
                assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{name}={value}: {}", answer.body);
                assert!(answer.headers.get(LOCATION).is_none());
                let start = answer.body.find(r#"<a href=""#).expect("a link back") + 9;
                answer.body[start..].split('"').next().unwrap().replace("&amp;", "&")
            } else {
                assert_eq!(answer.status, StatusCode::SEE_OTHER, "{name}={value}: {}", answer.body);
                answer.location().to_owned()
            };
            assert!(back.starts_with(&format!("{uri}{}", if uri.contains('?') { '&' } else { '?' })), "{back}");
            let back = query(&back);
            assert_eq!(param(&back, "error"), Some(error), "{name}={value}");
            assert!(param(&back, "error_description").unwrap().contains(says), "{back:?}");
            assert_eq!(param(&back, "state"), if name == "state" { None } else { Some(STATE) });
        }
    }
    // A parameter given twice is refused outright.
    let mut twice = request(&client_id, "http://127.0.0.1:5000/callback", &good);
    twice.push(("client_id", "cid_other"));
    let page = browser.authorize(&twice).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("client_id is given more than once"), "{}", page.body);
}

async fn the_form_refuses_cross_site_posts_and_wrong_passwords(app: TestServer) {
    let (client_id, api_key, _) = registered_app(&app, &["http://127.0.0.1/callback"]).await;
    let ada = app.user_in_app(&api_key).await;
    let uri = "http://127.0.0.1:40003/callback";
    let mut browser = Browser::new(&app);
    let page = browser.authorize(&request(&client_id, uri, &challenge(VERIFIER))).await;
    let credentials = [("email", ada.email.as_str()), ("login_key", &b64(&ada.login_key))];

    // Without the page's cookie, with another token, or from another site: refused, and no code.
    let cookie = browser.cookie.take();
    let refused = browser.submit(&page, &credentials, &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "no cookie");
    browser.cookie = cookie;
    for (fields, headers) in [
        (vec![("csrf", "A".repeat(43))], vec![]),
        (vec![], vec![("origin", "https://evil.example")]),
        (vec![], vec![("origin", "null")]),
        (vec![], vec![("sec-fetch-site", "cross-site")]),
    ] {
        let fields: Vec<(&str, &str)> =
            fields.iter().map(|(n, v)| (*n, v.as_str())).chain(credentials.iter().map(|(n, v)| (*n, *v))).collect();
        let refused = browser.submit(&page, &fields, &headers).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{fields:?} {headers:?}");
        assert!(refused.body.contains("did not come from this server"), "{}", refused.body);
    }

    // A wrong password: the page again, saying so, with the email kept; then the throttle holds off.
    let wrong = b64(&random_bytes(32));
    let again = browser.submit(&page, &[("email", &ada.email), ("login_key", &wrong)], &[]).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert!(again.body.contains("Wrong email or password."), "{}", again.body);
    assert!(again.body.contains(&format!(r#"value="{}""#, ada.email)), "the email is kept");
    assert_eq!(again.field("csrf"), page.field("csrf"));
    let mut throttled = None;
    for _ in 0..20 {
        let answer = browser.submit(&page, &[("email", &ada.email), ("login_key", &wrong)], &[]).await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some(answer);
            break;
        }
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    let throttled = throttled.expect("wrong passwords are throttled on the page too");
    assert!(throttled.headers.contains_key("retry-after"));
    assert!(throttled.body.contains("Too many wrong attempts"), "{}", throttled.body);

    // Without the page's script there is no login key: the page says it needs JavaScript.
    let other = app.user_in_app(&api_key).await;
    let answer = browser.submit(&page, &[("email", &other.email)], &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("needs JavaScript"), "{}", answer.body);

    // Cancel: back to the app with access_denied and the state.
    let cancelled = browser.submit(&page, &[("cancel", "1")], &[]).await;
    let back = query(cancelled.location());
    assert_eq!((param(&back, "error"), param(&back, "state")), (Some("access_denied"), Some(STATE)));
}

async fn people_sign_up_from_the_page_when_registration_is_open(app: TestServer) {
    let (client_id, _, _) = registered_app(&app, &["http://127.0.0.1/callback"]).await;
    let uri = "http://127.0.0.1:40004/callback";
    let mut browser = Browser::new(&app);
    let page = browser.authorize(&request(&client_id, uri, &challenge(VERIFIER))).await;
    assert!(page.body.contains(r#"id="switch-button""#), "sign-up is offered");
    let email = synckit_testkit::email();
    let (salt, login_key) = (random_bytes(32), random_bytes(32));
    let signed_up = browser
        .submit(
            &page,
            &[("intent", "sign_up"), ("email", &email), ("salt", &b64(&salt)), ("login_key", &b64(&login_key))],
            &[],
        )
        .await;
    assert_eq!(signed_up.status, StatusCode::SEE_OTHER, "{}", signed_up.body);
    let code = param(&query(signed_up.location()), "code").unwrap().to_owned();
    let (status, token, _) = exchange(&app, &token_form(&code, uri, &client_id, VERIFIER)).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    // The account is there, with the salt the page chose.
    let (_, pre) = app.post("/api/accounts/prelogin", None, json!({"email": email})).await;
    assert_eq!(pre["salt"], b64(&salt));

    // The same email again: the page says to sign in.
    let again = browser
        .submit(
            &page,
            &[("intent", "sign_up"), ("email", &email), ("salt", &b64(&salt)), ("login_key", &b64(&login_key))],
            &[],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.body.contains("sign in instead"), "{}", again.body);
}

async fn a_server_closed_to_sign_up_neither_offers_nor_takes_it(engine: Engine) {
    let closed = TestServer::start_with(engine, |s| s.open_registration = false).await;
    let uri = "http://127.0.0.1:40006/callback";
    let accounts = &closed.engines.accounts;
    let client_id = accounts.set_redirect_uris(closed.app_id, &[uri.to_owned()]).await.unwrap().unwrap().client_id;
    let mut browser = Browser::new(&closed);
    let page = browser.authorize(&request(&client_id, uri, &challenge(VERIFIER))).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!page.body.contains(r#"id="switch-button""#), "sign-up is not offered");
    let (salt, login_key) = (b64(&random_bytes(32)), b64(&random_bytes(32)));
    let email = synckit_testkit::email();
    let refused = browser
        .submit(&page, &[("intent", "sign_up"), ("email", &email), ("salt", &salt), ("login_key", &login_key)], &[])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("does not allow sign-up"), "{}", refused.body);
    let (_, pre) = closed.post("/api/accounts/prelogin", None, json!({"email": email})).await;
    assert_ne!(pre["salt"], json!(salt), "no account was made");
}

async fn the_page_its_assets_and_the_metadata_are_served_locked_down(app: TestServer) {
    let (client_id, _, _) = registered_app(&app, &["http://127.0.0.1/callback"]).await;
    let mut browser = Browser::new(&app);
    let page = browser.authorize(&request(&client_id, "http://127.0.0.1:40005/callback", &challenge(VERIFIER))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'self';",
        "frame-ancestors 'none'",
        "form-action 'self' http://127.0.0.1:40005;",
    ] {
        assert!(csp.contains(part), "{csp} has {part}");
    }
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers["cache-control"], "no-store");
    let cookie = page.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    // One email field, one password field that is never submitted (it has no name), one submit button; the app's
    // name escaped.
    assert!(page.body.contains(r#"<input id="email" name="email" type="email""#));
    assert!(page.body.contains(r#"<input id="password" type="password""#));
    assert_eq!(page.body.matches(r#"type="password""#).count(), 2, "the password and its repeat for sign-up");
    assert!(!page.body.contains(r#"name="password""#));
    assert!(page.body.contains("Sign in to Notes &lt;&amp;&gt;"));
    assert!(page.body.contains("<title>Sign in to Notes &lt;&amp;&gt; · SyncKit</title>"), "escaped once");
    assert!(
        page.body.contains(
            "you go back to the app on this device. Notes &lt;&amp;&gt; is registered by a SyncKit \
             account, not by this server&#39;s operator."
        ),
        "the page says where the browser goes and who registered the app: {}",
        page.body
    );
    assert!(!page.body.contains("<script>") && !page.body.contains("style="), "nothing inline");

    for (asset, content_type) in [
        ("signin.js", "text/javascript; charset=utf-8"),
        ("loginkey.js", "text/javascript; charset=utf-8"),
        ("worker.js", "text/javascript; charset=utf-8"),
        ("argon2.js", "text/javascript; charset=utf-8"),
        ("signin.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let answer = browser.send(Method::GET, &format!("/oauth/assets/{asset}"), None, &[]).await;
        assert_eq!((answer.status, answer.headers["content-type"].to_str().unwrap()), (StatusCode::OK, content_type));
        assert!(!answer.body.is_empty());
    }
    let worker = browser.send(Method::GET, "/oauth/assets/worker.js", None, &[]).await;
    assert!(worker.headers["content-security-policy"].to_str().unwrap().contains("'wasm-unsafe-eval'"));
    let argon2 = browser.send(Method::GET, "/oauth/assets/argon2.js", None, &[]).await;
    assert!(argon2.body.contains("argon2id"), "hash-wasm's Argon2 build");
    let missing = browser.send(Method::GET, "/oauth/assets/../Cargo.toml", None, &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let (status, metadata) = app.get("/.well-known/oauth-authorization-server", None).await;
    assert_eq!(status, StatusCode::OK);
    let issuer = format!("http://{}", app.addr);
    assert_eq!(
        metadata,
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/oauth/authorize"),
            "token_endpoint": format!("{issuer}/oauth/token"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
        })
    );
}
