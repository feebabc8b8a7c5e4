//! SyncKit: end-to-end encrypted sync for apps.
//!
//! The app describes each change to its own data as a [`ChangeEntry`]; the SDK encrypts the whole entry on the
//! device (XChaCha20-Poly1305 under a per-user master key), keeps it in the device's outbox until the server has
//! it, and pulls and decrypts what other devices pushed. The server stores ciphertext and never sees a table name,
//! row id or value.
//!
//! ```no_run
//! use synckit::{ChangeEntry, SyncKitClient, SyncKitConfig};
//! # async fn demo() -> synckit::Result<()> {
//! let client = SyncKitClient::new(SyncKitConfig {
//!     server_url: "http://127.0.0.1:8080".into(),
//!     api_key: "sk_…".into(),
//!     ..Default::default()
//! });
//! let (user_id, app_id) = client.authenticate("user@example.com", "pass").await?;
//! client.setup_encryption_new("pass").await?;
//! let device = client.register_device("MacBook", "macos").await?;
//! // Encrypted and stored on the device at once, online or not.
//! client.enqueue([ChangeEntry::insert("notes", "n1", serde_json::json!({"title": "Hello"}))]).await?;
//! // Pushes the outbox, then hands over every change since the saved cursor, in stream order.
//! let report = client
//!     .sync(device.id, |page| {
//!         for synced in &page.changes { /* apply synced.change to the local store */ }
//!         Ok(())
//!     })
//!     .await?;
//! for skipped in &report.undecryptable { eprintln!("{skipped}") } // entries that cannot be read, passed over
//! # Ok(()) }
//! ```
//!
//! The outbox makes retries safe: each change is encrypted once under its change id when it is enqueued, and leaves
//! the outbox only once the server acknowledged it, so a lost answer, a timeout, a push cut off halfway or a crash
//! of the app never stores a change twice or loses one that `enqueue` returned for. `sync` saves the cursor only
//! after `apply` returned `Ok` for a page. [`live`](SyncKitClient::live) does the same continuously: it pushes
//! whenever the app enqueues and pulls whenever another device pushed. Apps that keep their own changes can still
//! [`push`](SyncKitClient::push) and [`pull`](SyncKitClient::pull) directly, with their own change ids
//! ([`push_with_ids`](SyncKitClient::push_with_ids)) for safe retries.
//!
//! An entry that cannot be read (altered, forged by the server, or written by a faulty device) never stops sync:
//! [`SyncPage::undecryptable`], [`PullPage::undecryptable`] and [`LivePage::undecryptable`] report it with its
//! `seq`, change id, device and [`UndecryptableReason`], the other changes are handed over, and the cursor moves
//! past it.
//!
//! An app can sign people in through their browser instead of asking for the email itself:
//! [`sign_in_with_system_browser`](SyncKitClient::sign_in_with_system_browser) opens the server's sign-in page and
//! waits for the browser to come back to `http://127.0.0.1:{port}/callback` (OAuth 2.0 with PKCE; register
//! `http://127.0.0.1/callback` as a redirect URI of the app). Encryption is still unlocked in the app, with the
//! password typed there: the page, which the server serves, never touches the master key
//! ([`sign_in_with_browser`](SyncKitClient::sign_in_with_browser) says why).
//!
//! ```no_run
//! # async fn demo(client: &synckit::SyncKitClient, password: &str) -> synckit::Result<()> {
//! let (user_id, app_id) = client.sign_in_with_system_browser().await?;
//! client.setup_encryption_existing(password).await?;
//! let device = client.register_device("MacBook", "macos").await?;
//! # Ok(()) }
//! ```
//!
//! Files go the same way, as encrypted blobs in the server's object store: the app keeps each blob's [`BlobId`]
//! in its changes, and any of the user's devices downloads and decrypts it.
//!
//! ```no_run
//! # async fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
//! use std::path::Path;
//! use synckit::ChangeEntry;
//! let photo = client.upload_blob(Path::new("photo.jpg")).await?;
//! let note = serde_json::json!({"title": "Holiday", "photo": photo.id.to_string()});
//! client.push(device, vec![ChangeEntry::insert("notes", "n3", note)]).await?;
//! // On another device, with the id from the pulled note:
//! client.download_blob(&photo.id, "photo.jpg").await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`SyncKitClient`] and [`SyncKitConfig`]: the client and how it is configured. Its methods are grouped by
//!   concern: accounts and sessions, encryption set-up, devices, sync (push, pull, cursors, live), and blobs.
//! - [`ChangeEntry`], [`Device`], [`Status`], [`Session`]: what the client exchanges with the app.
//! - [`PullPage`], [`Undecryptable`], [`UndecryptableReason`]: what a pull hands over, and the report of entries
//!   it passed over because they cannot be read. [`SyncPage`] and [`SyncedChange`]: what `sync` hands over, each
//!   change with its place in the stream. [`SyncReport`] and [`ApplyResult`]: what `sync` did, and what its
//!   `apply` callback returns.
//! - [`outbox`]: where enqueued changes wait for the server (SQLite by default, or memory).
//! - [`blobs`]: encrypted files up to 500 MiB: [`BlobSource`], [`UploadedBlob`], [`BlobOptions`] and
//!   [`Progress`], and the step-by-step [`PreparedBlob`], [`BlobUploadUrl`], [`BlobDownloadUrl`].
//! - [`crypto`]: the encryption model (master key, envelope, subkeys, entry and blob sealing).
//! - [`oauth`]: signing in through the browser: the PKCE verifier, challenge and state, the redirect URI, and
//!   opening the system browser.
//! - [`keystore`]: where the unlocked master key is cached (OS keychain, file, memory).
//! - [`cursor`]: where each device's pull cursor is kept.
//! - [`fs`]: replacing a file atomically and privately, as the key and cursor files are.
//! - [`LiveSync`]: live sync, pulling whenever the server says another device pushed.
//! - [`Error`] and [`ErrorKind`]: one error type with a matchable kind.

pub mod blobs;
mod client;
mod config;
pub mod crypto;
pub mod cursor;
mod error;
pub mod fs;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod http;
pub mod keystore;
mod live;
mod model;
pub mod oauth;
pub mod outbox;
mod page;
mod task;

pub use blobs::{BlobDownloadUrl, BlobOptions, BlobSource, BlobUploadUrl, PreparedBlob, Progress, UploadedBlob};
pub use client::{ApplyResult, SyncKitClient};
pub use config::SyncKitConfig;
pub use crypto::RecoveryKey;
pub use crypto::blob::BlobId;
pub use error::{Error, ErrorKind, Result};
pub use live::{LiveOptions, LivePage, LiveSync};
pub use model::{ChangeEntry, ChangeOp, Compacted, Device, Session, Status};
pub use page::{PullPage, SyncPage, SyncReport, SyncedChange, Undecryptable, UndecryptableReason};
/// The server's error codes, as [`Error::code`] returns them.
pub use synckit_protocol::ErrorCode;
