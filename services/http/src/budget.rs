//! The server-wide memory budget: bytes of requests and responses in flight, shared fairly between users.
//!
//! Nothing else bounds what one small request can make the server hold: a 20-byte pull builds a page of up to
//! 500 × 64 KiB and keeps it while a slow reader reads, and a push buffers and parses up to 48 MiB. So every request
//! that will hold memory reserves it first, and holds the reservation until its response body is written or dropped:
//! - [`reserve_request`], a middleware over the API, reserves for the request body before it is read: twice its
//!   `Content-Length` (the buffered bytes, and what they parse into), or twice the route's body limit when no length
//!   is declared. A request without a body reserves nothing and never waits.
//! - A handler that builds a large answer reserves its worst case through the [`Reserve`] extractor before building
//!   it (the pull), and may [`shrink`](Reservation::shrink_to) the reservation once it knows the real size.
//! - The reservations go with the response ([`Held`] in its extensions); the accept loop keeps them with the body
//!   until it has been handed to the connection in full, or dropped.
//!
//! A user (the user of the verified token) may hold a quarter of the budget at most; callers without a valid token
//! share one class, which may hold a sixteenth. Over its class's share a request gets 429 `rate_limited` at once;
//! when the whole budget is taken it waits a moment for room ([`WAIT_FOR_ROOM`]) and then gets 503 `unavailable`.
//! Both carry `Retry-After`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use synckit_protocol::ErrorCode;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{ApiError, TokenKeys};

/// The share of the budget one user may hold: a quarter, so that no one user can take the server, and that a user
/// still fits a few of the largest requests at once.
pub const USER_SHARE_DIVISOR: u64 = 4;
/// The share callers without a valid token hold together: a sixteenth. Their routes (sign-up, pre-login, sign-in)
/// take 16 KiB bodies at most.
pub const ANONYMOUS_SHARE_DIVISOR: u64 = 16;
/// How long a request waits for room when the whole budget is taken, before it is answered 503: long enough for the
/// pages and pushes in flight to be written, short enough that a client hears of it quickly.
pub const WAIT_FOR_ROOM: Duration = Duration::from_secs(2);
/// What a request body costs per byte while it is handled: the buffered bytes, and what they parse into (a push's
/// base64 payloads decode to three quarters of their size; buffering copies the chunks once).
pub const BODY_COST_FACTOR: u64 = 2;
/// The body limit of routes that set none: axum's default.
pub const DEFAULT_BODY_LIMIT: u64 = 2 * 1024 * 1024;
/// Seconds a client is asked to wait before it retries.
const RETRY_AFTER_SECS: u32 = 1;

/// Who holds a reservation: a user, or every caller without a valid token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    User(Uuid),
    Anonymous,
}

/// The budget. Cheap to clone; clones share it.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    total: u64,
    user_share: u64,
    anonymous_share: u64,
    wait: Duration,
    held: Mutex<Holdings>,
    /// Woken whenever bytes are released, for requests waiting for room.
    released: Notify,
}

#[derive(Debug, Default)]
struct Holdings {
    total: u64,
    by_class: HashMap<Class, u64>,
}

/// Why a reservation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// The class would hold more than its share.
    Share,
    /// The server would hold more than the budget.
    Full,
}

impl MemoryBudget {
    /// A budget of `total` bytes, with the documented shares.
    pub fn new(total: u64) -> Self {
        Self::with_wait(total, WAIT_FOR_ROOM)
    }

    /// A budget that makes requests wait `wait` for room before refusing them.
    pub fn with_wait(total: u64, wait: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                total,
                user_share: total / USER_SHARE_DIVISOR,
                anonymous_share: total / ANONYMOUS_SHARE_DIVISOR,
                wait,
                held: Mutex::new(Holdings::default()),
                released: Notify::new(),
            }),
        }
    }

    /// The most one user may hold.
    pub fn user_share(&self) -> u64 {
        self.shared.user_share
    }

    /// Bytes held now, by everyone.
    pub fn held(&self) -> u64 {
        self.shared.lock().total
    }

    /// Reserves `bytes` for `class`: at once if it fits; 429 if the class would exceed its share; 503 if the budget
    /// has no room within the wait.
    pub async fn reserve(&self, class: Class, bytes: u64) -> Result<Reservation, ApiError> {
        if bytes == 0 {
            return Ok(Reservation::none());
        }
        let deadline = tokio::time::Instant::now() + self.shared.wait;
        loop {
            // Registered before the attempt, so a release between the attempt and the wait is not missed.
            let released = self.shared.released.notified();
            let mut released = std::pin::pin!(released);
            released.as_mut().enable();
            match self.try_reserve(class, bytes) {
                Ok(reservation) => return Ok(reservation),
                Err(Refused::Share) => {
                    return Err(refusal(
                        ErrorCode::RateLimited,
                        "this user has too many large requests in flight; retry once some have finished",
                    ));
                }
                Err(Refused::Full) => {}
            }
            if tokio::time::timeout_at(deadline, released).await.is_err() {
                let held = self.held();
                tracing::warn!(bytes, held, "memory budget exhausted (serve.memory_budget_mib): request refused");
                return Err(refusal(ErrorCode::Unavailable, "the server is busy; retry shortly"));
            }
        }
    }

    fn try_reserve(&self, class: Class, bytes: u64) -> Result<Reservation, Refused> {
        let share = match class {
            Class::User(_) => self.shared.user_share,
            Class::Anonymous => self.shared.anonymous_share,
        };
        let mut held = self.shared.lock();
        let of_class = held.by_class.get(&class).copied().unwrap_or(0);
        if of_class + bytes > share {
            return Err(Refused::Share);
        }
        if held.total + bytes > self.shared.total {
            return Err(Refused::Full);
        }
        held.total += bytes;
        *held.by_class.entry(class).or_insert(0) += bytes;
        drop(held);
        Ok(Reservation(Some(Arc::new(Hold { shared: self.shared.clone(), class, bytes: Mutex::new(bytes) }))))
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Holdings> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn release(&self, class: Class, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let mut held = self.lock();
        held.total -= bytes;
        if let Some(of_class) = held.by_class.get_mut(&class) {
            *of_class -= bytes;
            if *of_class == 0 {
                held.by_class.remove(&class);
            }
        }
        drop(held);
        self.released.notify_waiters();
    }
}

fn refusal(code: ErrorCode, message: &'static str) -> ApiError {
    ApiError { retry_after_secs: Some(RETRY_AFTER_SECS), ..ApiError::new(code, message) }
}

/// Bytes reserved; released when the last clone is dropped. [`Reservation::none`] holds nothing.
#[derive(Debug, Clone)]
pub struct Reservation(Option<Arc<Hold>>);

#[derive(Debug)]
struct Hold {
    shared: Arc<Shared>,
    class: Class,
    bytes: Mutex<u64>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let bytes = *self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        self.shared.release(self.class, bytes);
    }
}

impl Reservation {
    /// A reservation of nothing, where no budget applies.
    pub fn none() -> Self {
        Self(None)
    }

    /// Gives back what is held beyond `bytes`, once the real size is known.
    pub fn shrink_to(&self, bytes: u64) {
        let Some(hold) = &self.0 else { return };
        let mut held = hold.bytes.lock().unwrap_or_else(|e| e.into_inner());
        if bytes < *held {
            let freed = *held - bytes;
            *held = bytes;
            drop(held);
            hold.shared.release(hold.class, freed);
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.0.as_ref().map_or(0, |hold| *hold.bytes.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The reservations a response holds until its body is written: in the response's extensions, for the accept loop
/// to keep with the body.
#[derive(Debug, Clone, Default)]
pub struct Held(pub Vec<Reservation>);

/// A handler's access to the budget, as the request's class: reserve what the answer will hold before building it.
/// Outside [`reserve_request`] (a router driven without it) reservations hold nothing.
#[derive(Debug, Clone)]
pub struct Reserve {
    budget: Option<MemoryBudget>,
    class: Class,
}

impl Reserve {
    /// Reserves `bytes` for this request's caller. Put the reservation in the response's extensions so it is held
    /// until the response is written.
    pub async fn bytes(&self, bytes: u64) -> Result<Reservation, ApiError> {
        match &self.budget {
            Some(budget) => budget.reserve(self.class, bytes).await,
            _ => Ok(Reservation::none()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Reserve {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Reserve>().cloned().unwrap_or(Reserve { budget: None, class: Class::Anonymous }))
    }
}

/// The body limits of a router's routes, by exact path, for requests that declare no length.
#[derive(Debug, Clone)]
pub struct BodyLimits {
    default: u64,
    routes: Vec<(&'static str, u64)>,
}

impl BodyLimits {
    /// `default` for every route not named later.
    pub fn new(default: u64) -> Self {
        Self { default, routes: Vec::new() }
    }

    /// `limit` for `path`.
    pub fn route(mut self, path: &'static str, limit: u64) -> Self {
        self.routes.push((path, limit));
        self
    }

    fn of(&self, path: &str) -> u64 {
        self.routes.iter().find(|(p, _)| *p == path).map_or(self.default, |(_, limit)| *limit)
    }
}

/// What [`reserve_request`] needs: the budget, the keys that say whose a token is, and the routes' body limits.
#[derive(Debug, Clone)]
pub struct Budgeted {
    pub budget: MemoryBudget,
    pub keys: Arc<TokenKeys>,
    pub limits: BodyLimits,
}

/// For [`axum::middleware::from_fn_with_state`]: reserves for the request body before anything reads it, lets
/// handlers reserve more ([`Reserve`]), and hands every reservation to the response ([`Held`]).
///
/// The caller's class comes from the bearer token's signature and claims alone, without the store: a revoked token
/// still names its user, and is refused by the handler's own check before any body is read.
pub async fn reserve_request(State(state): State<Budgeted>, mut req: Request, next: Next) -> Response {
    let class = class_of(&req, &state.keys);
    let body = body_bytes(&req, &state.limits);
    // A request without a body reserves nothing, and so never waits: status checks and event streams stay cheap.
    let request = match state.budget.reserve(class, body.saturating_mul(BODY_COST_FACTOR)).await {
        Ok(reservation) => reservation,
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(Reserve { budget: Some(state.budget.clone()), class });
    let mut response = next.run(req).await;
    let mut held = response.extensions_mut().remove::<Held>().unwrap_or_default();
    if let Some(more) = response.extensions_mut().remove::<Reservation>() {
        held.0.push(more);
    }
    held.0.push(request);
    response.extensions_mut().insert(held);
    response
}

/// The user of a well-signed token (an app's or the console's), or the anonymous class.
fn class_of(req: &Request, keys: &TokenKeys) -> Class {
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match token.and_then(|t| keys.user_of(t)) {
        Some(user_id) => Class::User(user_id),
        None => Class::Anonymous,
    }
}

/// The most body bytes the request can bring: its declared length up to the route's limit (more is refused unread),
/// the route's limit when it declares none, and nothing when it has no body.
fn body_bytes(req: &Request, limits: &BodyLimits) -> u64 {
    let limit = limits.of(req.uri().path());
    let declared =
        req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let hint = http_body::Body::size_hint(req.body());
    match (declared, hint.exact()) {
        (Some(declared), _) => declared.min(limit),
        (None, Some(exact)) => exact.min(limit),
        (None, None) => hint.upper().unwrap_or(limit).min(limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[tokio::test]
    async fn a_user_holds_a_share_and_the_rest_is_for_others() {
        let budget = MemoryBudget::with_wait(64 * MIB, Duration::from_millis(50));
        let (alice, bob) = (Class::User(Uuid::now_v7()), Class::User(Uuid::now_v7()));
        let first = budget.reserve(alice, 10 * MIB).await.unwrap();
        let over = budget.reserve(alice, 7 * MIB).await.unwrap_err();
        assert_eq!((over.code, over.retry_after_secs), (ErrorCode::RateLimited, Some(1)));
        let _bob = budget.reserve(bob, 16 * MIB).await.unwrap();
        drop(first);
        assert_eq!(budget.held(), 16 * MIB, "a dropped reservation is given back");
        let _again = budget.reserve(alice, 16 * MIB).await.unwrap();
        let anonymous = budget.reserve(Class::Anonymous, 5 * MIB).await.unwrap_err();
        assert_eq!(anonymous.code, ErrorCode::RateLimited, "the anonymous class holds a sixteenth");
    }

    #[tokio::test]
    async fn a_full_budget_waits_for_room_then_refuses() {
        let budget = MemoryBudget::with_wait(64 * MIB, Duration::from_millis(200));
        let users: Vec<Class> = (0..5).map(|_| Class::User(Uuid::now_v7())).collect();
        let held: Vec<Reservation> =
            reserve_all(users[..4].iter().map(|u| budget.reserve(*u, 16 * MIB))).await.into_iter().collect();
        let full = budget.reserve(users[4], MIB).await.unwrap_err();
        assert_eq!((full.code, full.retry_after_secs), (ErrorCode::Unavailable, Some(1)));

        // Room made while a request waits lets it in.
        let waiting = tokio::spawn({
            let budget = budget.clone();
            let user = users[4];
            async move { budget.reserve(user, MIB).await.map(|r| r.bytes()) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        held[0].shrink_to(8 * MIB);
        assert_eq!(waiting.await.unwrap().unwrap(), MIB);
        assert_eq!(budget.held(), 3 * 16 * MIB + 8 * MIB, "the waiter's reservation was dropped with its task");
    }

    async fn reserve_all<F: Future<Output = Result<Reservation, ApiError>>>(
        reservations: impl Iterator<Item = F>,
    ) -> Vec<Reservation> {
        let mut all = Vec::new();
        for r in reservations {
            all.push(r.await.unwrap());
        }
        all
    }
}
