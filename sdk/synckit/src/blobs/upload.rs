//! The upload itself: one streamed `PUT` of the sealed blob to a signed URL, started over on network errors.
//!
//! A blocking thread reads and seals the plaintext (the third pass, see [`super::source`]) into a channel of a few
//! 64 KiB chunks; the request body drains it. So the file is never in memory, the runtime's threads never block,
//! and a slow network slows the reader down instead of filling memory. The request carries the server's headers
//! (`content-length` among them, so the body is not chunked) and nothing that could spoil the signature: no
//! `Authorization`, no content headers of its own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Body, StatusCode};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::source::{SealedChunk, seal_for_upload};
use super::{BlobUploadUrl, PreparedBlob, Tracker, check_not_expired, store_error};
use crate::SyncKitClient;
use crate::crypto::Keys;
use crate::error::{Error, ErrorKind, Result};
use crate::http::backoff;

/// Sealed chunks read ahead of the network: 4 × 64 KiB.
const READ_AHEAD_CHUNKS: usize = 4;

/// How one attempt ended, when it failed.
enum Failure {
    /// Trying again may work: the network, or the store failing (5xx).
    Retry(Error),
    /// It will not: the store refused the request, or the source cannot be read.
    Final(Error),
}

/// Uploads `blob` to `target`, starting over after network errors and 5xx answers with back-off.
pub(super) async fn put(
    client: &SyncKitClient,
    blob: &PreparedBlob,
    target: &BlobUploadUrl,
    tracker: &Tracker,
) -> Result<()> {
    let Some(url) = &target.url else { return Ok(()) };
    let transport = client.transport();
    let url = transport.resolve(url)?;
    let headers = signed_headers(target, blob.sealed_size())?;
    let keys = client.keys()?;
    let mut failures = 0;
    loop {
        check_not_expired(target.expires_at)?;
        let attempt = Attempt { client, keys: &keys, blob, tracker, expires_at: target.expires_at };
        let err = match attempt.run(url.clone(), headers.clone()).await {
            Ok(()) => return Ok(()),
            Err(Failure::Final(e)) => return Err(e),
            Err(Failure::Retry(e)) => e,
        };
        if failures >= transport.max_retries() {
            return Err(err);
        }
        let delay = err.retry_after().unwrap_or_else(|| backoff(failures));
        tracing::debug!(blob = %blob.id, failures, ?delay, error = %err, "upload failed; starting over");
        tokio::time::sleep(delay).await;
        failures += 1;
    }
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
        let activity = Activity::now();
        let (body, reader_failure) = self.body(activity.clone());
        let send = transport.http().put(url).headers(headers).body(body).send();
        let sent = activity.limit(send, transport.attempt_timeout()).await;
        let resp = match sent {
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
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let err = store_error(resp, "the store refused the upload", self.expires_at).await;
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Err(Failure::Retry(err))
        } else {
            Err(Failure::Final(err))
        }
    }

    /// The request body: sealed chunks from a blocking reader thread, counted for progress as the body takes
    /// them. Also returns where the reader leaves its error if it fails.
    fn body(&self, activity: Activity) -> (Body, Arc<Mutex<Option<Error>>>) {
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
        let tracker = self.tracker.clone();
        let mut done = 0u64;
        let chunks = futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).map(move |chunk| {
            let chunk = chunk?;
            done += chunk.plain_len as u64;
            activity.touch();
            tracker.reached(done);
            Ok::<_, std::io::Error>(chunk.bytes)
        });
        (Body::wrap_stream(chunks), failure)
    }
}

/// When a transfer last moved: an attempt fails after a whole timeout without a byte moving, however long the
/// transfer takes in all.
#[derive(Clone)]
struct Activity(Arc<Mutex<Instant>>);

impl Activity {
    fn now() -> Self {
        Self(Arc::new(Mutex::new(Instant::now())))
    }

    fn touch(&self) {
        *self.0.lock().expect("not poisoned") = Instant::now();
    }

    fn last(&self) -> Instant {
        *self.0.lock().expect("not poisoned")
    }

    /// `work`'s output, or `None` once `idle` passes without a [`touch`](Self::touch).
    async fn limit<F: Future>(&self, work: F, idle: Duration) -> Option<F::Output> {
        tokio::pin!(work);
        loop {
            let deadline = self.last() + idle;
            tokio::select! {
                out = &mut work => return Some(out),
                () = tokio::time::sleep_until(deadline) => {
                    if self.last() + idle <= Instant::now() {
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
        let activity = Activity::now();
        let busy = activity.clone();
        let moving = async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_secs(5)).await;
                busy.touch();
            }
            "done"
        };
        assert_eq!(activity.limit(moving, Duration::from_secs(8)).await, Some("done"), "50 s, never idle 8 s");
        let stuck = std::future::pending::<()>();
        assert_eq!(activity.limit(stuck, Duration::from_secs(8)).await, None);
    }
}
