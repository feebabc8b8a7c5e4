//! Admission of pushes: which push may wait for the database, and which may use it now.
//!
//! Pushes to one stream are serialised by the store anyway (the head-row lock on Postgres, the one writer on
//! SQLite), but on Postgres each waiter would hold a pooled connection while it waits for the lock. One user sending
//! many large pushes at once could then hold every connection, and every other user's pulls and token checks would
//! be answered 503. So the serialisation happens here first, in the process, where waiting costs nothing:
//!
//! - each stream has a queue of at most `max_queued_per_stream` pushes (the one running included); a push beyond it
//!   is answered `429 rate_limited` with `Retry-After` before its body is read, so a flood costs neither memory nor a
//!   parse;
//! - the pushes of a stream then take turns, first come first served: one at a time is read, parsed and written, so
//!   one user's pushes hold at most one body in memory and keep at most one worker busy parsing;
//! - a push whose turn has come and whose body is read waits, also first come first served, for one of
//!   `max_in_database` places, the pushes that may use a database connection at once across all streams, so that
//!   reads always keep some.
//!
//! It lives in the ingest service rather than in a store adapter because it is the same rule on every engine and
//! because it must run before the body is read, which only the handler can arrange. It is per process: instances of
//! the ingest role each serialise their own pushes, and the store's own lock (bounded on Postgres by `lock_timeout`)
//! orders pushes to one stream that arrive at different instances.
//!
//! A stream's queue exists while it holds a push: the entry is removed when its last push leaves, so the map holds no
//! more streams than there are pushes in flight.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, PoisonError};

use synckit_http::ApiError;
use synckit_protocol::ErrorCode;
use synckit_store::StreamId;
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

/// Seconds a push turned away by a full queue is asked to wait.
const RETRY_AFTER_SECS: u32 = 1;

/// The limits of [`PushAdmission`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Pushes of one stream waiting or running at most.
    pub max_queued_per_stream: usize,
    /// Pushes using the database at once, across all streams.
    pub max_in_database: usize,
}

/// The queues of the streams with pushes in flight, and the places in the database. A cheap handle.
#[derive(Clone, Debug)]
pub struct PushAdmission {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limits: AdmissionLimits,
    /// Each stream with a push in flight: its turn lock and how many pushes hold a place in its queue.
    streams: Mutex<HashMap<StreamId, Queue>>,
    in_database: Arc<Semaphore>,
}

#[derive(Debug)]
struct Queue {
    turn: Arc<tokio::sync::Mutex<()>>,
    queued: usize,
}

impl PushAdmission {
    pub fn new(limits: AdmissionLimits) -> Self {
        let limits = AdmissionLimits {
            max_queued_per_stream: limits.max_queued_per_stream.max(1),
            max_in_database: limits.max_in_database.max(1),
        };
        let in_database = Arc::new(Semaphore::new(limits.max_in_database));
        Self { inner: Arc::new(Inner { limits, streams: Mutex::new(HashMap::new()), in_database }) }
    }

    /// A place in `stream`'s queue, or `429 rate_limited` when it is full.
    pub fn enqueue(&self, stream: StreamId) -> Result<Place, ApiError> {
        let max = self.inner.limits.max_queued_per_stream;
        let mut streams = self.inner.streams.lock().unwrap_or_else(PoisonError::into_inner);
        let queue =
            streams.entry(stream).or_insert_with(|| Queue { turn: Arc::new(tokio::sync::Mutex::new(())), queued: 0 });
        if queue.queued >= max {
            return Err(ApiError {
                retry_after_secs: Some(RETRY_AFTER_SECS),
                ..ApiError::new(
                    ErrorCode::RateLimited,
                    format!("{max} pushes to this stream are already in progress; retry when one has finished"),
                )
            });
        }
        queue.queued += 1;
        Ok(Place { turn: queue.turn.clone(), stream, inner: self.inner.clone() })
    }

    /// How many streams have a push in flight.
    pub fn streams_in_flight(&self) -> usize {
        self.inner.streams.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// A push's place in its stream's queue; leaving (dropping it) frees the place.
#[derive(Debug)]
pub struct Place {
    turn: Arc<tokio::sync::Mutex<()>>,
    stream: StreamId,
    inner: Arc<Inner>,
}

impl Place {
    /// Waits for the pushes of the stream queued before this one to finish.
    pub async fn turn(&self) -> Turn {
        Turn { _stream: self.turn.clone().lock_owned().await }
    }

    /// Waits for a place in the database.
    pub async fn database(&self) -> InDatabase {
        let permit = self.inner.in_database.clone().acquire_owned().await.expect("the semaphore is never closed");
        InDatabase { _permit: permit }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut streams = self.inner.streams.lock().unwrap_or_else(PoisonError::into_inner);
        if let Entry::Occupied(mut queue) = streams.entry(self.stream) {
            queue.get_mut().queued -= 1;
            if queue.get().queued == 0 {
                queue.remove();
            }
        }
    }
}

/// The stream's turn, given back when dropped.
#[derive(Debug)]
pub struct Turn {
    _stream: OwnedMutexGuard<()>,
}

/// A place in the database, given back when dropped.
#[derive(Debug)]
pub struct InDatabase {
    _permit: OwnedSemaphorePermit,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use uuid::Uuid;

    use super::*;

    fn stream() -> StreamId {
        StreamId { app_id: Uuid::now_v7(), user_id: Uuid::now_v7() }
    }

    #[tokio::test]
    async fn a_full_queue_turns_pushes_away_and_idle_streams_are_forgotten() {
        let admission = PushAdmission::new(AdmissionLimits { max_queued_per_stream: 2, max_in_database: 4 });
        let (busy, other) = (stream(), stream());
        let first = admission.enqueue(busy).unwrap();
        let second = admission.enqueue(busy).unwrap();
        let refused = admission.enqueue(busy).unwrap_err();
        assert_eq!((refused.code, refused.retry_after_secs), (ErrorCode::RateLimited, Some(1)));
        // Another stream's queue is its own.
        let elsewhere = admission.enqueue(other).unwrap();
        assert_eq!(admission.streams_in_flight(), 2);

        drop(first);
        let third = admission.enqueue(busy).expect("a place was freed");
        drop((second, third, elsewhere));
        assert_eq!(admission.streams_in_flight(), 0, "no push in flight, no queue kept");
    }

    #[tokio::test]
    async fn pushes_of_a_stream_take_turns_and_share_the_database() {
        let admission = PushAdmission::new(AdmissionLimits { max_queued_per_stream: 4, max_in_database: 1 });
        let s = stream();
        let (a, b) = (admission.enqueue(s).unwrap(), admission.enqueue(s).unwrap());
        let turn = a.turn().await;
        assert!(tokio::time::timeout(Duration::from_millis(50), b.turn()).await.is_err(), "one at a time");
        let in_database = a.database().await;
        // Another stream has its own turn, but the one place in the database is taken.
        let c = admission.enqueue(stream()).unwrap();
        let _c_turn = c.turn().await;
        assert!(tokio::time::timeout(Duration::from_millis(50), c.database()).await.is_err());
        drop((in_database, turn));
        let _b_turn = b.turn().await;
        let _c_in_database = c.database().await;
        assert!(tokio::time::timeout(Duration::from_millis(50), b.database()).await.is_err(), "b waits for c");
    }
}
