//! `GET /api/sync/events`: a server-sent-events stream that tells a device when to pull.
//!
//! Each query instance holds one subscription to the commit bus (all streams) and fans notices out to its own
//! connections through a [`Hub`]: a broadcast channel per stream with connections. A slow connection lags its
//! own channel and skips stale notices, which only said "pull": it never blocks the bus or the others.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde_json::json;
use synckit_bus::{CommitBus, CommitNotice};
use synckit_http::{ApiError, Authenticated, AuthenticatedDevice, Authenticator};
use synckit_protocol::{ErrorBody, ErrorCode, paths};
use synckit_store::StreamId;
use tokio::sync::{broadcast, watch};
use tracing::instrument;

use crate::QueryState;

/// Notices buffered per stream for its connections.
const PER_STREAM_BUFFER: usize = 64;

/// Limits of the events endpoint: the server's `events` settings (`SYNCKIT_EVENTS_*`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventSettings {
    /// Open event streams per (app, user) on one instance; more get 429.
    #[serde(rename = "max_per_user")]
    pub max_connections_per_user: usize,
    /// A connection is closed after this long (the client reconnects), so load rebalances and nothing lives for
    /// ever.
    #[serde(with = "synckit_http::secs", rename = "max_lifetime_secs")]
    pub max_lifetime: Duration,
    /// A comment line this often keeps proxies from closing an idle connection. The connection's token is checked
    /// again as often, so a removed device or a password change closes its streams within one heartbeat.
    #[serde(with = "synckit_http::secs", rename = "heartbeat_secs")]
    pub heartbeat: Duration,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            max_connections_per_user: 16,
            max_lifetime: Duration::from_secs(3600),
            heartbeat: Duration::from_secs(15),
        }
    }
}

/// This instance's connections, by stream.
#[derive(Debug, Default)]
pub struct Hub {
    streams: Mutex<HashMap<StreamId, Listeners>>,
}

#[derive(Debug)]
struct Listeners {
    tx: broadcast::Sender<CommitNotice>,
    connections: usize,
}

/// Holds a connection's place in the hub; leaving when dropped.
#[derive(Debug)]
struct Membership {
    hub: Arc<Hub>,
    stream: StreamId,
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut streams = self.hub.streams.lock().expect("not poisoned");
        if let Some(l) = streams.get_mut(&self.stream) {
            l.connections -= 1;
            if l.connections == 0 {
                streams.remove(&self.stream);
            }
        }
    }
}

impl Hub {
    /// Starts the task that feeds this hub from the bus, resubscribing if the subscription ever ends.
    pub fn start(bus: Arc<dyn CommitBus>) -> Arc<Self> {
        let hub = Arc::new(Self::default());
        let weak = Arc::downgrade(&hub);
        tokio::spawn(async move {
            loop {
                match bus.subscribe().await {
                    Ok(mut notices) => {
                        while let Some(notice) = notices.next().await {
                            let Some(hub) = weak.upgrade() else { return };
                            hub.dispatch(notice);
                        }
                        tracing::warn!("commit notice subscription ended; resubscribing");
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot subscribe to commit notices; retrying"),
                }
                if weak.strong_count() == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        hub
    }

    fn dispatch(&self, notice: CommitNotice) {
        if let Some(l) = self.streams.lock().expect("not poisoned").get(&notice.stream) {
            let _ = l.tx.send(notice);
        }
    }

    fn join(self: &Arc<Self>, stream: StreamId, max: usize) -> Option<(broadcast::Receiver<CommitNotice>, Membership)> {
        let mut streams = self.streams.lock().expect("not poisoned");
        let l = streams
            .entry(stream)
            .or_insert_with(|| Listeners { tx: broadcast::channel(PER_STREAM_BUFFER).0, connections: 0 });
        if l.connections >= max {
            return None;
        }
        l.connections += 1;
        Some((l.tx.subscribe(), Membership { hub: self.clone(), stream }))
    }

    /// Open connections on this instance, for tests and metrics.
    pub fn connections(&self) -> usize {
        self.streams.lock().expect("not poisoned").values().map(|l| l.connections).sum()
    }
}

/// Tells the device when to pull: `hello` on connect with the stream's cursor (and, given `Last-Event-ID`,
/// whether anything was missed), then `commit` after each push to the stream. Event ids are cursors. The stream
/// ends when its token expires or is revoked (checked every heartbeat), as a pull with that token would fail.
#[utoipa::path(get, path = paths::EVENTS, tag = "sync", security(("device" = [])),
    params(("Last-Event-ID" = Option<String>, Header,
        description = "the last cursor this client saw; a value that is not a cursor is ignored")),
    responses(
        (status = 200, content_type = "text/event-stream",
         description = "`hello` {cursor, missed} then `commit` {cursor, device_id} events; comment heartbeats"),
        (status = 429, description = "- `rate_limited`: too many open event streams for this user; wait \
            `Retry-After` seconds", body = ErrorBody),
    ))]
#[instrument(skip_all, err(Display, level = "debug"), fields(user.id = %auth.user_id, app.id = %auth.app_id))]
pub async fn events(
    State(state): State<QueryState>,
    auth: AuthenticatedDevice,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let stream = auth.stream();
    let settings = &state.events;
    // Join before reading the head, so a commit between the two is not missed.
    let (rx, membership) = state.hub.join(stream, settings.max_connections_per_user).ok_or_else(|| ApiError {
        retry_after_secs: Some(30),
        ..ApiError::new(ErrorCode::RateLimited, "too many open event streams for this user")
    })?;
    let head = state.changelog.head(stream).await?;
    let last_seen =
        headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let hello = Event::default()
        .event("hello")
        .id(head.to_string())
        .data(json!({"cursor": head, "missed": last_seen.map(|seen| seen < head)}).to_string());

    let commits = futures::stream::unfold((rx, head), |(mut rx, mut seen)| async move {
        loop {
            match rx.recv().await {
                // Notices can arrive out of order across instances; an older one says nothing new.
                Ok(n) if n.cursor <= seen => continue,
                Ok(n) => {
                    seen = n.cursor;
                    let event = Event::default()
                        .event("commit")
                        .id(n.cursor.to_string())
                        .data(json!({"cursor": n.cursor, "device_id": n.device_id}).to_string());
                    return Some((event, (rx, seen)));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let end = ended(
        state.shutdown.clone(),
        settings.max_lifetime,
        state.authenticator.clone(),
        auth.token,
        settings.heartbeat,
    );
    let events = futures::stream::once(async move { hello }).chain(commits).take_until(end).map(move |event| {
        let _ = &membership; // the connection counts until its stream is dropped
        Ok(event)
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(settings.heartbeat)))
}

/// Resolves when the server shuts down, the connection has lived its time, or its token no longer stands.
async fn ended(
    mut shutdown: watch::Receiver<bool>,
    lifetime: Duration,
    authenticator: Authenticator,
    token: Authenticated,
    every: Duration,
) {
    tokio::select! {
        _ = shutdown.wait_for(|down| *down) => {},
        () = tokio::time::sleep(lifetime) => {},
        () = revoked(authenticator, token, every) => {},
    }
}

/// Resolves when `token` expires, or at the first check (one every `every`) that finds it revoked. A check the store
/// cannot answer ends the stream too: the client reconnects, and the new connection's check is the one that counts.
async fn revoked(authenticator: Authenticator, token: Authenticated, every: Duration) {
    let until_expiry = (token.expires_at - time::OffsetDateTime::now_utc()).try_into().unwrap_or(Duration::ZERO);
    let expiry = tokio::time::sleep(until_expiry);
    let checks = async {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            ticks.tick().await;
            if let Err(e) = authenticator.check(&token).await {
                tracing::debug!(user.id = %token.user_id, error = %e, "closing an event stream whose token no longer stands");
                return;
            }
        }
    };
    tokio::select! {
        () = expiry => {},
        () = checks => {},
    }
}
