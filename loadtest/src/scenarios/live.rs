//! `live`: devices of one account (4 by default) each hold the event stream (`GET /api/sync/events`) for the whole
//! run and push one small change every `--interval-ms`; a device that was told of the others' commits since its last
//! push pulls and decrypts them first, as a live-syncing device does. For every push, each other device of the
//! account measures
//! the time from the push's acknowledgement (its answer arriving at the pushing device) to the `commit` event with
//! that cursor arriving on its own stream: goose records it as the custom request `EVENT commit after ack`, in
//! microseconds, so its percentiles are in every report and `--threshold "p99<50ms for EVENT commit after ack"`
//! judges it.
//!
//! The server publishes the commit notice before it writes the push's answer, so an event can arrive before the
//! acknowledgement: such an event counts as 0 µs, as the live benchmark (`services/server/benches/live.rs`) counts it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use goose::prelude::*;
use serde::Deserialize;
use synckit_protocol::paths;
use synckit_protocol::sync::{PushRequest, PushResponse};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::steady::{SMALL_ENTRY_BYTES, pull_all};
use super::{Kind, Session, session, set_up, step};
use crate::api::{self, Call, Failure};
use crate::device::Fleet;
use crate::entries;

/// The custom request the latency is recorded as: `EVENT commit after ack` in goose's reports.
pub const LATENCY_METHOD: &str = "EVENT";
pub const LATENCY_NAME: &str = "commit after ack";
/// How long a received commit event waits for its push's acknowledgement to be seen before it is dropped: longer
/// than any push of this process can take to be answered.
const ACK_WAIT: Duration = Duration::from_secs(60);
/// An event stream lives for the whole run, far past goose's `--timeout` for a request.
const STREAM_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

pub fn scenario(fleet: &Arc<Fleet>) -> Result<Scenario, GooseError> {
    let interval = Duration::from_millis(fleet.settings.interval_ms);
    Ok(Scenario::new(Kind::Live.name())
        .set_wait_time(interval, interval)?
        .register_transaction(set_up(fleet, Kind::Live))
        .register_transaction(step!(fleet, listen_and_push).set_name("push, measure the others' events"))
        .register_transaction(step!(fleet, close).set_name("close the event stream").set_on_stop()))
}

/// A device's open event stream: a task reads it and notes each commit event with the instant it arrived.
#[derive(Debug)]
pub(crate) struct EventStream {
    seen: Arc<Mutex<Seen>>,
    reader: JoinHandle<()>,
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

#[derive(Debug, Default)]
struct Seen {
    /// Commit events of other devices: (cursor, when it arrived), oldest first.
    commits: Vec<(u64, Instant)>,
    /// The stream has ended: `Some` with the error that ended it, `Some(None)` when the server closed it.
    ended: Option<Option<String>>,
}

#[derive(Deserialize)]
struct Commit {
    cursor: u64,
    device_id: Uuid,
}

async fn listen_and_push(fleet: &Fleet, user: &mut GooseUser) -> TransactionResult {
    let mut session = session(fleet, user, Kind::Live).await?;
    let stream = match session.stream.clone() {
        Some(stream) => stream,
        None => open(user, &mut session).await?,
    };
    let device = Arc::clone(&session.device);

    let (commits, ended) = {
        let mut seen = stream.seen.lock().unwrap_or_else(PoisonError::into_inner);
        (std::mem::take(&mut seen.commits), seen.ended.take())
    };
    let told = !commits.is_empty();
    let mut waiting = Vec::new();
    for (cursor, arrived) in commits {
        match device.account.acked_at(cursor) {
            Some(acked) => {
                let latency = arrived.saturating_duration_since(acked);
                user.record_custom_request_duration(LATENCY_METHOD, LATENCY_NAME, latency, true, None, None).await?;
            }
            None if arrived.elapsed() < ACK_WAIT => waiting.push((cursor, arrived)),
            None => {}
        }
    }
    if !waiting.is_empty() {
        let mut seen = stream.seen.lock().unwrap_or_else(PoisonError::into_inner);
        waiting.append(&mut seen.commits);
        seen.commits = waiting;
    }
    if let Some(ended) = ended {
        // Reopened on the next iteration; the server closing a stream (at its lifetime, or shutting down) is no
        // error, a broken one is.
        session.stream = None;
        user.set_session_data(session.clone());
        if let Some(error) = ended {
            let error = format!("event stream broke: {error}");
            user.record_custom_request_duration(LATENCY_METHOD, "stream", Duration::ZERO, false, None, Some(&error))
                .await?;
            return Err(api::failure(error));
        }
    }

    if told {
        pull_all(user, &session).await?;
    }
    let req = PushRequest { device_id: device.id, entries: entries::seal(&device.account, 1, SMALL_ENTRY_BYTES) };
    let goose = Call::new(GooseMethod::Post, paths::PUSH, "push").token(&device.token).json(&req).send(user).await?;
    let acked = Instant::now();
    let answer: PushResponse = api::json(user, goose, "push").await?;
    device.account.acked(answer.cursor, acked);
    Ok(())
}

/// Opens the device's event stream and starts reading it; the session keeps it.
async fn open(user: &mut GooseUser, session: &mut Session) -> Result<Arc<EventStream>, Failure> {
    let goose = Call::new(GooseMethod::Get, paths::EVENTS, "events")
        .token(&session.device.token)
        .timeout(STREAM_TIMEOUT)
        .send_with(user, |builder| builder.header(reqwest::header::ACCEPT, "text/event-stream"))
        .await?;
    let response = api::response(goose)?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let reader = tokio::spawn(read(response, session.device.id, Arc::clone(&seen)));
    let stream = Arc::new(EventStream { seen, reader });
    session.stream = Some(Arc::clone(&stream));
    user.set_session_data(session.clone());
    Ok(stream)
}

/// Notes every commit event of another device as it arrives, until the stream ends.
async fn read(response: reqwest::Response, own: Uuid, seen: Arc<Mutex<Seen>>) {
    let mut events = response.bytes_stream().eventsource();
    let ended = loop {
        match events.next().await {
            Some(Ok(event)) if event.event == "commit" => {
                let arrived = Instant::now();
                match serde_json::from_str::<Commit>(&event.data) {
                    Ok(commit) if commit.device_id == own => {}
                    Ok(commit) => {
                        seen.lock().unwrap_or_else(PoisonError::into_inner).commits.push((commit.cursor, arrived))
                    }
                    Err(e) => break Some(format!("a commit event that is not one: {e}: {}", event.data)),
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => break Some(e.to_string()),
            None => break None,
        }
    };
    seen.lock().unwrap_or_else(PoisonError::into_inner).ended = Some(ended);
}

/// Closes the stream as the user stops, so that the server sees the device go.
async fn close(_fleet: &Fleet, user: &mut GooseUser) -> TransactionResult {
    if let Some(session) = user.get_session_data_mut::<Session>() {
        session.stream = None;
    }
    Ok(())
}
