//! The accept loop, and the limits that keep idle or silent connections from exhausting the process.
//!
//! `axum::serve` has none of them. Each connection holds a file descriptor and a task, and the descriptors are shared
//! with SQLite, the Postgres pool and blob files; a few thousand connections that send nothing would otherwise starve
//! them all. So every connection is bounded in four ways:
//! - a deadline from accept to its first request, on both protocols (hyper's protocol detection and HTTP/2 have none);
//! - a maximum age, after which it is asked to close (HTTP/2 GOAWAY) and, a grace period later, closed;
//! - HTTP/2 keep-alive pings, which close connections whose peer is gone, and a small `max_concurrent_streams`;
//! - TCP keepalive, which does the same for HTTP/1 connections whose peer vanished without a FIN.
//!
//! And their number is capped: over the cap, the loop stops accepting, so new connections wait in the kernel's listen
//! backlog (and past it, their SYNs go unanswered and clients retry) instead of costing a descriptor each.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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
    /// both protocols, and every later one's on HTTP/1.
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
    let requested = Arc::new(AtomicBool::new(false));
    let service = {
        let requested = requested.clone();
        hyper::service::service_fn(move |request| {
            requested.store(true, Ordering::Relaxed);
            hyper::service::Service::call(&service, request)
        })
    };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
    let (first_request, max_age, grace) =
        (options.header_read_timeout, options.max_connection_age, options.shutdown_grace);

    async move {
        let _permit = permit;
        let mut conn = std::pin::pin!(conn);
        let first_request = sleep(first_request);
        // At its maximum age or at shutdown (or if the server is gone), a connection drains.
        let drain = async move {
            tokio::select! {
                () = sleep(max_age) => {}
                _ = closing.changed() => {}
            }
        };
        let forced_close = sleep(grace);
        tokio::pin!(first_request, drain, forced_close);
        let (mut waiting_for_first, mut draining) = (true, false);
        loop {
            tokio::select! {
                ended = conn.as_mut() => {
                    if let Err(e) = ended {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                // Dropping the connection closes its socket: no request came, so there is nothing to finish.
                () = &mut first_request, if waiting_for_first => {
                    if !requested.load(Ordering::Relaxed) {
                        tracing::debug!(%peer, "no request before the deadline; closing");
                        return;
                    }
                    waiting_for_first = false;
                }
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
