//! The loopback redirect of browser sign-in (RFC 8252 section 7.3): a listener on `127.0.0.1` that waits for the
//! browser to come back with the code, and the page the person sees there.
//!
//! Only `GET /callback` counts. Anything else (a favicon, a page another program sends there) is answered 404 and
//! the wait goes on. A callback whose `state` is not this sign-in's is refused and ends the wait: it is an old tab,
//! or a page trying to sign the app in to an account of its choosing.

use std::net::Ipv4Addr;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use synckit_protocol::oauth::{LOOPBACK_CALLBACK_PATH, OAuthError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::error::{Error, ErrorKind, Result};

/// The largest request head taken: the browser's redirect is well under it.
const MAX_HEAD: usize = 16 * 1024;
/// How long a connection may take to send its request head: browsers open connections ahead and may never use them.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections waited on at once; more wait in the listener's backlog.
const MAX_PENDING: usize = 32;
/// How long answering the browser may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// The listener the browser comes back to.
#[derive(Debug)]
pub(crate) struct Loopback {
    listener: TcpListener,
    port: u16,
}

/// The browser, back with a code and waiting for its page: [`Browser::show`] it once the sign-in is done.
#[derive(Debug)]
pub(crate) struct Browser(TcpStream);

/// An HTTP status and its reason phrase.
pub(crate) type Status = (u16, &'static str);

pub(crate) const OK: Status = (200, "OK");
pub(crate) const BAD_REQUEST: Status = (400, "Bad Request");
const NOT_FOUND: Status = (404, "Not Found");
const TOO_LARGE: Status = (431, "Request Header Fields Too Large");

impl Loopback {
    /// Listens on `127.0.0.1`, on a port the system picks.
    pub(crate) async fn bind() -> Result<Self> {
        let failed = |e| Error::new(ErrorKind::Transport, "cannot listen on 127.0.0.1 for the browser").with_source(e);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.map_err(failed)?;
        let port = listener.local_addr().map_err(failed)?.port();
        Ok(Self { listener, port })
    }

    /// The port listened on, for the redirect URI.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Waits up to `timeout` for the browser to come back to the callback with `state`, and returns the code and
    /// the browser, whose page is still to be shown. Every refusal (another state, an error, no code) has been
    /// shown to the browser when this returns it. The listener is closed on return.
    pub(crate) async fn wait(self, state: &str, timeout: Duration) -> Result<(String, Browser)> {
        let deadline = tokio::time::sleep_until(Instant::now() + timeout);
        tokio::pin!(deadline);
        let mut pending = FuturesUnordered::new();
        loop {
            tokio::select! {
                accepted = self.listener.accept(), if pending.len() < MAX_PENDING => match accepted {
                    Ok((conn, _)) => pending.push(read_head(conn)),
                    Err(e) => {
                        // Out of file descriptors, say: give the system a moment rather than spin.
                        tracing::debug!(error = %e, "accepting a connection for the sign-in callback failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(read) = pending.next(), if !pending.is_empty() => {
                    let Some((conn, target)) = read else { continue };
                    match callback_query(&target) {
                        None => Browser(conn).show(NOT_FOUND, "Not found", NOT_FOUND_TEXT).await,
                        Some(query) => return judge(query, state, Browser(conn)).await,
                    }
                }
                () = &mut deadline => {
                    return Err(Error::new(
                        ErrorKind::Unauthorized,
                        format!(
                            "the browser did not come back within {} s, so the sign-in stopped (if the sign-in \
                             page showed an error instead, is http://127.0.0.1{LOOPBACK_CALLBACK_PATH} a \
                             redirect URI of the app?)",
                            timeout.as_secs()
                        ),
                    ));
                }
            }
        }
    }
}

const NOT_FOUND_TEXT: &str = "This address only takes the browser back to the app after signing in.";

/// What the browser brought back to the callback: the code, or the reason there is none.
async fn judge(query: Query, state: &str, browser: Browser) -> Result<(String, Browser)> {
    if query.state.as_deref() != Some(state) {
        let text = "This page does not belong to the sign-in the app is waiting for (it may be from an earlier \
                    attempt), so it was refused. Return to the app and sign in again.";
        browser.show(BAD_REQUEST, "Sign-in refused", text).await;
        return Err(Error::new(
            ErrorKind::Unauthorized,
            "the browser came back from another sign-in than this one (its state does not match), so it was \
             refused: sign in again",
        ));
    }
    if let Some(error) = query.error {
        let refusal = OAuthError { error, error_description: query.error_description };
        let err = Error::from_oauth(refusal, None, None);
        browser
            .show(BAD_REQUEST, "Sign-in failed", &format!("{}. Return to the app and try again.", capital(&err)))
            .await;
        return Err(err);
    }
    match query.code.filter(|code| !code.is_empty()) {
        Some(code) => Ok((code, browser)),
        None => {
            browser.show(BAD_REQUEST, "Sign-in failed", "The browser came back without a sign-in code.").await;
            Err(Error::new(ErrorKind::InvalidRequest, "the browser came back to the app without a sign-in code"))
        }
    }
}

/// An error's message as a sentence.
pub(crate) fn capital(err: &Error) -> String {
    let text = err.to_string();
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The parameters of a callback, the first of each.
#[derive(Debug, Default, PartialEq, Eq)]
struct Query {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The parameters of a request target when it is the callback (`/callback?…`), else `None`.
fn callback_query(target: &str) -> Option<Query> {
    if !target.starts_with('/') {
        return None;
    }
    // After the host, so that a target of `//host/…` stays a path.
    let url = reqwest::Url::parse(&format!("http://127.0.0.1{target}")).ok()?;
    if url.path() != LOOPBACK_CALLBACK_PATH {
        return None;
    }
    let mut query = Query::default();
    for (name, value) in url.query_pairs() {
        let slot = match &*name {
            "code" => &mut query.code,
            "state" => &mut query.state,
            "error" => &mut query.error,
            "error_description" => &mut query.error_description,
            _ => continue,
        };
        slot.get_or_insert_with(|| value.into_owned());
    }
    Some(query)
}

/// The connection and the target of its `GET` request once its head has arrived; `None` for one that sent nothing
/// in time, broke off, or sent something else (answered, where an answer helps).
async fn read_head(mut conn: TcpStream) -> Option<(TcpStream, String)> {
    let mut head = Vec::with_capacity(1024);
    let complete = match tokio::time::timeout(HEAD_TIMEOUT, read_until_blank_line(&mut conn, &mut head)).await {
        Ok(Ok(complete)) => complete,
        _ => return None,
    };
    if !complete {
        Browser(conn).show(TOO_LARGE, "Request too large", NOT_FOUND_TEXT).await;
        return None;
    }
    let line = head.split(|&b| b == b'\n').next().and_then(|line| std::str::from_utf8(line).ok())?;
    let mut words = line.split_ascii_whitespace();
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some("GET"), Some(target), Some(version), None) if version.starts_with("HTTP/") => {
            Some((conn, target.to_owned()))
        }
        _ => {
            Browser(conn).show(NOT_FOUND, "Not found", NOT_FOUND_TEXT).await;
            None
        }
    }
}

/// Reads the request head into `head`: `true` once it ends with its blank line, `false` once it passed
/// [`MAX_HEAD`] without one.
async fn read_until_blank_line(conn: &mut TcpStream, head: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut buf = [0u8; 2048];
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(true);
        }
        if head.len() > MAX_HEAD {
            return Ok(false);
        }
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
}

impl Browser {
    /// Answers the browser with a small page, and closes the connection. A browser that left is not an error.
    pub(crate) async fn show(mut self, status: Status, title: &str, text: &str) {
        let body = page(title, text);
        let answer = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
             cache-control: no-store\r\nreferrer-policy: no-referrer\r\nx-content-type-options: nosniff\r\n\
             content-security-policy: default-src 'none'; style-src 'unsafe-inline'; img-src data:\r\n\
             connection: close\r\n\r\n{body}",
            status.0,
            status.1,
            body.len()
        );
        let sent = tokio::time::timeout(ANSWER_TIMEOUT, async {
            self.0.write_all(answer.as_bytes()).await?;
            self.0.shutdown().await
        })
        .await;
        if let Ok(Err(e)) = sent {
            tracing::debug!(error = %e, "the browser left before its sign-in page was sent");
        }
    }
}

/// A page saying `text` under `title`, both escaped: an error's description comes from the server. Its empty icon
/// keeps browsers from asking for `/favicon.ico`, whose 404 would be an error in the console.
fn page(title: &str, text: &str) -> String {
    let (title, text) = (escape(title), escape(text));
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
         <link rel=\"icon\" href=\"data:,\">\
         <style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;\
         line-height:1.5;color:#1d1d1f}}h1{{font-size:1.5rem}}</style></head>\
         <body><h1>{title}</h1><p>{text}</p></body></html>\n"
    )
}

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
    fn only_the_callback_path_is_the_callback() {
        let query = callback_query("/callback?code=c%2B1&state=s&code=second&other=x").unwrap();
        assert_eq!(query, Query { code: Some("c+1".into()), state: Some("s".into()), ..Query::default() });
        assert_eq!(callback_query("/callback"), Some(Query::default()));
        for target in ["/", "/favicon.ico", "/callback/x?code=c", "/callbackx", "//callback?code=c", "*", "x"] {
            assert_eq!(callback_query(target), None, "{target}");
        }
    }

    #[test]
    fn pages_escape_what_they_show() {
        let page = page("Sign-in failed", "<script>alert('x')</script> & \"more\"");
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;"), "{page}");
        assert!(!page.contains("<script>"));
    }
}
