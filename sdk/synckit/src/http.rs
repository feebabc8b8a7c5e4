//! One HTTP call with the retry policy: per-attempt and total timeouts, exponential back-off with full jitter,
//! `Retry-After` honoured, and retries only where repeating the request cannot do harm.

use std::time::Duration;

use reqwest::{Method, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use synckit_protocol::oauth::OAuthError;
use synckit_protocol::{ErrorBody, ErrorCode};
use tokio::time::Instant;

use crate::config::SyncKitConfig;
use crate::error::{Error, ErrorKind, Result};

const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// Whether a request may be sent again when its outcome is unknown. Either way only errors that
/// [`Error::is_retryable`] calls retryable are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Repeating it is harmless (reads, and pushes, whose change ids make a repeat a no-op): retry transport
    /// errors, 5xx, 408 and 429.
    Idempotent,
    /// Repeating it after it took effect would fail or do it twice: retry only answers that say it was not
    /// processed (429, 503).
    IfUnprocessed,
}

#[derive(Debug, Clone)]
pub(crate) struct Transport {
    http: reqwest::Client,
    base: String,
    attempt_timeout: Duration,
    total_timeout: Duration,
    max_retries: u32,
}

impl Transport {
    pub(crate) fn new(config: &SyncKitConfig) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("synckit-sdk/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .expect("the HTTP client builds with a TLS backend");
        Self {
            http,
            base: config.server_url.trim_end_matches('/').to_owned(),
            attempt_timeout: config.attempt_timeout,
            total_timeout: config.total_timeout,
            max_retries: config.max_retries,
        }
    }

    pub(crate) fn base_url(&self) -> &str {
        &self.base
    }

    /// The pooled HTTP client, for requests outside the retry policy of [`call`](Self::call) (blob transfers).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// How long one attempt may go without progress.
    pub(crate) fn attempt_timeout(&self) -> Duration {
        self.attempt_timeout
    }

    /// How long a call may take in all, retries included.
    pub(crate) fn total_timeout(&self) -> Duration {
        self.total_timeout
    }

    /// Retries after the first attempt.
    pub(crate) fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// `link` made absolute: a URL stays as it is, and a path (`/api/…`, as the embedded blob store answers) is on
    /// this server, so it goes after the configured server URL exactly as API paths do, prefix included.
    pub(crate) fn resolve(&self, link: &str) -> Result<reqwest::Url> {
        let absolute = if link.starts_with('/') && !link.starts_with("//") {
            format!("{}{link}", self.base)
        } else {
            link.to_owned()
        };
        reqwest::Url::parse(&absolute).map_err(|e| {
            Error::new(ErrorKind::Server, format!("the server answered a link that is not a URL: {link:?}"))
                .with_source(e)
        })
    }

    /// Opens a server-sent-events stream. No per-attempt timeout: the stream is meant to stay open; the caller
    /// watches for silence instead.
    pub(crate) async fn event_stream(
        &self,
        path: &str,
        token: &str,
        last_event_id: u64,
    ) -> Result<impl futures::Stream<Item = Result<eventsource_stream::Event>> + Send + use<>> {
        let url = format!("{}{path}", self.base);
        let connect = self
            .http
            .get(&url)
            .bearer_auth(token)
            .header(header::ACCEPT, "text/event-stream")
            .header("last-event-id", last_event_id.to_string())
            .send();
        let resp = tokio::time::timeout(self.attempt_timeout, connect)
            .await
            .map_err(|_| Error::new(ErrorKind::Transport, format!("GET {path} timed out")))?
            .map_err(|e| Error::new(ErrorKind::Transport, format!("GET {path} failed")).with_source(e))?;
        if !resp.status().is_success() {
            return Err(server_error(resp).await);
        }
        Ok(server_sent_events(resp.bytes_stream()))
    }

    /// Sends `body` (already serialised: a retry sends the identical bytes) and decodes the answer.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<bytes::Bytes>,
        retry: Retry,
    ) -> Result<T> {
        self.send(method, path, retry, |mut req| {
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            if let Some(body) = &body {
                req = req.header(header::CONTENT_TYPE, "application/json").body(body.clone());
            }
            req
        })
        .await
    }

    /// Posts `form` form-encoded (`application/x-www-form-urlencoded`), as OAuth's token endpoint takes it, and
    /// decodes the answer.
    pub(crate) async fn post_form<F: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        form: &F,
        retry: Retry,
    ) -> Result<T> {
        self.send(Method::POST, path, retry, |req| req.form(form)).await
    }

    /// Sends the request `build` makes of each attempt under the retry policy, and decodes the answer.
    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        retry: Retry,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<T> {
        let deadline = Instant::now() + self.total_timeout;
        let url = format!("{}{path}", self.base);
        let mut attempt = 0u32;
        loop {
            let req = build(self.http.request(method.clone(), &url).timeout(self.attempt_timeout));
            let (err, retryable) = match tokio::time::timeout_at(deadline, req.send()).await {
                Err(_) => return Err(Error::new(ErrorKind::Transport, format!("{method} {path} timed out"))),
                Ok(Err(e)) => {
                    // The cause is kept as the source, so it is not repeated in the message.
                    let err = Error::new(ErrorKind::Transport, format!("{method} {path} failed")).with_source(e);
                    (err, retry == Retry::Idempotent)
                }
                Ok(Ok(resp)) if resp.status().is_success() => match decode(resp, &method, path).await {
                    // The answer broke off: as lost as one that never came.
                    Err(err) if err.kind() == ErrorKind::Transport => (err, retry == Retry::Idempotent),
                    decoded => return decoded,
                },
                Ok(Ok(resp)) => {
                    let status = resp.status();
                    let err = server_error(resp).await;
                    // A 5xx or a 408 may come after the request took effect; these two say it did not.
                    let unprocessed =
                        status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE;
                    let retryable = err.is_retryable() && (unprocessed || retry == Retry::Idempotent);
                    (err, retryable)
                }
            };
            // An app over its transfer budget is paced: waiting as asked is the way through, not a failed attempt.
            let paced = err.code() == Some(ErrorCode::TransferSlowed);
            if !retryable || (attempt >= self.max_retries && !paced) {
                return Err(err);
            }
            let delay = err.retry_after().unwrap_or_else(|| backoff(attempt));
            if Instant::now() + delay >= deadline {
                return Err(err);
            }
            tracing::debug!(%method, path, attempt, ?delay, error = %err, "retrying");
            tokio::time::sleep(delay).await;
            if !paced {
                attempt += 1;
            }
        }
    }
}

async fn decode<T: DeserializeOwned>(resp: reqwest::Response, method: &Method, path: &str) -> Result<T> {
    let bytes = resp.bytes().await.map_err(|e| {
        Error::new(ErrorKind::Transport, format!("{method} {path}: reading the answer failed")).with_source(e)
    })?;
    // An empty answer (204) decodes as JSON null, which `()` accepts.
    let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
    serde_json::from_slice(bytes).map_err(|e| {
        Error::new(ErrorKind::Server, format!("{method} {path}: the server's answer is not what the SDK expects"))
            .with_source(e)
    })
}

/// The error a refusal stands for: SyncKit's [`ErrorBody`], or, from the OAuth endpoints, RFC 6749's
/// [`OAuthError`]; an answer of neither shape (a proxy's) is placed by its status.
async fn server_error(resp: reqwest::Response) -> Error {
    let status = resp.status();
    let retry_after = retry_after(resp.headers());
    let body = resp.bytes().await.unwrap_or_default();
    if let Ok(body) = serde_json::from_slice::<ErrorBody>(&body) {
        return Error::from_server(body.error.code, status.as_u16(), body.error.message, retry_after);
    }
    if let Ok(refusal) = serde_json::from_slice::<OAuthError>(&body) {
        return Error::from_oauth(refusal, Some(status.as_u16()), retry_after);
    }
    Error::from_server(ErrorCode::Unknown, status.as_u16(), format!("the server answered {status}"), retry_after)
}

/// How long an answer asks to wait before trying again: `Retry-After` in seconds (the form SyncKit and the stores
/// send; an HTTP date is ignored).
pub(crate) fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Full jitter: a random delay up to base·2^attempt, capped.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE.saturating_mul(1 << attempt.min(16)).min(BACKOFF_CAP);
    let fraction = f64::from(u32::from_le_bytes(crate::crypto::random_bytes())) / f64::from(u32::MAX);
    ceiling.mul_f64(fraction)
}

/// The events of a server-sent-events body, however its bytes are cut into pieces.
pub(crate) fn server_sent_events<B, E>(
    body: impl futures::Stream<Item = std::result::Result<B, E>>,
) -> impl futures::Stream<Item = Result<eventsource_stream::Event>>
where
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    use eventsource_stream::Eventsource;
    use futures::StreamExt;

    body.eventsource().map(|item| {
        item.map_err(|e| Error::new(ErrorKind::Transport, "the event stream broke").with_source(e.to_string()))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn links_resolve_like_api_paths() {
        let transport = |url: &str| super::Transport::new(&crate::SyncKitConfig::new(url, "sk"));
        let local = transport("http://127.0.0.1:8080");
        assert_eq!(
            local.resolve("/api/sync/blobs/local/ab?sig=1").unwrap().as_str(),
            "http://127.0.0.1:8080/api/sync/blobs/local/ab?sig=1"
        );
        let s3 = "https://s3.example.com/bucket/ab?X-Amz-Signature=00";
        assert_eq!(local.resolve(s3).unwrap().as_str(), s3);
        // Behind a path prefix, as API calls are.
        let prefixed = transport("https://sync.example.com/tenant/");
        assert_eq!(prefixed.resolve("/api/x?s=1").unwrap().as_str(), "https://sync.example.com/tenant/api/x?s=1");
        assert_eq!(transport("not a url").resolve("/x").unwrap_err().kind(), crate::ErrorKind::Server);
        assert_eq!(local.resolve("relative/x").unwrap_err().kind(), crate::ErrorKind::Server);
    }

    /// A server whose first answers are the given (status, code) pairs, then `{}`; it counts the requests.
    async fn scripted(answers: &[(u16, &str)]) -> (super::Transport, std::sync::Arc<std::sync::Mutex<usize>>) {
        use std::sync::{Arc, Mutex};

        use axum::http::StatusCode;
        use axum::response::IntoResponse;

        let script = Arc::new(Mutex::new(answers.iter().map(|&(s, c)| (s, c.to_owned())).collect::<Vec<_>>()));
        let calls = Arc::new(Mutex::new(0));
        let counted = calls.clone();
        let handler = move || {
            let (script, counted) = (script.clone(), counted.clone());
            async move {
                *counted.lock().unwrap() += 1;
                let mut script = script.lock().unwrap();
                if script.is_empty() {
                    return axum::Json(serde_json::json!({})).into_response();
                }
                let (status, code) = script.remove(0);
                let body = serde_json::json!({"error": {"code": code, "message": "scripted"}});
                (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
            }
        };
        let app = axum::Router::new().route("/x", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (super::Transport::new(&crate::SyncKitConfig::new(url, "sk").max_retries(2)), calls)
    }

    async fn post(transport: &super::Transport, retry: super::Retry) -> crate::Result<serde_json::Value> {
        transport.call(reqwest::Method::POST, "/x", None, None, retry).await
    }

    #[tokio::test]
    async fn a_timed_out_request_is_retried_when_repeating_it_is_harmless() {
        let (transport, calls) = scripted(&[(408, "request_timeout")]).await;
        post(&transport, super::Retry::Idempotent).await.unwrap();
        assert_eq!(*calls.lock().unwrap(), 2);

        // It may have taken effect before the server gave up: a request unsafe to repeat is not repeated.
        let (transport, calls) = scripted(&[(408, "request_timeout")]).await;
        let err = post(&transport, super::Retry::IfUnprocessed).await.unwrap_err();
        assert_eq!((err.kind(), err.is_retryable()), (crate::ErrorKind::Server, true), "{err}");
        assert_eq!(*calls.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn only_what_is_retryable_is_retried() {
        for (status, code) in [(400, "invalid_request"), (403, "registration_closed"), (409, "email_taken")] {
            let (transport, calls) = scripted(&[(status, code)]).await;
            let err = post(&transport, super::Retry::Idempotent).await.unwrap_err();
            assert!(!err.is_retryable(), "{err}");
            assert_eq!(*calls.lock().unwrap(), 1, "{code}");
        }
        let (transport, calls) = scripted(&[(500, "internal"), (429, "rate_limited")]).await;
        post(&transport, super::Retry::Idempotent).await.unwrap();
        assert_eq!(*calls.lock().unwrap(), 3);
    }

    /// A server whose first answer promises a body it cuts off, then answers whole; it counts the connections.
    async fn cutting() -> (super::Transport, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut head = vec![0; 4096];
                let _ = conn.read(&mut head).await;
                let answer: &[u8] = if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"cursor\""
                } else {
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
                };
                let _ = conn.write_all(answer).await;
                // Closing ends the first answer 90 bytes short.
            }
        });
        (super::Transport::new(&crate::SyncKitConfig::new(url, "sk").max_retries(2)), calls)
    }

    #[tokio::test]
    async fn an_answer_cut_short_is_retried_when_repeating_it_is_harmless() {
        use std::sync::atomic::Ordering;

        let (transport, calls) = cutting().await;
        post(&transport, super::Retry::Idempotent).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        let (transport, calls) = cutting().await;
        let err = post(&transport, super::Retry::IfUnprocessed).await.unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Transport, "{err}");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "it may have taken effect: not repeated");
    }

    #[tokio::test]
    async fn an_oauth_refusal_is_read_as_one() {
        use axum::http::StatusCode;

        let refusal = serde_json::json!({"error": "invalid_grant", "error_description": "the code was already used"});
        let app = axum::Router::new()
            .route("/x", axum::routing::post(move || async move { (StatusCode::BAD_REQUEST, axum::Json(refusal)) }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let transport = super::Transport::new(&crate::SyncKitConfig::new(url, "sk"));
        let err = post(&transport, super::Retry::Idempotent).await.unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Unauthorized, "{err}");
        assert_eq!(err.to_string(), "the sign-in was refused: the code was already used (invalid_grant)");
        assert_eq!(err.code(), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 0..20 {
            let ceiling = super::BACKOFF_BASE.saturating_mul(1 << attempt.min(16)).min(super::BACKOFF_CAP);
            assert!(super::backoff(attempt) <= ceiling);
        }
        assert!(super::backoff(30) <= super::BACKOFF_CAP);
    }
}
