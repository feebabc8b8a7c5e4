//! What a blob store's refusal means, in SyncKit's terms: S3's XML errors and the embedded store's JSON become
//! the same [`Error`]s with SyncKit's codes, whichever store answered.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use synckit_protocol::{ErrorBody, ErrorCode};

use crate::error::Error;
use crate::http::retry_after;

/// What a store's failed answer says, in SyncKit's terms. The embedded store answers SyncKit's JSON error body;
/// S3 answers XML (`<Error><Code>AccessDenied</Code><Message>…</Message></Error>`), whose codes are translated.
/// Stores word an expired URL differently (AWS: 403 `AccessDenied`; Garage: 400 `InvalidRequest`, "Date is too
/// old"), so a 400 or 403 to a URL past `expires_at` counts as the URL expiring. The body is read for at most
/// `within`.
pub(super) async fn store_error(resp: reqwest::Response, doing: &str, expires_at: Instant, within: Duration) -> Error {
    let status = resp.status();
    let retry_after = retry_after(resp.headers());
    let body = read_capped(resp, 16 * 1024, within).await;
    if let Ok(body) = serde_json::from_slice::<ErrorBody>(&body) {
        let message = format!("{doing}: {}", body.error.message);
        return Error::from_server(body.error.code, status.as_u16(), message, retry_after);
    }
    let text = String::from_utf8_lossy(&body);
    let s3_code = xml_element(&text, "Code");
    let detail = match (s3_code, xml_element(&text, "Message")) {
        (Some(code), Some(message)) => format!(" ({code}: {message})"),
        (Some(code), None) => format!(" ({code})"),
        _ => String::new(),
    };
    let expired = matches!(status, StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN) && Instant::now() >= expires_at;
    if expired {
        let message =
            format!("{doing}: the signed URL has expired; ask for a new one (the store answered {status}{detail})");
        return Error::from_server(ErrorCode::InvalidSignature, status.as_u16(), message, retry_after);
    }
    let message = format!("{doing}: the store answered {status}{detail}");
    Error::from_server(store_code(status, s3_code), status.as_u16(), message, retry_after)
}

/// SyncKit's code for a store's answer without one.
fn store_code(status: StatusCode, s3_code: Option<&str>) -> ErrorCode {
    match (status.as_u16(), s3_code) {
        (403, _) => ErrorCode::InvalidSignature,
        (404, _) => ErrorCode::BlobNotFound,
        (413, _) | (_, Some("EntityTooLarge")) => ErrorCode::BlobTooLarge,
        (
            400,
            Some("BadDigest" | "InvalidDigest" | "IncompleteBody" | "XAmzContentSHA256Mismatch" | "EntityTooSmall"),
        ) => ErrorCode::BlobMismatch,
        (429, _) => ErrorCode::RateLimited,
        (503, _) => ErrorCode::Unavailable,
        _ => ErrorCode::Unknown,
    }
}

/// The text of the first `<name>…</name>` in `xml`. Error bodies are flat, so no XML parser is needed.
fn xml_element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..start + len].trim())
}

/// At most `limit` bytes of an answer's body, read for at most `within`: error bodies are small and quick, and a
/// store is not trusted to keep them so. What arrived in time is kept; the status says enough without it.
async fn read_capped(mut resp: reqwest::Response, limit: usize, within: Duration) -> Vec<u8> {
    let deadline = tokio::time::Instant::now() + within;
    let mut body = Vec::new();
    while let Ok(Ok(Some(piece))) = tokio::time::timeout_at(deadline, resp.chunk()).await {
        body.extend_from_slice(&piece[..piece.len().min(limit - body.len())]);
        if body.len() == limit {
            break;
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::error::ErrorKind;

    /// An expiry a test's URL is still well within.
    fn in_a_minute() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn store_errors_are_read_as_synckit_codes() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message>\
                   </Error>";
        assert_eq!(xml_element(xml, "Code"), Some("AccessDenied"));
        assert_eq!(xml_element(xml, "Message"), Some("Request has expired"));
        assert_eq!(xml_element(xml, "Resource"), None);
        assert_eq!(store_code(StatusCode::FORBIDDEN, Some("AccessDenied")), ErrorCode::InvalidSignature);
        assert_eq!(store_code(StatusCode::BAD_REQUEST, Some("BadDigest")), ErrorCode::BlobMismatch);
        assert_eq!(store_code(StatusCode::BAD_REQUEST, Some("SomethingElse")), ErrorCode::Unknown);
        assert_eq!(store_code(StatusCode::NOT_FOUND, Some("NoSuchKey")), ErrorCode::BlobNotFound);
        assert_eq!(store_code(StatusCode::SERVICE_UNAVAILABLE, None), ErrorCode::Unavailable);
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> reqwest::Response {
        let mut resp = http::Response::builder().status(status);
        for (name, value) in headers {
            resp = resp.header(*name, *value);
        }
        resp.body(body.to_owned()).unwrap().into()
    }

    #[tokio::test]
    async fn each_stores_answers_become_the_same_errors() {
        let (valid, past) = (in_a_minute(), Instant::now());
        let error = |status, body: &'static str, expires_at| {
            store_error(answer(status, &[], body), "PUT", expires_at, Duration::from_secs(5))
        };

        // The embedded store speaks SyncKit's JSON.
        let local = r#"{"error":{"code":"invalid_signature","message":"the URL has expired; ask for a new one"}}"#;
        let e = error(403, local, valid).await;
        assert_eq!((e.kind(), e.code()), (ErrorKind::InvalidRequest, Some(ErrorCode::InvalidSignature)), "{e}");
        assert!(e.to_string().starts_with("PUT: the URL has expired"), "{e}");

        // AWS refuses an expired URL with 403 AccessDenied; Garage with 400 InvalidRequest, known by the URL's age.
        let aws =
            "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>";
        assert_eq!(error(403, aws, valid).await.code(), Some(ErrorCode::InvalidSignature));
        let garage = "<Error><Code>InvalidRequest</Code><Message>Bad request: Date is too old</Message></Error>";
        let e = error(400, garage, past).await;
        assert_eq!(e.code(), Some(ErrorCode::InvalidSignature), "{e}");
        assert!(e.to_string().contains("Date is too old"), "the store's words are kept: {e}");
        assert_eq!(error(400, garage, valid).await.code(), Some(ErrorCode::Unknown));

        // Other bytes than those signed; a missing object.
        let digest = "<Error><Code>BadDigest</Code><Message>checksum mismatch</Message></Error>";
        let e = error(400, digest, valid).await;
        assert_eq!((e.kind(), e.code()), (ErrorKind::InvalidRequest, Some(ErrorCode::BlobMismatch)), "{e}");
        let e = error(404, "<Error><Code>NoSuchKey</Code></Error>", valid).await;
        assert_eq!((e.kind(), e.code()), (ErrorKind::NotFound, Some(ErrorCode::BlobNotFound)), "{e}");

        // An overloaded store: retryable, after the time it asks for.
        let busy = answer(503, &[("retry-after", "7")], "<Error><Code>SlowDown</Code></Error>");
        let e = store_error(busy, "GET", valid, Duration::from_secs(5)).await;
        assert!(e.is_retryable(), "{e}");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_falls_silent_mid_error_is_not_waited_for() {
        let start = tokio::time::Instant::now();
        let first = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"<Error><Code>"))]);
        let body = reqwest::Body::wrap_stream(first.chain(futures::stream::pending()));
        let silent: reqwest::Response =
            http::Response::builder().status(503).header("retry-after", "2").body(body).unwrap().into();
        let e = store_error(silent, "GET", in_a_minute(), Duration::from_secs(30)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(30), "bounded by the attempt's timeout");
        assert_eq!((e.code(), e.retry_after()), (Some(ErrorCode::Unavailable), Some(Duration::from_secs(2))), "{e}");
    }
}
