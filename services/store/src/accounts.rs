//! The account port: users, apps, devices, key envelopes and server secrets.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{StoreError, StreamId};

/// An account. Accounts are shared by every app of a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    /// Normalised (trimmed, lower case).
    pub email: String,
    /// The salt the client derives its login key with.
    pub salt: Vec<u8>,
    /// SHA-256 of the login key. The login key is itself an Argon2id output, so a fast hash loses nothing.
    pub login_key_hash: Vec<u8>,
    /// Bumped by every password change; tokens carrying an older version are refused.
    pub token_version: u64,
}

/// A user to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub id: Uuid,
    pub email: String,
    pub salt: Vec<u8>,
    pub login_key_hash: Vec<u8>,
}

/// An app of the deployment; its API key is stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: Uuid,
    pub name: String,
}

/// The deployment-wide secrets the server keeps in its database when they are not configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretName {
    /// Signs and verifies tokens.
    TokenSigningKey,
    /// Signs the embedded blob store's URLs.
    BlobUrlSigningKey,
    /// Derives the stable fake salts pre-login answers for unknown emails.
    PreloginKey,
}

impl SecretName {
    /// Every secret, for tests and tools that walk them all.
    pub const ALL: [SecretName; 3] = [Self::TokenSigningKey, Self::BlobUrlSigningKey, Self::PreloginKey];

    /// The name it is stored under. Stored data: never change one.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokenSigningKey => "token-signing-key",
            Self::BlobUrlSigningKey => "blob-url-signing-key",
            Self::PreloginKey => "prelogin-salt-key",
        }
    }
}

/// A registered device of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: Uuid,
    pub name: String,
    pub platform: String,
    pub created_at: OffsetDateTime,
}

/// What a token's revocation check needs to know, read in one lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenStanding {
    /// The user's token version now; a token carrying another was revoked by a password change.
    pub token_version: u64,
    /// Whether the device asked about is still registered to the stream; false when none was asked about.
    pub device_registered: bool,
}

/// A wrapped master key and its version (1 for the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEnvelope {
    pub envelope: Vec<u8>,
    pub version: u64,
}

/// A password change: the new login salt and key hash, and every key envelope of the account re-wrapped for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginKeyChange {
    pub user_id: Uuid,
    /// The token version the change was authorised with; if it moved on, another change came first.
    pub expected_token_version: u64,
    pub salt: Vec<u8>,
    pub login_key_hash: Vec<u8>,
    /// One per app the account holds an envelope in, no more and no fewer: an envelope left wrapped by the old
    /// password would refuse the new one and still open with the old.
    pub rewrapped_keys: Vec<KeyRewrap>,
}

/// One app's key envelope, re-wrapped for a password change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRewrap {
    pub app_id: Uuid,
    pub envelope: Vec<u8>,
    /// The version the client re-wrapped; another write since then means it re-wrapped a stale envelope.
    pub expected_version: u64,
}

/// One app's envelope of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppKeyEnvelope {
    pub app_id: Uuid,
    pub key: KeyEnvelope,
}

/// What a password change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginKeyChanged {
    /// Changed, with every envelope of the account.
    Changed { token_version: u64 },
    /// The token version moved on (another password change came first); nothing was written.
    TokenRevoked,
    /// The re-wrapped envelopes were not the account's as they stand: this app's envelope is at version `current`
    /// (0: there is none) while the change expected `expected` (0: it gave none). Nothing was written.
    KeyConflict { app_id: Uuid, current: u64, expected: u64 },
}

impl LoginKeyChange {
    /// The first difference between the envelopes the change re-wraps and the account's `stored` ones
    /// (`(app, version)`), as [`LoginKeyChanged::KeyConflict`]; `None` when each stored envelope is re-wrapped
    /// once at its current version and nothing else is. Both adapters decide with this, inside their transaction.
    pub fn key_conflict(&self, stored: &[(Uuid, u64)]) -> Option<LoginKeyChanged> {
        let current = |app_id| stored.iter().find(|&&(a, _)| a == app_id).map(|&(_, v)| v);
        let given = |app_id| self.rewrapped_keys.iter().filter(move |k| k.app_id == app_id);
        let rewrapped_as_stored = |app_id| {
            let mut given = given(app_id);
            matches!((current(app_id), given.next(), given.next()), (Some(v), Some(k), None) if k.expected_version == v)
        };
        let conflict = |app_id| LoginKeyChanged::KeyConflict {
            app_id,
            current: current(app_id).unwrap_or(0),
            expected: given(app_id).next().map_or(0, |k| k.expected_version),
        };
        let apps = stored.iter().map(|&(app_id, _)| app_id).chain(self.rewrapped_keys.iter().map(|k| k.app_id));
        apps.into_iter().find(|&app_id| !rewrapped_as_stored(app_id)).map(conflict)
    }
}

/// What an optimistic key write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutKeyOutcome {
    /// Stored under this new version.
    Stored { version: u64 },
    /// The stored version (0 for none) was not the expected one; nothing was written.
    Conflict { current: u64 },
}

/// Users, apps, devices, key envelopes and server secrets.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Creates a user; [`StoreError::AlreadyExists`] when the email is taken.
    async fn create_user(&self, user: NewUser) -> Result<(), StoreError>;

    /// The user with this (normalised) email.
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;

    /// The user with this id.
    async fn user(&self, id: Uuid) -> Result<Option<User>, StoreError>;

    /// The user's token version and, when `device_id` is given, whether the stream still has that device: what
    /// every authenticated request checks, so one indexed read. `None` when the user does not exist.
    async fn token_standing(
        &self,
        stream: StreamId,
        device_id: Option<Uuid>,
    ) -> Result<Option<TokenStanding>, StoreError>;

    /// Replaces the salt and login key hash and bumps the token version, together with every key envelope of the
    /// account re-wrapped for the new password: all change, or nothing does.
    async fn change_login_key(&self, change: LoginKeyChange) -> Result<LoginKeyChanged, StoreError>;

    /// Creates an app whose API key hashes to `api_key_hash`.
    async fn create_app(&self, app: App, api_key_hash: &[u8]) -> Result<(), StoreError>;

    /// The app whose API key hashes to `api_key_hash`.
    async fn app_by_key_hash(&self, api_key_hash: &[u8]) -> Result<Option<App>, StoreError>;

    /// Registers a device under `new_id`, or, when the stream already has one named `name`, updates its platform
    /// and returns it with its original id.
    async fn upsert_device(
        &self,
        stream: StreamId,
        new_id: Uuid,
        name: &str,
        platform: &str,
    ) -> Result<Device, StoreError>;

    /// The stream's devices, oldest first.
    async fn devices(&self, stream: StreamId) -> Result<Vec<Device>, StoreError>;

    /// Whether the stream has this device.
    async fn has_device(&self, stream: StreamId, id: Uuid) -> Result<bool, StoreError>;

    /// Removes the device; false when the stream had none with this id.
    async fn delete_device(&self, stream: StreamId, id: Uuid) -> Result<bool, StoreError>;

    /// Stores a new envelope if the current version (0 for none) is `expected_version`.
    async fn put_key(
        &self,
        stream: StreamId,
        envelope: &[u8],
        expected_version: u64,
    ) -> Result<PutKeyOutcome, StoreError>;

    /// The stream's envelope.
    async fn key(&self, stream: StreamId) -> Result<Option<KeyEnvelope>, StoreError>;

    /// The account's envelope in each app that has one, by app id.
    async fn account_keys(&self, user_id: Uuid) -> Result<Vec<AppKeyEnvelope>, StoreError>;

    /// The secret stored under `name`; stores `candidate` first when there is none, so that every instance of a
    /// deployment ends up with the same value.
    async fn secret(&self, name: SecretName, candidate: &[u8]) -> Result<Vec<u8>, StoreError>;

    /// Succeeds when the engine answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

impl std::fmt::Debug for dyn AccountStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn AccountStore")
    }
}
