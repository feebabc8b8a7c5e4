//! HTTP plumbing every SyncKit service shares, so that each service crate holds only its handlers.
//!
//! # Layout
//! - [`error`]: [`ApiError`], the one error type handlers return; its status is its code's, from the protocol crate.
//! - [`json`]: [`Json`], a JSON extractor whose rejections are protocol errors instead of plain text.
//! - [`auth`]: [`TokenKeys`] issues and verifies tokens; [`Authenticated`] (any app's token) and
//!   [`AuthenticatedDevice`] (a device's token) are the extractors that give a handler the (app, user) stream, taken
//!   from a verified, unrevoked token and never from the body; [`AuthenticatedAccount`] gives the account of a
//!   console token, which manages apps.
//! - [`keys`]: [`KeyRing`], the current signing key and the previous ones that still verify, each named by an id.
//! - [`serve`]: the accept loop: connection limits (first-request deadline, maximum age, cap), the read and write
//!   deadlines of bodies, and graceful shutdown.
//! - [`budget`]: [`MemoryBudget`], the server-wide budget of request and response bytes in flight, shared between
//!   users, and the middleware and extractor that reserve from it.
//! - [`bulk`]: threads at a lower CPU priority for the CPU-heavy part of large requests (parsing a push).
//! - [`timeout`]: a whole-request deadline.
//! - [`metrics`]: the counts of entries pushed and pulled and of blob bytes, on the OpenTelemetry meter.
//! - [`fallback`]: JSON answers for unknown routes and wrong methods.
//! - [`secs`]: `Duration` settings read as whole seconds.
//! - [`usage`]: [`Meter`], what apps store and transfer on the sync path, their limits and headroom.

pub mod auth;
pub mod budget;
pub mod bulk;
pub mod error;
pub mod fallback;
pub mod json;
pub mod keys;
pub mod metrics;
pub mod secs;
pub mod serve;
pub mod timeout;
pub mod usage;

pub use auth::{Authenticated, AuthenticatedAccount, AuthenticatedDevice, Authenticator, TokenKeys};
pub use budget::MemoryBudget;
pub use error::ApiError;
pub use json::Json;
pub use keys::{KeyRing, ShortSecret};
pub use usage::{Headroom, Meter};
