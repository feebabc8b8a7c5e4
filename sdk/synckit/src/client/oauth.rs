//! Sign-in through the browser: the authorization URL, the code exchange, and the whole flow in one call. See
//! [`crate::oauth`] for the steps.

use reqwest::Method;
use synckit_protocol::oauth::{AppInfo, AppInfoRequest, CHALLENGE_METHOD, TokenRequest, TokenResponse};
use synckit_protocol::paths;
use uuid::Uuid;

use crate::SyncKitClient;
use crate::error::{Error, ErrorKind, Result};
use crate::http::Retry;
use crate::model::Session;
use crate::oauth::{self, loopback};

/// The app, as browser sign-in names it.
#[derive(Debug)]
pub(super) struct OAuthClient {
    id: String,
    /// For the page the browser shows at the end; unknown when the id came from the configuration.
    name: Option<String>,
}

impl SyncKitClient {
    /// The URL of the server's sign-in page, to open in the browser: an authorization request for a redirect to
    /// `http://127.0.0.1:{port}/callback` with this `state` and PKCE `challenge` (see [`crate::oauth`]).
    ///
    /// The client id is [`SyncKitConfig::oauth_client_id`](crate::SyncKitConfig::oauth_client_id), or else the
    /// server's answer for the configured API key, asked once per client. A server URL that is not a URL is
    /// [`ErrorKind::InvalidInput`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> synckit::Result<()> {
    /// use synckit::{SyncKitClient, SyncKitConfig, oauth};
    /// let config = SyncKitConfig::new("https://sync.example.com", "sk_…").oauth_client_id("cid_1");
    /// let client = SyncKitClient::new(config);
    /// let (verifier, state) = (oauth::generate_verifier(), oauth::generate_state());
    /// let url = client.build_authorize_url(51234, &state, &oauth::challenge(&verifier)).await?;
    /// assert!(url.starts_with("https://sync.example.com/oauth/authorize?response_type=code&client_id=cid_1&"));
    /// assert!(url.contains("&redirect_uri=http%3A%2F%2F127.0.0.1%3A51234%2Fcallback&"));
    /// # Ok(()) }
    /// ```
    pub async fn build_authorize_url(&self, port: u16, state: &str, challenge: &str) -> Result<String> {
        let client = self.oauth_client().await?;
        let base = self.transport().base_url();
        let mut url = reqwest::Url::parse(&format!("{base}{}", paths::OAUTH_AUTHORIZE)).map_err(|e| {
            Error::new(ErrorKind::InvalidInput, format!("the server URL {base:?} is not a URL")).with_source(e)
        })?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.id)
            .append_pair("redirect_uri", &oauth::redirect_uri(port))
            .append_pair("state", state)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", CHALLENGE_METHOD);
        Ok(url.into())
    }

    /// Signs in with the code the browser brought back to `http://127.0.0.1:{port}/callback` and the verifier
    /// whose challenge the authorization URL carried, returning `(user_id, app_id)`. The session is the one
    /// [`authenticate`](Self::authenticate) makes: unlock and
    /// [`register_device`](Self::register_device) next, as after it.
    ///
    /// A code is good once and for a minute: one used, expired, or issued for another verifier, redirect URI or
    /// client is [`ErrorKind::Unauthorized`] (sign in again); a client id the server does not know is
    /// [`ErrorKind::InvalidInput`]. The message carries the server's description.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, code: &str, verifier: &str) -> synckit::Result<()> {
    /// let (user_id, app_id) = client.authenticate_with_code(code, verifier, 51234).await?;
    /// # Ok(()) }
    /// ```
    pub async fn authenticate_with_code(&self, code: &str, verifier: &str, port: u16) -> Result<(Uuid, Uuid)> {
        if code.is_empty() {
            return Err(Error::new(ErrorKind::InvalidInput, "the sign-in code is empty"));
        }
        if !oauth::is_valid_verifier(verifier) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "not a PKCE verifier: 43 to 128 letters, digits, `-`, `.`, `_` and `~` (oauth::generate_verifier \
                 makes one)",
            ));
        }
        let client = self.oauth_client().await?;
        let req = TokenRequest {
            grant_type: "authorization_code".to_owned(),
            code: code.to_owned(),
            redirect_uri: oauth::redirect_uri(port),
            client_id: client.id.clone(),
            code_verifier: verifier.to_owned(),
        };
        // A code is good once: a repeat after the server used it would be refused, so only answers saying it was not
        // processed are retried.
        let token: TokenResponse = self.transport().post_form(paths::OAUTH_TOKEN, &req, Retry::IfUnprocessed).await?;
        if !token.token_type.eq_ignore_ascii_case("bearer") {
            let message = format!("the server answered a token of type {:?}, not a bearer token", token.token_type);
            return Err(Error::new(ErrorKind::Server, message));
        }
        Ok(self.signed_in(Session::from_token(token)))
    }

    /// Signs in through the browser, returning `(user_id, app_id)`: listens on `127.0.0.1` on a free port, calls
    /// `open` with the sign-in page's URL, waits for the browser to come back with a code, exchanges it
    /// ([`authenticate_with_code`](Self::authenticate_with_code)), and shows the browser a page saying how it went.
    /// The app registers `http://127.0.0.1/callback` as a redirect URI (any port is taken).
    ///
    /// `open` opens the URL where the person signs in: [`oauth::open_browser`](crate::oauth::open_browser) (what
    /// [`sign_in_with_system_browser`](Self::sign_in_with_system_browser) uses), or the app's own way; showing the
    /// URL too helps where no browser can be opened (a remote shell). An error from it ends the sign-in
    /// ([`ErrorKind::InvalidInput`]).
    ///
    /// The wait ends after [`SyncKitConfig::sign_in_timeout`](crate::SyncKitConfig::sign_in_timeout)
    /// ([`ErrorKind::Unauthorized`]). Requests to other paths are answered 404 and the wait goes on. A callback
    /// with another `state` than this sign-in's (an old tab, or a page trying to sign the app in to an account of
    /// its choosing) is refused and ends the sign-in ([`ErrorKind::Unauthorized`]); so does an error the server
    /// sent back (`access_denied` is [`ErrorKind::Unauthorized`]), its description in the message.
    ///
    /// # The password still unlocks encryption in the app
    ///
    /// This signs in; it does not unlock the data. Unlock next with
    /// [`setup_encryption_existing`](Self::setup_encryption_existing) (or
    /// [`setup_encryption_new`](Self::setup_encryption_new) on the account's first device), with the password typed
    /// into the app, as after [`authenticate`](Self::authenticate). The sign-in page is served by the server, and a
    /// server that turned hostile could serve one that keeps what is typed into it. So the page only ever derives
    /// the login key, which opens no data, and never touches the master key: the master key is unwrapped only in the
    /// app, with the password typed there, and never passes through the browser. On the account's first device,
    /// nothing checks the password given to `setup_encryption_new` against the account's: ask for it twice, as for a
    /// new password. Show the person the account they signed in to ([`session`](Self::session)'s email), so that a
    /// code another program slipped in for an account of its own does not go unnoticed.
    ///
    /// The password typed into the page is still the account's password, the one that also wraps the master key.
    /// Against a server that turned hostile and serves a page that keeps it, only signing in inside the app
    /// ([`authenticate`](Self::authenticate)) keeps the password away from code the server sends.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, password: &str) -> synckit::Result<()> {
    /// let (user_id, app_id) = client
    ///     .sign_in_with_browser(|url| {
    ///         eprintln!("Open this URL to sign in: {url}");
    ///         synckit::oauth::open_browser(url)
    ///     })
    ///     .await?;
    /// client.setup_encryption_existing(password).await?; // asked in the app, never in the browser
    /// let device = client.register_device("MacBook", "macos").await?;
    /// # Ok(()) }
    /// ```
    pub async fn sign_in_with_browser(&self, open: impl FnOnce(&str) -> std::io::Result<()>) -> Result<(Uuid, Uuid)> {
        // Asked first, so that a wrong API key fails before anything is opened.
        let app_name = self.oauth_client().await?.name.clone();
        let listener = loopback::Loopback::bind().await?;
        let port = listener.port();
        let (verifier, state) = (oauth::generate_verifier(), oauth::generate_state());
        let url = self.build_authorize_url(port, &state, &oauth::challenge(&verifier)).await?;
        open(&url).map_err(|e| Error::new(ErrorKind::InvalidInput, "could not open the browser").with_source(e))?;
        let (code, browser) = listener.wait(&state, self.inner.config.sign_in_timeout).await?;
        // The browser waits for its page until the code is exchanged, so the page says what really happened.
        match self.authenticate_with_code(&code, &verifier, port).await {
            Ok(ids) => {
                let title = app_name.map_or_else(|| "Signed in".to_owned(), |name| format!("Signed in to {name}"));
                browser.show(loopback::OK, &title, "You can close this tab and return to the app.").await;
                Ok(ids)
            }
            Err(e) => {
                let text = format!("{}. Return to the app and try again.", loopback::capital(&e));
                browser.show(loopback::BAD_REQUEST, "Sign-in failed", &text).await;
                Err(e)
            }
        }
    }

    /// [`sign_in_with_browser`](Self::sign_in_with_browser) in the system browser (or the one `$BROWSER` names):
    /// see [`oauth::open_browser`](crate::oauth::open_browser).
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, password: &str) -> synckit::Result<()> {
    /// client.sign_in_with_system_browser().await?;
    /// client.setup_encryption_existing(password).await?;
    /// # Ok(()) }
    /// ```
    pub async fn sign_in_with_system_browser(&self) -> Result<(Uuid, Uuid)> {
        self.sign_in_with_browser(oauth::open_browser).await
    }

    /// The app's OAuth client id and, when asked of the server, its name.
    async fn oauth_client(&self) -> Result<&OAuthClient> {
        self.inner
            .oauth_client
            .get_or_try_init(|| async {
                if let Some(id) = self.inner.config.oauth_client_id.as_ref().filter(|id| !id.is_empty()) {
                    return Ok(OAuthClient { id: id.clone(), name: None });
                }
                let req = AppInfoRequest { api_key: self.inner.config.api_key.clone() };
                let app: AppInfo =
                    self.call(Method::POST, paths::APP_INFO, false, Some(&req), Retry::Idempotent).await?;
                Ok(OAuthClient { id: app.client_id, name: Some(app.name) })
            })
            .await
    }
}

#[cfg(test)]
mod tests;
