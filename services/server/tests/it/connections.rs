//! Connections that send nothing, or too many connections: the server stays up and closes or queues them.

use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use synckit_server::settings::ServeSettings;
use synckit_testkit::{TestServer, engine, entries};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};

use crate::events::EventStream;

/// Long enough for a loaded machine to act on the short settings below, and shorter than the defaults, so that a
/// server which ignored the setting fails the test.
const WELL_WITHIN: Duration = Duration::from_secs(5);

/// What an HTTP/2 client sends first: the connection preface and an empty SETTINGS frame, and then no request.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// `GET /healthz` on stream 1, in a HEADERS frame that ends the stream: `:method GET` and `:scheme http` from the
/// static table, `:path` and `:authority` as literals with indexed names.
const HTTP2_GET_HEALTHZ: &[u8] = b"\x00\x00\x0f\x01\x05\x00\x00\x00\x01\x82\x86\x44\x08/healthz\x41\x01x";

#[tokio::test]
async fn silent_connections_are_closed_after_the_first_request_deadline() {
    assert!(WELL_WITHIN < ServeSettings::default().header_read_timeout);
    // Client and server share this process: each connection costs it two descriptors.
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let silent = 3_000.min(limit.saturating_sub(500) / 2) as usize;
    assert!(silent >= 1_000, "an open-file limit of {limit} is too low for this test");
    let app =
        TestServer::start_with(engine::embedded(), |s| s.serve.header_read_timeout = Duration::from_secs(2)).await;

    let mut silent_conns = Vec::with_capacity(silent);
    for _ in 0..silent {
        silent_conns.push(TcpStream::connect(app.addr).await.unwrap());
    }
    let mut preface_conns = Vec::with_capacity(50);
    for _ in 0..50 {
        let mut conn = TcpStream::connect(app.addr).await.unwrap();
        conn.write_all(HTTP2_PREFACE).await.unwrap();
        preface_conns.push(conn);
    }
    let (status, _) = app.get("/healthz", None).await;
    assert_eq!(status, StatusCode::OK, "a client must be served beside {} idle connections", silent + 50);

    let guard = Instant::now() + WELL_WITHIN;
    let (silent_open, preface_open) = tokio::join!(still_open(silent_conns, guard), still_open(preface_conns, guard));
    assert_eq!(
        (silent_open, preface_open),
        (0, 0),
        "(silent, preface-only) connections the server had not closed after the 2 s it was given"
    );
}

/// How many of `conns` have not read to their end (the server closed them) by `guard`. The server's own SETTINGS frame may come first on
/// HTTP/2; then the connection must end.
async fn still_open(conns: Vec<TcpStream>, guard: Instant) -> usize {
    let reads = join_all(conns.into_iter().map(|mut conn| async move {
        let mut buf = Vec::new();
        timeout_at(guard, conn.read_to_end(&mut buf)).await
    }));
    reads.await.iter().filter(|read| !matches!(read, Ok(Ok(_)))).count()
}

/// After its request, an HTTP/2 connection that stays idle for the header read timeout is told to go away.
#[tokio::test]
async fn idle_http2_connections_are_sent_away() {
    assert!(WELL_WITHIN < ServeSettings::default().header_read_timeout);
    let app =
        TestServer::start_with(engine::embedded(), |s| s.serve.header_read_timeout = Duration::from_secs(1)).await;
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(HTTP2_PREFACE).await.unwrap();
    conn.write_all(HTTP2_GET_HEALTHZ).await.unwrap();
    let mut data = Vec::new();
    let goaway = timeout(WELL_WITHIN, async {
        loop {
            let mut head = [0; 9];
            conn.read_exact(&mut head).await.unwrap();
            let mut payload = vec![0; usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2])];
            conn.read_exact(&mut payload).await.unwrap();
            match head[3] {
                0x0 => data.extend_from_slice(&payload),
                0x7 => return,
                _ => {}
            }
        }
    })
    .await;
    assert_eq!(String::from_utf8_lossy(&data), r#"{"status":"ok"}"#, "the request is answered first");
    assert!(goaway.is_ok(), "the server must send GOAWAY on an HTTP/2 connection idle for the 1 s it was given");
}

/// The deadline is for a connection's first request: a live-sync stream that outlasts it is not cut.
#[tokio::test]
async fn an_event_stream_outlives_the_first_request_deadline() {
    let app =
        TestServer::start_with(engine::embedded(), |s| s.serve.header_read_timeout = Duration::from_secs(1)).await;
    let user = app.user().await;
    let mut events = EventStream::open(&app, &user.token, None).await.unwrap();
    events.until("event: hello").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, _) = app.push(&user, &entries(1)).await;
    assert_eq!(status, StatusCode::OK);
    events.until("event: commit").await;
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_closes() {
    let app = TestServer::start_with(engine::embedded(), |s| {
        s.serve.max_connections = 2;
        s.serve.header_read_timeout = Duration::from_secs(60);
    })
    .await;
    // Two kept-alive connections, each answered, so the server has accepted both.
    let mut first = TcpStream::connect(app.addr).await.unwrap();
    assert!(healthz(&mut first).await.starts_with("HTTP/1.1 200"));
    let mut second = TcpStream::connect(app.addr).await.unwrap();
    assert!(healthz(&mut second).await.starts_with("HTTP/1.1 200"), "a connection under the cap is served");

    let mut third = TcpStream::connect(app.addr).await.unwrap(); // the kernel's backlog takes it
    let waiting = tokio::spawn(async move { healthz(&mut third).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished(), "a connection over the cap must wait, not be served");

    drop(first);
    let answer = timeout(WELL_WITHIN, waiting).await.expect("served once a connection closes").unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(healthz(&mut second).await.starts_with("HTTP/1.1 200"), "the connection under the cap still works");
}

#[tokio::test]
async fn connections_are_closed_at_their_maximum_age() {
    assert!(WELL_WITHIN < ServeSettings::default().max_connection_age);
    let app = TestServer::start_with(engine::embedded(), |s| {
        s.serve.max_connection_age = Duration::from_secs(1);
        s.serve.header_read_timeout = Duration::from_secs(60);
    })
    .await;
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    assert!(healthz(&mut conn).await.starts_with("HTTP/1.1 200"));
    let mut rest = Vec::new();
    let read = timeout(WELL_WITHIN, conn.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the server must close a kept-alive connection once it is 1 s old");
}

/// One HTTP/2 connection runs at most 32 requests at once, and the server says so in the SETTINGS frame it opens the
/// connection with: a client cannot make one connection carry hundreds of pulls.
#[tokio::test]
async fn http2_connections_allow_32_concurrent_requests() {
    let app = TestServer::start(engine::embedded()).await;
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(HTTP2_PREFACE).await.unwrap();
    let mut head = [0; 9];
    timeout(WELL_WITHIN, conn.read_exact(&mut head)).await.expect("the server's first frame").unwrap();
    assert_eq!(head[3], 0x4, "the server opens with SETTINGS");
    let mut payload = vec![0; usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2])];
    conn.read_exact(&mut payload).await.unwrap();
    let settings: Vec<(u16, u32)> = payload
        .chunks_exact(6)
        .map(|s| (u16::from_be_bytes([s[0], s[1]]), u32::from_be_bytes([s[2], s[3], s[4], s[5]])))
        .collect();
    const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    assert!(settings.contains(&(MAX_CONCURRENT_STREAMS, 32)), "SETTINGS {settings:?}");
}

/// Sends `GET /healthz` on a kept-alive HTTP/1.1 connection and returns the start of the answer.
async fn healthz(conn: &mut TcpStream) -> String {
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0; 4096];
    let n = conn.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}
