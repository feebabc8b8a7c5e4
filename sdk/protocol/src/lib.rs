//! The SyncKit wire protocol, version 1: every request and response body of the HTTP API and the error codes,
//! shared by the server and the SDK so the two can never disagree about a field.
//!
//! JSON over HTTP. Binary fields are standard base64 with padding ([`Base64Bytes`]); timestamps are RFC 3339.
//! Errors are [`ErrorBody`] with a machine-readable [`ErrorCode`].
//!
//! # Layout
//! - [`accounts`]: sign-up, pre-login, password change and token issue (for an app, or for the console).
//! - [`apps`]: app registration: API keys, OAuth client ids and redirect URIs, managed by the app's owner.
//! - [`blobs`]: encrypted files, uploaded to and downloaded from the object store through signed URLs.
//! - [`sync`]: the changelog: push, pull, status.
//! - [`devices`] and [`keys`]: device registry and the wrapped master-key envelope.
//! - [`error`]: the error body and every code the server answers with.
//! - [`limits`]: the sizes the server enforces.
//! - [`oauth`]: signing in through the browser, with an authorization code and PKCE.
//! - [`paths`]: every endpoint's path.
//! - [`plans`]: plans and prices: the pricing engine, billing periods, and the plan endpoints' bodies.
//! - [`recovery`]: the recovery key, the way back from a forgotten password.
//! - [`usage`]: what an app stores and transfers against its plan, and the headroom headers.
//! - `schema.rs` (feature `openapi`): the OpenAPI schemas of fields whose rules a type cannot carry (lengths and
//!   patterns), so that the published document says exactly what the server accepts.

mod base64;
mod integer;
#[cfg(feature = "openapi")]
mod schema;

pub mod accounts;
pub mod apps;
pub mod blobs;
pub mod devices;
pub mod error;
pub mod keys;
pub mod limits;
pub mod oauth;
pub mod paths;
pub mod plans;
pub mod recovery;
pub mod sync;
pub mod usage;

pub use base64::{Base64Bytes, base64_len, base64_pattern};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
