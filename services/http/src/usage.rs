//! Usage on the sync path: counting what moves, holding apps to their plans, and telling devices their headroom.
//!
//! Each service that moves ciphertext holds a [`Meter`] (clones share it):
//! - what the store counts itself (a push's stored payloads, a blob's first confirmation) the meter only notes
//!   ([`Meter::stored`]), so that its view of the app stays current;
//! - what the store cannot see (the payloads a pull returns, the size of a blob whose download URL is signed) it
//!   counts per stream and UTC day ([`Meter::transferred`]) and adds to the store about once a second
//!   ([`Meter::flush`], run by [`Meter::flush_every`] and once more at shutdown). A crash loses at most that second's
//!   count: an app may be billed less than it moved, never more.
//!
//! Limits ([`Meter::check_storage`], [`Meter::check_transfer`]) are checked against the app's plan and usage as the
//! store had them at most [`REFRESH`] ago, plus everything this instance counted since. One instance is exact; several
//! may let an app past a limit by what the others moved within that second, and that excess is never billed: the
//! price of a plan is known before its period starts and nothing changes it.
//!
//! - Over the storage limit, whatever would store more (a push, a blob upload) is refused with `403 quota_exceeded`;
//!   everything else goes on.
//! - Over the transfer budget, the app's pushes, pulls and blob URLs are paced to [`SLOWED_BYTES_PER_SEC`] of
//!   ciphertext per instance: a request is admitted while the app's bucket is not in debt, its bytes are then taken
//!   from the bucket, and a request that finds it in debt is answered `429 transfer_slowed` with the seconds until it
//!   is out of debt in `Retry-After`. Slowed, never refused for good.
//!
//! Answers to a device carry the app's [`Headroom`] as headers when it has a plan.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use axum::response::{IntoResponseParts, ResponseParts};
use synckit_protocol::ErrorCode;
use synckit_protocol::plans::Period;
use synckit_protocol::usage::{STORAGE_REMAINING_HEADER, TRANSFER_REMAINING_HEADER};
use synckit_store::usage::{Day, Transfer, day_of, today};
use synckit_store::{StreamId, UsageStore};
use uuid::Uuid;

use crate::ApiError;

/// How old the store's figures for an app may be before a check reads them again.
pub const REFRESH: Duration = Duration::from_secs(1);
/// The pace of an app's traffic on one instance once its transfer budget is used: bytes of ciphertext per second.
pub const SLOWED_BYTES_PER_SEC: u64 = 256 * 1024;
/// Apps whose view an instance keeps before it forgets those not seen for [`FORGET_AFTER`].
const MAX_APPS_SEEN: usize = 10_000;
const FORGET_AFTER: Duration = Duration::from_secs(60);

/// The meter. Cheap to clone; clones share it.
#[derive(Clone, Debug)]
pub struct Meter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn UsageStore>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Transfers counted here and not yet added to the store.
    unflushed: HashMap<(StreamId, Day), u64>,
    apps: HashMap<Uuid, AppView>,
}

/// An app as this instance sees it: the store's figures when last read, and what this instance counted since.
#[derive(Debug)]
struct AppView {
    read_at: Instant,
    period: Period,
    storage_limit: Option<u64>,
    transfer_limit: Option<u64>,
    stored: i128,
    transferred: u64,
    /// The pacing of an app over its transfer budget: bytes it may move now, negative when in debt.
    bucket: f64,
    bucket_at: Instant,
    /// Since when a request has been reading the store's figures again.
    refreshing: Option<Instant>,
}

impl AppView {
    fn headroom(&self) -> Headroom {
        let stored = u64::try_from(self.stored.max(0)).unwrap_or(u64::MAX);
        Headroom {
            storage_remaining: self.storage_limit.map(|limit| limit.saturating_sub(stored)),
            transfer_remaining: self.transfer_limit.map(|limit| limit.saturating_sub(self.transferred)),
        }
    }

    fn over_transfer_budget(&self) -> bool {
        self.transfer_limit.is_some_and(|limit| self.transferred >= limit)
    }

    /// Refills the bucket for the time since it was last looked at, up to one second's worth.
    fn refill(&mut self, now: Instant) {
        let rate = SLOWED_BYTES_PER_SEC as f64;
        let elapsed = now.saturating_duration_since(self.bucket_at).as_secs_f64();
        self.bucket = (self.bucket + elapsed * rate).min(rate);
        self.bucket_at = now;
    }

    fn took(&mut self, bytes: u64, now: Instant) {
        self.transferred = self.transferred.saturating_add(bytes);
        if self.over_transfer_budget() {
            self.refill(now);
            self.bucket -= bytes as f64;
        }
    }
}

/// What an app may still store and transfer, when it has a plan: sent to devices as the
/// `SyncKit-Storage-Remaining` and `SyncKit-Transfer-Remaining` headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Headroom {
    pub storage_remaining: Option<u64>,
    pub transfer_remaining: Option<u64>,
}

impl IntoResponseParts for Headroom {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut parts: ResponseParts) -> Result<ResponseParts, Self::Error> {
        for (name, value) in
            [(STORAGE_REMAINING_HEADER, self.storage_remaining), (TRANSFER_REMAINING_HEADER, self.transfer_remaining)]
        {
            if let Some(value) = value {
                parts.headers_mut().insert(name, HeaderValue::from(value));
            }
        }
        Ok(parts)
    }
}

impl Meter {
    pub fn new(store: Arc<dyn UsageStore>) -> Self {
        Self { inner: Arc::new(Inner { store, state: Mutex::new(State::default()) }) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The app's view, read from the store again when it is older than [`REFRESH`] or of an earlier period, and
    /// `f` of it.
    async fn with_view<T>(&self, app_id: Uuid, f: impl FnOnce(&mut AppView) -> T) -> Result<T, ApiError> {
        let period = Period::current();
        {
            let mut state = self.state();
            if let Some(view) = state.apps.get_mut(&app_id) {
                // One request reads the store again; the others meanwhile go by the view as it is. A read whose
                // request went away (dropped mid-way) is given up after a while, and another request reads.
                let reading = view.refreshing.is_some_and(|since| since.elapsed() < REFRESH * 5);
                if reading || (view.period == period && view.read_at.elapsed() < REFRESH) {
                    return Ok(f(view));
                }
                view.refreshing = Some(Instant::now());
            }
        }
        let read_at = Instant::now();
        let standing = match self.inner.store.standing(app_id, day_of(period.first_day())).await {
            Ok(standing) => standing,
            Err(e) => {
                if let Some(view) = self.state().apps.get_mut(&app_id) {
                    view.refreshing = None;
                }
                return Err(e.into());
            }
        };
        let (storage_limit, transfer_limit) = match standing.plan {
            Some(plan) => {
                let (storage, burst) = plan.in_force(period.index());
                (Some(storage), Some(storage.saturating_mul(u64::from(burst))))
            }
            None => (None, None),
        };
        let mut state = self.state();
        // What this instance counted and has not yet added to the store is not in the store's figures.
        let first_day = day_of(period.first_day());
        let unflushed: u64 = state
            .unflushed
            .iter()
            .filter(|((stream, day), _)| stream.app_id == app_id && *day >= first_day)
            .map(|(_, bytes)| *bytes)
            .sum();
        let (bucket, bucket_at) =
            state.apps.get(&app_id).map_or((SLOWED_BYTES_PER_SEC as f64, read_at), |old| (old.bucket, old.bucket_at));
        let view = AppView {
            read_at,
            period,
            storage_limit,
            transfer_limit,
            stored: i128::from(standing.stored_bytes),
            transferred: standing.transfer_bytes.saturating_add(unflushed),
            bucket,
            bucket_at,
            refreshing: None,
        };
        if state.apps.len() >= MAX_APPS_SEEN {
            // Apps not seen for a while are read again when they come back.
            state.apps.retain(|_, view| view.read_at.elapsed() < FORGET_AFTER);
        }
        let view = state.apps.entry(app_id).insert_entry(view).into_mut();
        Ok(f(view))
    }

    /// The app's headroom now.
    pub async fn headroom(&self, app_id: Uuid) -> Result<Headroom, ApiError> {
        self.with_view(app_id, |view| view.headroom()).await
    }

    /// Whether the app has room to store `adding` more bytes: `403 quota_exceeded` when it would pass its storage
    /// limit.
    pub async fn check_storage(&self, app_id: Uuid, adding: u64) -> Result<Headroom, ApiError> {
        self.with_view(app_id, |view| {
            let headroom = view.headroom();
            match (view.storage_limit, headroom.storage_remaining) {
                (Some(limit), Some(remaining)) if adding > remaining => Err(ApiError::new(
                    ErrorCode::QuotaExceeded,
                    format!(
                        "this would store {adding} bytes more, and the app's plan has room for {remaining} of its \
                         {limit}; nothing was stored: it goes through once the app has room (a larger plan, or \
                         storage freed)"
                    ),
                )),
                _ => Ok(headroom),
            }
        })
        .await?
    }

    /// Whether the app's traffic may go on now: `429 transfer_slowed` with `Retry-After` when it is over its
    /// transfer budget and its pace is in debt.
    pub async fn check_transfer(&self, app_id: Uuid) -> Result<Headroom, ApiError> {
        self.with_view(app_id, |view| {
            if !view.over_transfer_budget() {
                return Ok(view.headroom());
            }
            view.refill(Instant::now());
            if view.bucket >= 0.0 {
                return Ok(view.headroom());
            }
            let wait = (-view.bucket / SLOWED_BYTES_PER_SEC as f64).ceil().max(1.0) as u32;
            Err(ApiError {
                retry_after_secs: Some(wait),
                ..ApiError::new(
                    ErrorCode::TransferSlowed,
                    "the app has used its plan's transfer for this period, so its traffic is slowed; retry after \
                     the Retry-After seconds",
                )
            })
        })
        .await?
    }

    /// Notes what the store counted itself for `stream`: `stored` bytes more (or fewer) stored, and `transferred`
    /// bytes moved. Answers the headroom after it.
    pub fn stored(&self, stream: StreamId, stored: i64, transferred: u64) -> Headroom {
        let mut state = self.state();
        match state.apps.get_mut(&stream.app_id) {
            Some(view) => {
                view.stored += i128::from(stored);
                view.took(transferred, Instant::now());
                view.headroom()
            }
            None => Headroom::default(),
        }
    }

    /// Counts `bytes` that `stream` moved and the store cannot see (a pull's payloads, a signed download). Answers the
    /// headroom after it.
    pub fn transferred(&self, stream: StreamId, bytes: u64) -> Headroom {
        if bytes == 0 {
            return self.state().apps.get(&stream.app_id).map(AppView::headroom).unwrap_or_default();
        }
        let mut state = self.state();
        *state.unflushed.entry((stream, today())).or_default() += bytes;
        match state.apps.get_mut(&stream.app_id) {
            Some(view) => {
                view.took(bytes, Instant::now());
                view.headroom()
            }
            None => Headroom::default(),
        }
    }

    /// Adds what was counted here to the store. On failure the counts are kept for the next flush.
    pub async fn flush(&self) {
        let unflushed = std::mem::take(&mut self.state().unflushed);
        if unflushed.is_empty() {
            return;
        }
        let transfers: Vec<Transfer> =
            unflushed.iter().map(|(&(stream, day), &bytes)| Transfer { stream, day, bytes }).collect();
        if let Err(e) = self.inner.store.record_transfer(transfers).await {
            tracing::warn!(error = %e, "transfer counts not stored; kept for the next flush");
            let mut state = self.state();
            for (key, bytes) in unflushed {
                *state.unflushed.entry(key).or_default() += bytes;
            }
        }
    }

    /// Flushes every `interval` until `stop` resolves, then once more.
    pub async fn flush_every(self, interval: Duration, stop: impl std::future::Future<Output = ()>) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.flush().await,
                () = &mut stop => break,
            }
        }
        self.flush().await;
    }
}
