//! How a transfer to or from the store gets over a failed attempt: which failures another attempt may fix, the
//! wait before it (back-off, or the store's `Retry-After` within reason), and when the signed URL itself is what
//! the store refuses, so that only a fresh one helps.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use synckit_protocol::ErrorCode;

use super::store_error::store_error;
use crate::crypto::blob::BlobId;
use crate::error::{Error, Result};
use crate::http::{Transport, backoff};

/// Whether the store refused the URL itself (expired, or not signed as sent): a fresh URL may work.
pub(super) fn is_refused_url(e: &Error) -> bool {
    e.code() == Some(ErrorCode::InvalidSignature)
}

/// When a URL valid for `secs` from now stops working.
pub(super) fn expiry(secs: u64) -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_secs(secs)).unwrap_or(now + Duration::from_secs(365 * 24 * 3600))
}

/// Refuses a URL past its expiry before using it: the store would, and not every store says why in the same way.
pub(super) fn check_not_expired(expires_at: Instant) -> Result<()> {
    if Instant::now() < expires_at {
        return Ok(());
    }
    // The store's code for it, so a caller handles an expired URL one way whichever side noticed.
    let message = "the signed URL has expired; ask for a new one".to_owned();
    Err(Error::from_server(ErrorCode::InvalidSignature, StatusCode::FORBIDDEN.as_u16(), message, None))
}

/// How one attempt at a transfer to or from the store ended, when it failed.
pub(super) enum Failure {
    /// Trying again may work: the network, or the store failing, busy or giving up waiting (5xx, 429, 408).
    Retry(Error),
    /// It will not: the store refused the request, or what it sent is wrong.
    Final(Error),
}

/// The retries of one transfer: after a failed attempt, back-off (or the wait the store asks for, within reason),
/// and another attempt, until [`max_retries`](crate::SyncKitConfig::max_retries) attempts in a row have failed.
pub(super) struct Retries {
    /// The blob transferred, for the logs.
    blob: BlobId,
    failures: u32,
    max: u32,
    /// The longest a store's `Retry-After` may hold a transfer up: the whole budget of a call, so a store asking for
    /// hours does not stall the transfer for as long.
    max_wait: Duration,
}

impl Retries {
    pub(super) fn new(transport: &Transport, blob: BlobId) -> Self {
        Self { blob, failures: 0, max: transport.max_retries(), max_wait: transport.total_timeout() }
    }

    /// Failed attempts in a row so far.
    pub(super) fn failures(&self) -> u32 {
        self.failures
    }

    /// The last attempt got further than any before: it earns the retries back.
    pub(super) fn progressed(&mut self) {
        self.failures = 0;
    }

    /// After a failed attempt: waits and answers `Ok` to try again, or the error when it is final or the retries
    /// are spent.
    pub(super) async fn wait(&mut self, failure: Failure) -> Result<()> {
        let err = match failure {
            Failure::Final(e) => return Err(e),
            Failure::Retry(e) if self.failures >= self.max => return Err(e),
            Failure::Retry(e) => e,
        };
        let delay = err.retry_after().map_or_else(|| backoff(self.failures), |asked| asked.min(self.max_wait));
        tracing::debug!(blob = %self.blob, failures = self.failures, ?delay, error = %err, "a blob transfer failed");
        tokio::time::sleep(delay).await;
        self.failures += 1;
        Ok(())
    }
}

/// A store's failed answer as an attempt's failure: worth retrying when the store failed, was busy or gave up
/// waiting (5xx, 429, 408), as for the server's own answers.
pub(super) async fn store_failure(
    resp: reqwest::Response,
    doing: &str,
    expires_at: Instant,
    within: Duration,
) -> Failure {
    let err = store_error(resp, doing, expires_at, within).await;
    if err.is_retryable() { Failure::Retry(err) } else { Failure::Final(err) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn an_expired_url_is_refused_the_same_whichever_side_noticed() {
        let expired = Error::from_server(ErrorCode::InvalidSignature, 403, "expired".into(), None);
        assert!(is_refused_url(&expired));
        assert_eq!(expired.kind(), ErrorKind::InvalidRequest);
        assert!(check_not_expired(expiry(60)).is_ok());
        let late = check_not_expired(Instant::now()).unwrap_err();
        assert!(is_refused_url(&late), "{late}");
    }

    #[tokio::test]
    async fn a_store_that_failed_was_busy_or_gave_up_is_tried_again() {
        let s3_error = |code: &str| format!("<Error><Code>{code}</Code><Message>m</Message></Error>");
        let answers = [
            (408, s3_error("RequestTimeout"), true),
            (429, s3_error("SlowDown"), true),
            (500, s3_error("InternalError"), true),
            (503, s3_error("ServiceUnavailable"), true),
            (400, s3_error("BadDigest"), false),
            (403, s3_error("AccessDenied"), false),
            (404, s3_error("NoSuchKey"), false),
        ];
        for (status, body, again) in answers {
            let resp = reqwest::Response::from(http::Response::builder().status(status).body(body).unwrap());
            let failure = store_failure(resp, "uploading", expiry(60), Duration::from_secs(1)).await;
            assert_eq!(matches!(failure, Failure::Retry(_)), again, "a {status} from the store");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_cannot_park_a_transfer_with_retry_after() {
        let mut retries = Retries { blob: BlobId([0; 32]), failures: 0, max: 2, max_wait: Duration::from_secs(120) };
        let busy = || {
            let hours = Some(Duration::from_secs(5 * 3600));
            Failure::Retry(Error::from_server(ErrorCode::Unavailable, 503, "busy".into(), hours))
        };
        let start = tokio::time::Instant::now();
        retries.wait(busy()).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(120), "the wait it asks for is capped");
        retries.wait(busy()).await.unwrap();
        assert_eq!(retries.failures(), 2);
        let spent = retries.wait(busy()).await.unwrap_err();
        assert_eq!(spent.code(), Some(ErrorCode::Unavailable));

        // An attempt that got further earns them back; a final failure ends at once.
        retries.progressed();
        retries.wait(busy()).await.unwrap();
        let refused = Error::from_server(ErrorCode::BlobMismatch, 400, "other bytes".into(), None);
        assert_eq!(retries.wait(Failure::Final(refused)).await.unwrap_err().code(), Some(ErrorCode::BlobMismatch));
    }
}
