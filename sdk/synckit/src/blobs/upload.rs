//! The upload itself: one streamed `PUT` of the sealed blob to a signed URL, started over on network errors.
//!
//! A blocking thread reads and seals the plaintext (the third pass, see [`super::passes`]) into a channel of a few
//! 64 KiB chunks; the request body drains it. So the file is never in memory, the runtime's threads never block,
//! and a slow network slows the reader down instead of filling memory. The request carries the server's headers
//! (`content-length` among them, so the body is not chunked) and nothing that could spoil the signature: no
//! `Authorization`, no content headers of its own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use reqwest::Body;
use reqwest::header::{CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::passes::{SealedChunk, seal_for_upload};
use super::progress::Tracker;
use super::retry::{Failure, Retries, check_not_expired, store_failure};
use super::types::{BlobUploadUrl, PreparedBlob};
use crate::SyncKitClient;
use crate::crypto::Keys;
use crate::error::{Error, ErrorKind, Result};

/// Sealed chunks read ahead of the network: 4 × 64 KiB.
const READ_AHEAD_CHUNKS: usize = 4;

/// Why an upload stopped.
pub(super) struct Stopped {
    pub(super) error: Error,
    /// It stopped on the first attempt with its URL: a refusal then was of a URL just fetched.
    pub(super) on_first_attempt: bool,
}

/// Uploads `blob` to `target`, starting over after network errors and 5xx answers with back-off.
pub(super) async fn put(
    client: &SyncKitClient,
    blob: &PreparedBlob,
    target: &BlobUploadUrl,
    tracker: &Tracker,
) -> Result<(), Stopped> {
    let Some(url) = &target.url else { return Ok(()) };
    let before_any_attempt = |error| Stopped { error, on_first_attempt: true };
    let url = parse_url(url).map_err(before_any_attempt)?;
    let headers = signed_headers(target, blob.sealed_size()).map_err(before_any_attempt)?;
    let keys = client.keys().map_err(before_any_attempt)?;
    let mut retries = Retries::new(client.transport(), blob.id);
    loop {
        let on_first_attempt = retries.failures() == 0;
        let stopped = move |error| Stopped { error, on_first_attempt };
        check_not_expired(target.expires_at).map_err(stopped)?;
        let attempt = Attempt { client, keys: &keys, blob, tracker, expires_at: target.expires_at };
        match attempt.run(url.clone(), headers.clone()).await {
            Ok(()) => return Ok(()),
            Err(failure) => retries.wait(failure).await.map_err(stopped)?,
        }
    }
}

/// The target's URL: the SDK made it absolute (see [`BlobUploadUrl::url`]).
fn parse_url(url: &str) -> Result<reqwest::Url> {
    reqwest::Url::parse(url).map_err(|e| {
        Error::new(ErrorKind::InvalidInput, format!("the upload URL {url:?} is not an absolute URL")).with_source(e)
    })
}

/// The target's headers, checked: the server must not ask for another length than the blob's.
fn signed_headers(target: &BlobUploadUrl, sealed_size: u64) -> Result<HeaderMap> {
    let bad = |what: String| Error::new(ErrorKind::Server, format!("the server's upload headers are unusable: {what}"));
    let mut headers = HeaderMap::new();
    for (name, value) in &target.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad(format!("{name:?}")))?;
        let value = HeaderValue::from_str(value).map_err(|_| bad(format!("{name}: {value:?}")))?;
        headers.insert(name, value);
    }
    match headers.get(CONTENT_LENGTH) {
        // The body is a stream: without a length it would go chunked, which signed uploads refuse.
        None => {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(sealed_size));
        }
        Some(len) if len.to_str().ok().and_then(|l| l.parse::<u64>().ok()) != Some(sealed_size) => {
            return Err(bad(format!("content-length {len:?} for a blob of {sealed_size} bytes")));
        }
        Some(_) => {}
    }
    Ok(headers)
}

/// One attempt at the `PUT`.
struct Attempt<'a> {
    client: &'a SyncKitClient,
    keys: &'a Keys,
    blob: &'a PreparedBlob,
    tracker: &'a Tracker,
    expires_at: std::time::Instant,
}

impl Attempt<'_> {
    async fn run(self, url: reqwest::Url, headers: HeaderMap) -> Result<(), Failure> {
        let transport = self.client.transport();
        let idle = transport.attempt_timeout();
        let activity = Activity::new(idle);
        // Once the body is out, the store checks and stores it before it answers: for the embedded store, syncing
        // up to 500 MiB to disk. That may take longer than a pause in the transfer should, but not for ever.
        let answer = transport.total_timeout().max(idle);
        let (body, reader_failure) = self.body(activity.clone(), answer);
        let send = transport.http().put(url).headers(headers).body(body).send();
        let resp = match activity.limit(send).await {
            None if activity.answering() => {
                let err = Error::new(ErrorKind::Transport, "the store did not answer once the upload was sent");
                return Err(Failure::Retry(err));
            }
            None => return Err(Failure::Retry(Error::new(ErrorKind::Transport, "the upload stalled"))),
            Some(Err(e)) => {
                // The body stream failed because the source did: that is the error, and it is final.
                if let Some(e) = reader_failure.lock().expect("not poisoned").take() {
                    return Err(Failure::Final(e));
                }
                let err = Error::new(ErrorKind::Transport, "the upload to the store broke off").with_source(e);
                return Err(Failure::Retry(err));
            }
            Some(Ok(resp)) => resp,
        };
        if resp.status().is_success() {
            return Ok(());
        }
        Err(store_failure(resp, "the store refused the upload", self.expires_at, idle).await)
    }

    /// The request body: sealed chunks from a blocking reader thread, counted for progress as the body takes
    /// them; after the last one, the store has `answer` to answer. Also returns where the reader leaves its error
    /// if it fails.
    fn body(&self, activity: Activity, answer: Duration) -> (Body, Arc<Mutex<Option<Error>>>) {
        let (tx, mut rx) = mpsc::channel::<std::io::Result<SealedChunk>>(READ_AHEAD_CHUNKS);
        let failure = Arc::new(Mutex::new(None));
        let (keys, blob, slot) = (self.keys.clone(), self.blob.clone(), failure.clone());
        tokio::task::spawn_blocking(move || {
            // Sending fails once the request is over (done, or dropped): then the reader stops.
            let sealed = seal_for_upload(&keys, &blob, |chunk| tx.blocking_send(Ok(chunk)).is_ok());
            if let Err(e) = sealed {
                *slot.lock().expect("not poisoned") = Some(e);
                let _ = tx.blocking_send(Err(std::io::Error::other("the blob's source failed")));
            }
        });
        let (tracker, total) = (self.tracker.clone(), self.blob.size());
        let mut done = 0u64;
        let chunks = futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).map(move |chunk| {
            let chunk = chunk?;
            done += chunk.plain_len as u64;
            // Every chunk but the last holds plaintext, so the total is reached with the last one.
            if done == total {
                activity.await_answer(answer);
            } else {
                activity.touch();
            }
            tracker.reached(done);
            Ok::<_, std::io::Error>(chunk.bytes)
        });
        (Body::wrap_stream(chunks), failure)
    }
}

/// How long an attempt may go on without a byte moving: it fails after a whole `idle` timeout of silence, however
/// long the transfer takes in all, and after a longer one once the whole body is out and the store is answering.
#[derive(Clone)]
struct Activity(Arc<Mutex<Watch>>);

struct Watch {
    /// When the transfer last moved.
    last: Instant,
    /// How long it may then stay still.
    patience: Duration,
    answering: bool,
}

impl Activity {
    fn new(idle: Duration) -> Self {
        Self(Arc::new(Mutex::new(Watch { last: Instant::now(), patience: idle, answering: false })))
    }

    fn watch(&self) -> std::sync::MutexGuard<'_, Watch> {
        self.0.lock().expect("not poisoned")
    }

    /// Bytes moved just now.
    fn touch(&self) {
        self.watch().last = Instant::now();
    }

    /// The whole body is out: from now on, the store has `patience` to answer.
    fn await_answer(&self, patience: Duration) {
        *self.watch() = Watch { last: Instant::now(), patience, answering: true };
    }

    /// Whether the whole body is out.
    fn answering(&self) -> bool {
        self.watch().answering
    }

    fn deadline(&self) -> Instant {
        let watch = self.watch();
        watch.last + watch.patience
    }

    /// `work`'s output, or `None` once it has stayed still past its patience.
    async fn limit<F: Future>(&self, work: F) -> Option<F::Output> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return Some(out),
                () = tokio::time::sleep_until(self.deadline()) => {
                    if self.deadline() <= Instant::now() {
                        return None;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(headers: &[(&str, &str)]) -> BlobUploadUrl {
        BlobUploadUrl {
            url: Some("http://127.0.0.1:1/b".into()),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            already_exists: false,
            expires_at: std::time::Instant::now() + Duration::from_secs(60),
        }
    }

    #[test]
    fn the_servers_headers_are_sent_as_they_are() {
        let headers =
            signed_headers(&target(&[("content-length", "116"), ("x-amz-checksum-sha256", "abc=")]), 116).unwrap();
        assert_eq!(headers.len(), 2);
        assert_eq!(headers["x-amz-checksum-sha256"], "abc=");
        // Without a length, the blob's: a streamed body needs one.
        assert_eq!(signed_headers(&target(&[]), 116).unwrap()[CONTENT_LENGTH], "116");
        // Another length, or a header that is not one, is the server's mistake.
        assert_eq!(signed_headers(&target(&[("content-length", "5")]), 116).unwrap_err().kind(), ErrorKind::Server);
        assert_eq!(signed_headers(&target(&[("bad header", "x")]), 116).unwrap_err().kind(), ErrorKind::Server);
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_transfer_that_stops_moving_times_out() {
        let activity = Activity::new(Duration::from_secs(8));
        let busy = activity.clone();
        let moving = async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_secs(5)).await;
                busy.touch();
            }
            "done"
        };
        assert_eq!(activity.limit(moving).await, Some("done"), "50 s, never idle 8 s");
        let stuck = std::future::pending::<()>();
        assert_eq!(activity.limit(stuck).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_store_has_longer_to_answer_once_the_body_is_out() {
        let activity = Activity::new(Duration::from_secs(8));
        let sent = activity.clone();
        let answered_late = async move {
            sent.await_answer(Duration::from_secs(120));
            tokio::time::sleep(Duration::from_secs(90)).await;
            "stored"
        };
        assert_eq!(activity.limit(answered_late).await, Some("stored"), "90 s to sync a large file");
        assert!(activity.answering());

        let silent = Activity::new(Duration::from_secs(8));
        silent.await_answer(Duration::from_secs(120));
        let start = Instant::now();
        assert_eq!(silent.limit(std::future::pending::<()>()).await, None, "but not for ever");
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(120) && waited < Duration::from_secs(121), "{waited:?}");
    }
}
