//! Browser sign-in against a stand-in browser (requests to the callback) and, for the code exchange, a stand-in
//! token endpoint that holds the server's side of the contract.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use synckit_protocol::oauth::{AppInfo, TokenResponse};
use synckit_protocol::paths;
use uuid::Uuid;

use crate::keystore::MemoryKeyStore;
use crate::{ErrorKind, SyncKitClient, SyncKitConfig, oauth};

/// The configuration of a client of `server`, with the client id configured unless `None`.
fn config(server: &str, client_id: Option<&str>) -> SyncKitConfig {
    let mut config = SyncKitConfig::new(server, "sk_test")
        .key_store(Arc::new(MemoryKeyStore::default()))
        .data_dir(tempfile::tempdir().unwrap().keep())
        .max_retries(0);
    config.oauth_client_id = client_id.map(str::to_owned);
    config
}

fn client(server: &str, client_id: Option<&str>) -> SyncKitClient {
    SyncKitClient::new(config(server, client_id))
}

/// The query parameters of a URL.
fn params(url: &str) -> HashMap<String, String> {
    reqwest::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

/// What the stand-in browser saw of each page it visited: the status and the page.
type Seen = tokio::sync::oneshot::Receiver<Vec<(u16, String)>>;

/// The forms the token endpoint received.
type Forms = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// What the browser got: the status and the page.
async fn visit(url: &str) -> (u16, String) {
    let resp = reqwest::get(url).await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Opens the sign-in URL in a stand-in browser that visits `then(redirect_uri, state)` in order, one after the
/// other, and hands over what it saw.
fn browser(
    then: impl FnOnce(&str, &str) -> Vec<String> + Send + 'static,
) -> (impl FnOnce(&str) -> std::io::Result<()>, Seen) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let open = move |url: &str| {
        let params = params(url);
        let visits = then(&params["redirect_uri"], &params["state"]);
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for url in visits {
                seen.push(visit(&url).await);
            }
            let _ = tx.send(seen);
        });
        Ok(())
    };
    (open, rx)
}

/// A server with the two OAuth endpoints the SDK calls: the token endpoint answers `token`'s status and body, and
/// keeps each form it received; the app-info endpoint answers the app "Notes" and counts the calls.
async fn token_server(token: (u16, serde_json::Value)) -> (String, Forms, Arc<Mutex<u32>>) {
    #[derive(Clone)]
    struct Script {
        token: (u16, serde_json::Value),
        forms: Forms,
        lookups: Arc<Mutex<u32>>,
    }
    async fn exchange(State(s): State<Script>, Form(form): Form<HashMap<String, String>>) -> impl IntoResponse {
        s.forms.lock().unwrap().push(form);
        (StatusCode::from_u16(s.token.0).unwrap(), axum::Json(s.token.1))
    }
    async fn app_info(State(s): State<Script>, axum::Json(req): axum::Json<serde_json::Value>) -> impl IntoResponse {
        *s.lookups.lock().unwrap() += 1;
        assert_eq!(req["api_key"], "sk_test");
        axum::Json(AppInfo { app_id: Uuid::nil(), name: "Notes".into(), client_id: "cid_looked_up".into() })
    }
    let script = Script { token, forms: Arc::default(), lookups: Arc::default() };
    let (forms, lookups) = (script.forms.clone(), script.lookups.clone());
    let app = axum::Router::new()
        .route(paths::OAUTH_TOKEN, axum::routing::post(exchange))
        .route(paths::APP_INFO, axum::routing::post(app_info))
        .with_state(script);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, forms, lookups)
}

fn granted(user_id: Uuid, app_id: Uuid) -> (u16, serde_json::Value) {
    let token = TokenResponse {
        access_token: "sign-in-token".into(),
        token_type: "Bearer".into(),
        expires_in: 600,
        user_id,
        app_id,
        email: " Ada@Example.com".into(),
    };
    (200, serde_json::to_value(token).unwrap())
}

/// Nothing listens here: a test that reaches the server fails.
const NO_SERVER: &str = "http://127.0.0.1:9";

#[tokio::test]
async fn the_authorize_url_carries_the_request_percent_encoded() {
    let client = client("https://sync.example.com/tenant/", Some("cid_a b"));
    let url = client.build_authorize_url(51234, "st/1", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").await.unwrap();
    assert_eq!(
        url,
        "https://sync.example.com/tenant/oauth/authorize?response_type=code&client_id=cid_a+b\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A51234%2Fcallback&state=st%2F1\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    );
    let err = self::client("not a url", Some("cid")).build_authorize_url(1, "s", "c").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

#[tokio::test]
async fn without_a_configured_client_id_the_server_is_asked_once() {
    let (url, _, lookups) = token_server(granted(Uuid::new_v4(), Uuid::new_v4())).await;
    let client = client(&url, None);
    for port in [1000, 2000] {
        let url = client.build_authorize_url(port, "s", "c").await.unwrap();
        assert_eq!(params(&url)["client_id"], "cid_looked_up");
    }
    assert_eq!(*lookups.lock().unwrap(), 1);
}

#[tokio::test]
async fn signing_in_through_the_browser_exchanges_the_code_and_tells_the_browser() {
    let (user_id, app_id) = (Uuid::new_v4(), Uuid::new_v4());
    let (url, forms, _) = token_server(granted(user_id, app_id)).await;
    let client = client(&url, None);
    let authorize_url = Arc::new(Mutex::new(String::new()));
    let seen_url = authorize_url.clone();
    let (open, seen) = browser(|redirect, state| {
        let origin = redirect.trim_end_matches(oauth::LOOPBACK_CALLBACK_PATH);
        // What a browser asks for on its own, then the redirect.
        vec![format!("{origin}/favicon.ico"), format!("{redirect}?code=the-code&state={state}")]
    });
    let ids = client
        .sign_in_with_browser(|url| {
            *seen_url.lock().unwrap() = url.to_owned();
            open(url)
        })
        .await
        .unwrap();
    assert_eq!(ids, (user_id, app_id));

    let seen = seen.await.unwrap();
    assert_eq!(seen[0].0, 404, "another path: answered 404, and the wait went on");
    assert_eq!(seen[1].0, 200);
    assert!(seen[1].1.contains("Signed in to Notes"), "{}", seen[1].1);
    assert!(seen[1].1.contains("You can close this tab and return to the app."));

    // The exchange sent what the server checks the code against: the verifier of the URL's challenge.
    let request = params(&authorize_url.lock().unwrap());
    let form = forms.lock().unwrap().pop().unwrap();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "the-code");
    assert_eq!(form["client_id"], "cid_looked_up");
    assert_eq!(form["redirect_uri"], request["redirect_uri"]);
    assert!(request["redirect_uri"].starts_with("http://127.0.0.1:"));
    assert_eq!(oauth::challenge(&form["code_verifier"]), request["code_challenge"]);
    assert_eq!(request["code_challenge_method"], "S256");

    let session = client.session().unwrap();
    assert_eq!((session.user_id, session.app_id, session.token.as_str()), (user_id, app_id, "sign-in-token"));
    assert_eq!((session.email.as_str(), session.device_id), ("ada@example.com", None));
    let lifetime = session.expires_at - time::OffsetDateTime::now_utc();
    assert!(lifetime > time::Duration::seconds(590) && lifetime <= time::Duration::seconds(600), "{lifetime}");

    // The listener is gone once the sign-in is over.
    let port: u16 = reqwest::Url::parse(&request["redirect_uri"]).unwrap().port().unwrap();
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

#[tokio::test]
async fn a_code_the_server_refuses_fails_the_sign_in_in_the_app_and_in_the_browser() {
    let refusal = serde_json::json!({"error": "invalid_grant", "error_description": "the code has expired"});
    let (url, _, _) = token_server((400, refusal)).await;
    let client = client(&url, Some("cid_1"));
    let (open, seen) = browser(|redirect, state| vec![format!("{redirect}?code=old&state={state}")]);
    let err = client.sign_in_with_browser(open).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(err.to_string().contains("the code has expired"), "{err}");
    let seen = seen.await.unwrap();
    assert_eq!(seen[0].0, 400);
    assert!(seen[0].1.contains("Sign-in failed") && seen[0].1.contains("the code has expired"), "{}", seen[0].1);
    assert!(client.session().is_none());
}

#[tokio::test]
async fn a_callback_of_another_sign_in_is_refused() {
    let client = client(NO_SERVER, Some("cid_1"));
    let (open, seen) = browser(|redirect, state| vec![format!("{redirect}?code=planted&state=x{state}")]);
    let err = client.sign_in_with_browser(open).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(err.to_string().contains("state does not match"), "{err}");
    let seen = seen.await.unwrap();
    assert_eq!(seen[0].0, 400);
    assert!(seen[0].1.contains("Sign-in refused"), "{}", seen[0].1);
    assert!(client.session().is_none(), "the planted code was not exchanged");

    // Without a state at all, the same.
    let (open, seen) = browser(|redirect, _| vec![format!("{redirect}?code=planted")]);
    let err = client.sign_in_with_browser(open).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(seen.await.unwrap()[0].0, 400);
}

#[tokio::test]
async fn an_error_the_server_sent_back_ends_the_sign_in_with_its_description() {
    let client = client(NO_SERVER, Some("cid_1"));
    let (open, seen) = browser(|redirect, state| {
        vec![format!(
            "{redirect}?error=access_denied&error_description=%3Cb%3EThe+user+cancelled%3C%2Fb%3E&state={state}"
        )]
    });
    let err = client.sign_in_with_browser(open).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(err.to_string().contains("<b>The user cancelled</b> (access_denied)"), "{err}");
    let (status, page) = seen.await.unwrap().remove(0);
    assert_eq!(status, 400);
    assert!(page.contains("&lt;b&gt;The user cancelled&lt;/b&gt;"), "escaped: {page}");
}

#[tokio::test]
async fn the_wait_for_the_browser_stops_by_itself() {
    let client = SyncKitClient::new(config(NO_SERVER, Some("cid_1")).sign_in_timeout(Duration::from_millis(300)));
    let port = Arc::new(Mutex::new(0));
    let seen_port = port.clone();
    let started = tokio::time::Instant::now();
    let err = client
        .sign_in_with_browser(|url| {
            let redirect = reqwest::Url::parse(&params(url)["redirect_uri"]).unwrap();
            *seen_port.lock().unwrap() = redirect.port().unwrap();
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(err.to_string().contains("did not come back"), "{err}");
    let port = *port.lock().unwrap();
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err(), "the listener is closed");
}

#[tokio::test]
async fn a_browser_that_cannot_be_opened_ends_the_sign_in() {
    let client = client(NO_SERVER, Some("cid_1"));
    let err = client.sign_in_with_browser(|_| Err(std::io::ErrorKind::NotFound.into())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("could not open the browser"), "{err}");
}

/// Apps run the sign-in on a task of their own: it must be `Send` (checked when this compiles).
#[allow(dead_code)]
fn the_sign_in_can_run_on_a_task_of_its_own(client: SyncKitClient) {
    fn spawnable<T: Send + 'static>(_: T) {}
    spawnable(async move { client.sign_in_with_system_browser().await });
}
