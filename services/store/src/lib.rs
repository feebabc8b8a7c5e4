//! SyncKit's storage ports: the small traits every service talks to, the models they exchange, and the one
//! conformance suite every adapter must pass.
//!
//! # Layout
//! - [`changelog`]: [`ChangelogStore`], the append-only log of encrypted changes, one stream per (app, user).
//! - [`accounts`]: [`AccountStore`], users, apps (with deleting one and all its data), devices, key envelopes and
//!   server secrets.
//! - [`blobs`]: [`BlobCatalog`], the blobs each stream has uploaded and confirmed (their bytes live in an object
//!   store, not here).
//! - [`usage`]: [`UsageStore`], the bytes each stream stores and transfers, per day, for plans and bills.
//! - [`error`]: [`StoreError`], which tells unavailability (retry later) apart from everything else.
//! - `conformance` (feature `conformance`): the suite, generic over the ports, run against every adapter.
//!
//! Adapters live in their own crates: `synckit-store-postgres` for production, `synckit-store-sqlite` for the
//! embedded single-box default.

pub mod accounts;
pub mod blobs;
pub mod changelog;
pub mod error;
pub mod usage;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use accounts::{
    AccountRecovery, AccountStore, App, AppKeyEnvelope, AuthorizationCode, Device, KeyConflict, KeyEnvelope, KeyRewrap,
    LoginKeyChange, LoginKeyChanged, NewApp, NewUser, PendingPlan, PlanRecord, PutKeyOutcome, RecoverableKey,
    Recovered, RecoveredKey, Recovery, RecoveryKeyChange, RecoveryKeyRefused, SecretName, TokenStanding, User,
    rewrap_conflict,
};
pub use blobs::{BlobCatalog, BlobHash, BlobRecord, SweptUpload, UploadBegun};
pub use changelog::{Appended, ChangelogStore, Entry, NewEntry, Page, StreamId, Superseded};
pub use error::StoreError;
pub use usage::{AppBytes, Day, DayBytes, Standing, Transfer, UsageStore, UserBytes};

/// Every port of one deployment's storage.
#[derive(Clone, Debug)]
pub struct Stores {
    pub changelog: std::sync::Arc<dyn ChangelogStore>,
    pub accounts: std::sync::Arc<dyn AccountStore>,
    pub blobs: std::sync::Arc<dyn BlobCatalog>,
    pub usage: std::sync::Arc<dyn UsageStore>,
}

impl Stores {
    /// Every port on one adapter.
    pub fn all_on<S: ChangelogStore + AccountStore + BlobCatalog + UsageStore>(store: std::sync::Arc<S>) -> Self {
        Self { changelog: store.clone(), accounts: store.clone(), blobs: store.clone(), usage: store }
    }
}
