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

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, sleep};
use tower_layer::Layer as _;

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
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_connection_age: Duration::from_secs(3600),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The SDK multiplexes its requests and an event stream or two over one connection; 32 leaves room for that and
/// bounds what one connection can make the server do at once.
const MAX_CONCURRENT_STREAMS: u32 = 32;

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
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request| {
            let open = Open::start(activity.clone());
            let response = hyper::service::Service::call(&service, request);
            async move {
                let response = response.await?;
                Ok::<_, Infallible>(response.map(|body| Body::new(Tracked { body, _open: open })))
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
            }
        }
    }
}

/// What a connection's requests are doing: how many are open (until their response body is done or dropped) and
/// when the last one ended, for the idle limit.
#[derive(Debug)]
struct Activity {
    open: AtomicUsize,
    /// `None` until a request has ended.
    last_ended: Mutex<Option<Instant>>,
    used: AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Self { open: AtomicUsize::new(0), last_ended: Mutex::new(None), used: AtomicBool::new(false) }
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

/// A response body that holds its request open until it is done.
#[derive(Debug)]
struct Tracked {
    body: Body,
    _open: Open,
}

impl http_body::Body for Tracked {
    type Data = <Body as http_body::Body>::Data;
    type Error = <Body as http_body::Body>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
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
