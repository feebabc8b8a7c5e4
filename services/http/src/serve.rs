//! The accept loop, and the limits that keep idle or silent connections from exhausting the process.
//!
//! `axum::serve` has none of them. Each connection holds a file descriptor and a task, and the descriptors are shared
//! with SQLite, the Postgres pool and blob files; a few thousand connections that send nothing would otherwise starve
//! them all. So every connection is bounded in four ways:
//! - a deadline from accept to its first request, on both protocols (hyper's protocol detection and HTTP/2 have none),
//!   and the same limit on idleness after it (no request open): HTTP/1 has it from hyper, HTTP/2 gets a GOAWAY;
//! - a maximum age, after which it is asked to close (HTTP/2 GOAWAY) and, a grace period later, closed;
//! - HTTP/2 keep-alive pings, which close connections whose peer is gone, and a small `max_concurrent_streams`;
//! - TCP keepalive, which does the same for HTTP/1 connections whose peer vanished without a FIN.
//!
//! And their number is capped: over the cap, the loop stops accepting, so new connections wait in the kernel's listen
//! backlog (and past it, their SYNs go unanswered and clients retry) instead of costing a descriptor each.
//!
//! Every request is bounded while it moves bytes, in both directions:
//! - a request body that sends nothing for `body_read_timeout` (while a handler reads it) is answered 408
//!   `request_timeout`, and an HTTP/1 connection is closed after that answer;
//! - a response body that makes no write progress for `write_timeout` (the connection took none of what it was
//!   handed) closes its connection, and so frees the response. Large response frames are handed over in 64 KiB
//!   chunks, so progress is seen as it happens. A response that is merely waiting for something to send (an event
//!   stream between events) is not stalled: it is cut only when what it sent is not taken.
//!
//! The memory budget's reservations ([`crate::budget::Held`]) go with the response body, until it has been handed to
//! the connection in full or dropped.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Version, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use socket2::{SockRef, TcpKeepalive};
use synckit_protocol::ErrorCode;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep, sleep};
use tower_layer::Layer as _;

use crate::ApiError;
use crate::budget::Held;

/// Limits of the accept loop.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// A connection that has not sent a complete request head within this time is closed: the first request's on
    /// both protocols, and every later one's on HTTP/1. An HTTP/2 connection with no request open for this long is
    /// asked to close.
    pub header_read_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// A connection older than this is asked to close, so that no client holds one for ever.
    pub max_connection_age: Duration,
    /// After shutdown is signalled, or a connection reaches its maximum age, its requests get this long to finish.
    pub shutdown_grace: Duration,
    /// A request body that sends nothing for this long while it is read is answered 408.
    pub body_read_timeout: Duration,
    /// A response that makes no write progress for this long closes its connection.
    pub write_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_connection_age: Duration::from_secs(3600),
            shutdown_grace: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// The SDK multiplexes its requests and an event stream or two over one connection; 32 leaves room for that and
/// bounds what one connection can make the server do at once.
const MAX_CONCURRENT_STREAMS: u32 = 32;

/// The largest piece of a response body handed to the connection at once: progress is seen per piece, and HTTP/2
/// buffers at most two pieces per stream beyond what the peer's window takes.
const WRITE_CHUNK: usize = 64 * 1024;

/// How often the loop may say that it is at its connection cap.
const CAP_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting and lets in-flight requests finish
/// (up to the grace period).
pub async fn serve(listener: TcpListener, app: Router, options: ServeOptions, shutdown: impl Future<Output = ()>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(options.header_read_timeout);
    // Pings close connections whose peer is gone; a peer that answers them is bounded by the maximum age instead.
    // An open stream (a live-sync event stream) does not make a connection idle: the pings keep flowing beside it.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    let permits = Arc::new(Semaphore::new(options.max_connections));
    let mut last_cap_warning: Option<Instant> = None;
    // Connections hold a receiver each; the sender sees them all gone when every connection has closed.
    let (closing, closing_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if last_cap_warning.is_none_or(|at| at.elapsed() >= CAP_WARNING_INTERVAL) {
                    last_cap_warning = Some(Instant::now());
                    tracing::warn!(
                        max_connections = options.max_connections,
                        "connection cap reached (serve.max_connections): new connections wait in the listen backlog"
                    );
                }
                tokio::select! {
                    permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        tune(&stream);
        tokio::spawn(connection(&builder, stream, peer, &app, &options, closing_rx.clone(), permit));
    }

    drop(listener);
    drop(closing_rx);
    tracing::info!("shutting down: waiting for in-flight requests");
    let _ = closing.send(true);
    // Each connection closes itself at the end of its grace; this wait only reports which way it went.
    tokio::select! {
        () = closing.closed() => tracing::info!("all connections closed"),
        () = sleep(options.shutdown_grace) => tracing::warn!("grace period over; closing remaining connections"),
    }
}

/// No Nagle delay for small responses, and TCP keepalive so that a peer which vanished without a FIN is noticed on
/// HTTP/1 too (HTTP/2 has its pings) within a few minutes rather than the kernel's two hours.
fn tune(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let keepalive = TcpKeepalive::new().with_time(Duration::from_secs(60)).with_interval(Duration::from_secs(10));
    if let Err(e) = SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!(error = %e, "could not set TCP keepalive");
    }
}

/// Drives one connection to its end under the connection limits; `permit` is its place under the cap, held until
/// the connection closes.
fn connection(
    builder: &auto::Builder<TokioExecutor>,
    stream: TcpStream,
    peer: std::net::SocketAddr,
    app: &Router,
    options: &ServeOptions,
    mut closing: watch::Receiver<bool>,
    permit: OwnedSemaphorePermit,
) -> impl Future<Output = ()> + Send + 'static {
    // The peer's address, for what limits by client (the sign-in throttle): axum's `ConnectInfo`.
    let service = TowerToHyperService::new(Extension(ConnectInfo(peer)).layer(app.clone()));
    let activity = Arc::new(Activity::new());
    let (body_read_timeout, write_timeout) = (options.body_read_timeout, options.write_timeout);
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let open = Open::start(activity.clone());
            let http1 = request.version() < Version::HTTP_2;
            let stalled = Arc::new(AtomicBool::new(false));
            let request = request.map(|body| Body::new(Watched::new(body, body_read_timeout, stalled.clone())));
            let response = hyper::service::Service::call(&service, request);
            async move {
                let mut response = response.await?;
                if stalled.load(Ordering::Acquire) {
                    // Whatever the handler made of a cut body, the client hears why; the reservations of the
                    // handler's answer go with it.
                    response = body_stalled(body_read_timeout, http1);
                }
                let held = response.extensions_mut().remove::<Held>();
                Ok::<_, Infallible>(response.map(|body| Body::new(Tracked::new(body, held, open))))
            }
        })
    };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
    let (idle_limit, max_age, grace) =
        (options.header_read_timeout, options.max_connection_age, options.shutdown_grace);

    async move {
        let _permit = permit;
        let mut conn = std::pin::pin!(conn);
        let idle = sleep(idle_limit);
        // At its maximum age or at shutdown (or if the server is gone), a connection drains.
        let drain = async move {
            tokio::select! {
                () = sleep(max_age) => {}
                _ = closing.changed() => {}
            }
        };
        let forced_close = sleep(grace);
        let check_every = (write_timeout / 2).max(Duration::from_millis(100));
        let mut stall_check = tokio::time::interval_at(Instant::now() + check_every, check_every);
        stall_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(idle, drain, forced_close);
        let mut draining = false;
        loop {
            tokio::select! {
                ended = conn.as_mut() => {
                    if let Err(e) = ended {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                () = &mut idle, if !draining => match activity.idle_since() {
                    // Dropping the connection closes its socket: no request came, so there is nothing to finish.
                    None if activity.never_used() => {
                        tracing::debug!(%peer, "no request before the deadline; closing");
                        return;
                    }
                    Some(since) if since.elapsed() >= idle_limit => {
                        conn.as_mut().graceful_shutdown();
                        forced_close.as_mut().reset(Instant::now() + grace);
                        draining = true;
                    }
                    Some(since) => idle.as_mut().reset(since + idle_limit),
                    // A request is open (an event stream, say): it is not idle.
                    None => idle.as_mut().reset(Instant::now() + idle_limit),
                },
                // GOAWAY on HTTP/2, `Connection: close` on HTTP/1: in-flight requests finish, clients reconnect.
                () = &mut drain, if !draining => {
                    conn.as_mut().graceful_shutdown();
                    forced_close.as_mut().reset(Instant::now() + grace);
                    draining = true;
                }
                // An event stream never finishes by itself; the SDK reconnects when it is cut.
                () = &mut forced_close, if draining => return,
                // Dropping the connection drops its responses, and with them their memory and reservations.
                _ = stall_check.tick() => {
                    if activity.stalled_since().is_some_and(|since| since.elapsed() >= write_timeout) {
                        tracing::info!(
                            %peer,
                            "a response made no write progress for {} s (serve.write_timeout_secs); closing its \
                             connection",
                            write_timeout.as_secs()
                        );
                        return;
                    }
                }
            }
        }
    }
}

/// What a connection's requests are doing: how many are open (until their response body is done or dropped), when
/// the last one ended, for the idle limit, and since when each response has waited for the connection to take what
/// it handed over, for the write deadline.
#[derive(Debug)]
struct Activity {
    open: AtomicUsize,
    /// `None` until a request has ended.
    last_ended: Mutex<Option<Instant>>,
    used: AtomicBool,
    /// Responses that handed over a piece of their body and have not been asked for the next, by response number:
    /// since when.
    handed: Mutex<HashMap<u64, Instant>>,
    responses: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            open: AtomicUsize::new(0),
            last_ended: Mutex::new(None),
            used: AtomicBool::new(false),
            handed: Mutex::new(HashMap::new()),
            responses: AtomicU64::new(0),
        }
    }

    fn handed(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Instant>> {
        self.handed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Since when the longest-waiting response has waited for the connection to take what it handed over.
    fn stalled_since(&self) -> Option<Instant> {
        self.handed().values().min().copied()
    }

    fn never_used(&self) -> bool {
        !self.used.load(Ordering::Acquire)
    }

    /// Since when no request has been open, or `None` while one is (or none has ended yet).
    fn idle_since(&self) -> Option<Instant> {
        if self.open.load(Ordering::Acquire) > 0 {
            return None;
        }
        *self.last_ended.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One open request; dropped with its response body, or with the request if it fails or is cancelled.
#[derive(Debug)]
struct Open(Arc<Activity>);

impl Open {
    fn start(activity: Arc<Activity>) -> Self {
        activity.used.store(true, Ordering::Release);
        activity.open.fetch_add(1, Ordering::AcqRel);
        Self(activity)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        *self.0.last_ended.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that holds its request open, and its memory reservations, until it is done; hands large frames
/// over in pieces; and tells the connection when it is waiting for a piece to be taken.
#[derive(Debug)]
struct Tracked {
    body: Body,
    /// The rest of a frame larger than a piece.
    rest: Option<Bytes>,
    held: Option<Held>,
    /// This response's number on its connection.
    id: u64,
    /// Whether a piece was handed over and the next not yet asked for.
    waiting: bool,
    open: Open,
}

impl Tracked {
    fn new(body: Body, held: Option<Held>, open: Open) -> Self {
        let id = open.0.responses.fetch_add(1, Ordering::Relaxed);
        Self { body, rest: None, held, id, waiting: false, open }
    }

    fn next_piece(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let mut data = match self.rest.take() {
            Some(rest) => rest,
            None => match std::task::ready!(http_body::Body::poll_frame(Pin::new(&mut self.body), cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                other => return Poll::Ready(other),
            },
        };
        if data.len() > WRITE_CHUNK {
            let piece = data.split_to(WRITE_CHUNK);
            self.rest = Some(data);
            data = piece;
        }
        Poll::Ready(Some(Ok(http_body::Frame::data(data))))
    }
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.waiting {
            this.waiting = false;
            this.open.0.handed().remove(&this.id);
        }
        let frame = this.next_piece(cx);
        if http_body::Body::is_end_stream(this) || matches!(frame, Poll::Ready(None | Some(Err(_)))) {
            // Handed over in full (or failed): the memory is the connection's now, a write buffer's worth at most.
            this.held = None;
        } else if matches!(&frame, Poll::Ready(Some(Ok(f))) if f.is_data()) {
            this.waiting = true;
            this.open.0.handed().insert(this.id, Instant::now());
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_none() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let hint = self.body.size_hint();
        let Some(rest) = &self.rest else { return hint };
        let rest = rest.len() as u64;
        let mut sum = http_body::SizeHint::new();
        sum.set_lower(hint.lower() + rest);
        if let Some(upper) = hint.upper() {
            sum.set_upper(upper + rest);
        }
        sum
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if self.waiting {
            self.open.0.handed().remove(&self.id);
        }
    }
}

/// A request body that fails, and says so in `stalled`, when it sends nothing for `limit` while it is read.
#[derive(Debug)]
struct Watched {
    body: Incoming,
    limit: Duration,
    /// Armed the first time the body has nothing to give, and pushed back by every frame.
    timer: Option<Pin<Box<Sleep>>>,
    stalled: Arc<AtomicBool>,
}

impl Watched {
    fn new(body: Incoming, limit: Duration, stalled: Arc<AtomicBool>) -> Self {
        Self { body, limit, timer: None, stalled }
    }
}

/// The error a stalled request body ends with.
#[derive(Debug)]
struct BodyStalled(Duration);

impl std::fmt::Display for BodyStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the request body sent nothing for {} s", self.0.as_secs())
    }
}

impl std::error::Error for BodyStalled {}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.stalled.load(Ordering::Relaxed) {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(timer) = &mut this.timer {
                    timer.as_mut().reset(Instant::now() + this.limit);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let limit = this.limit;
                let timer = this.timer.get_or_insert_with(|| Box::pin(sleep(limit)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.stalled.store(true, Ordering::Release);
                        Poll::Ready(Some(Err(Box::new(BodyStalled(limit)))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// 408 for a request whose body stalled; an HTTP/1 connection is closed after it, since the rest of the body would
/// otherwise be read as the next request. (An HTTP/2 stream ends alone.)
fn body_stalled(limit: Duration, http1: bool) -> Response {
    let mut response = ApiError::new(
        ErrorCode::RequestTimeout,
        format!("the request body sent nothing for {} s (serve.body_read_timeout_secs)", limit.as_secs()),
    )
    .into_response();
    if http1 {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that vanished without a FIN is found by keepalive probes.
    #[tokio::test]
    async fn accepted_connections_get_tcp_keepalive() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        tune(&accepted);
        let socket = SockRef::from(&accepted);
        assert!(socket.keepalive().unwrap());
        assert!(socket.tcp_nodelay().unwrap());
    }
}
