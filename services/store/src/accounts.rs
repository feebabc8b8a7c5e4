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

/// An app of the deployment. Its API key is stored only as a hash, which is never read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: Uuid,
    pub name: String,
    /// The account that manages the app; `None` for an app the operator made.
    pub owner_id: Option<Uuid>,
    /// The app's OAuth client id: public, random, unrelated to `id`, unique.
    pub client_id: String,
    /// Where OAuth may send a user back to, in the order registered.
    pub redirect_uris: Vec<String>,
    pub created_at: OffsetDateTime,
}

/// An app to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApp {
    pub id: Uuid,
    pub name: String,
    pub owner_id: Option<Uuid>,
    pub client_id: String,
    pub redirect_uris: Vec<String>,
    /// SHA-256 of the app's API key, by which sign-in finds the app.
    pub api_key_hash: Vec<u8>,
}

/// What an OAuth authorization code grants, kept under the code's hash from the sign-in that issued it until it is
/// redeemed (once) or expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    /// SHA-256 of the code: the code itself is not kept.
    pub code_hash: Vec<u8>,
    pub app_id: Uuid,
    pub user_id: Uuid,
    /// The redirect URI of the authorization request, exactly as it named it (its port included).
    pub redirect_uri: String,
    /// The PKCE `S256` challenge of the authorization request.
    pub code_challenge: String,
    /// The user's token version at sign-in: a password change in between voids the code.
    pub token_version: u64,
    pub expires_at: OffsetDateTime,
}

/// An app's plan as stored: the limits in force, and a change waiting for a later billing period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanRecord {
    pub storage_bytes: u64,
    pub burst: u32,
    pub next: Option<PendingPlan>,
}

impl PlanRecord {
    /// The storage limit and burst in force in billing period `period` (months since year 0): the waiting change's
    /// once its period has come.
    pub fn in_force(&self, period: i64) -> (u64, u32) {
        match self.next {
            Some(next) if next.from_period <= period => (next.storage_bytes, next.burst),
            _ => (self.storage_bytes, self.burst),
        }
    }
}

/// A plan that starts with billing period `from_period` (months since year 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingPlan {
    pub storage_bytes: u64,
    pub burst: u32,
    pub from_period: i64,
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
    /// Whether the stream's app still exists: deleting an app revokes every token of it.
    pub app_exists: bool,
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
        let given: Vec<(Uuid, u64)> = self.rewrapped_keys.iter().map(|k| (k.app_id, k.expected_version)).collect();
        rewrap_conflict(&given, stored).map(|KeyConflict { app_id, current, expected }| LoginKeyChanged::KeyConflict {
            app_id,
            current,
            expected,
        })
    }
}

/// The key envelopes a write re-wraps are not the account's as they stand: this app's envelope is at version
/// `current` (0: there is none) while the write expected `expected` (0: it gave none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyConflict {
    pub app_id: Uuid,
    pub current: u64,
    pub expected: u64,
}

/// The first difference between the `(app, expected version)` pairs a write `given` and the account's `stored`
/// key envelopes (`(app, version)`); `None` when each stored envelope is given once at its current version and
/// nothing else is. A password change, a recovery key and a recovery all cover every app, decided by this.
pub fn rewrap_conflict(given: &[(Uuid, u64)], stored: &[(Uuid, u64)]) -> Option<KeyConflict> {
    let current = |app_id| stored.iter().find(|&&(a, _)| a == app_id).map(|&(_, v)| v);
    let given_for = |app_id| given.iter().filter(move |&&(a, _)| a == app_id).map(|&(_, v)| v);
    let as_stored = |app_id| {
        let mut given = given_for(app_id);
        matches!((current(app_id), given.next(), given.next()), (Some(v), Some(e), None) if e == v)
    };
    let conflict = |app_id| KeyConflict {
        app_id,
        current: current(app_id).unwrap_or(0),
        expected: given_for(app_id).next().unwrap_or(0),
    };
    let apps = stored.iter().chain(given).map(|&(app_id, _)| app_id);
    apps.into_iter().find(|&app_id| !as_stored(app_id)).map(conflict)
}

/// A new recovery key: the hash of its recovery login key, and a recovery envelope for every app of the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryKeyChange {
    pub user_id: Uuid,
    /// The login key hash the caller proved the password against: if the password changed since, nothing is set.
    pub expected_login_key_hash: Vec<u8>,
    /// SHA-256 of the recovery login key, as [`User::login_key_hash`] is of the login key.
    pub recovery_key_hash: Vec<u8>,
    /// One per app the account holds a key envelope in, no more and no fewer: `envelope` is the recovery envelope,
    /// `expected_version` the version of the key envelope whose master key it seals.
    pub recovery_envelopes: Vec<KeyRewrap>,
}

/// Why [`AccountStore::set_recovery_key`] set nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryKeyRefused {
    /// The account's login key hash is no longer the expected one: the password changed after the caller proved
    /// it, and a recovery key must not outlive the change that locked its maker out.
    PasswordChanged,
    /// The recovery envelopes do not cover every app's key envelope at its current version.
    KeyConflict(KeyConflict),
}

/// What the server holds for recovering an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecovery {
    /// SHA-256 of the recovery login key.
    pub recovery_key_hash: Vec<u8>,
    /// Every app the account has a key envelope in, by app id.
    pub keys: Vec<RecoverableKey>,
}

/// One app's key envelope version and its recovery envelope, if the recovery key covers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverableKey {
    pub app_id: Uuid,
    /// The version of the app's key envelope.
    pub version: u64,
    /// `None` when the app's key was set up after the recovery key was made.
    pub recovery_envelope: Option<Vec<u8>>,
}

/// A recovery: the password and the recovery key both replaced, with every app's envelopes, in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub user_id: Uuid,
    /// The recovery key hash the request was checked against; if it changed since, another recovery or a new
    /// recovery key came first.
    pub expected_recovery_key_hash: Vec<u8>,
    pub salt: Vec<u8>,
    pub login_key_hash: Vec<u8>,
    pub recovery_key_hash: Vec<u8>,
    /// One per app the account holds a key envelope in.
    pub keys: Vec<RecoveredKey>,
}

/// One app's key after a recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredKey {
    pub app_id: Uuid,
    /// Wrapped for the new password.
    pub envelope: Vec<u8>,
    /// Sealed under the new recovery key.
    pub recovery_envelope: Vec<u8>,
    /// The version of the key envelope that was opened.
    pub expected_version: u64,
}

impl Recovery {
    /// [`rewrap_conflict`] of this recovery's keys against the `stored` envelopes.
    pub fn key_conflict(&self, stored: &[(Uuid, u64)]) -> Option<KeyConflict> {
        let given: Vec<(Uuid, u64)> = self.keys.iter().map(|k| (k.app_id, k.expected_version)).collect();
        rewrap_conflict(&given, stored)
    }
}

impl RecoveryKeyChange {
    /// [`rewrap_conflict`] of this change's recovery envelopes against the `stored` envelopes.
    pub fn key_conflict(&self, stored: &[(Uuid, u64)]) -> Option<KeyConflict> {
        let given: Vec<(Uuid, u64)> = self.recovery_envelopes.iter().map(|k| (k.app_id, k.expected_version)).collect();
        rewrap_conflict(&given, stored)
    }
}

/// What a recovery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovered {
    /// Done; tokens of older versions are revoked.
    Changed { token_version: u64 },
    /// The recovery key is no longer the one checked (used or replaced meanwhile); nothing was written.
    RecoveryKeyChanged,
    /// The keys were not every app's at its current version; nothing was written.
    KeyConflict(KeyConflict),
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

    /// Sets the recovery key hash and every app's recovery envelope, replacing any recovery key before, if the
    /// password is still the one the caller proved and the envelopes cover every app's key envelope at its current
    /// version; otherwise writes nothing and says why (a changed password before a key conflict, since a password
    /// change moves every key envelope's version too).
    async fn set_recovery_key(&self, change: RecoveryKeyChange) -> Result<Option<RecoveryKeyRefused>, StoreError>;

    /// The account's recovery key hash and recoverable keys; `None` when the user has no recovery key (or does
    /// not exist).
    async fn recovery(&self, user_id: Uuid) -> Result<Option<AccountRecovery>, StoreError>;

    /// Replaces the salt, login key hash, recovery key hash and every app's key and recovery envelopes, and bumps
    /// the token version: all change, or nothing does.
    async fn recover(&self, recovery: Recovery) -> Result<Recovered, StoreError>;

    /// Creates an app, and answers it as stored; [`StoreError::AlreadyExists`] when its id, API key hash or client
    /// id is taken.
    async fn create_app(&self, app: NewApp) -> Result<App, StoreError>;

    /// The app with this id.
    async fn app(&self, id: Uuid) -> Result<Option<App>, StoreError>;

    /// The app whose API key hashes to `api_key_hash`.
    async fn app_by_key_hash(&self, api_key_hash: &[u8]) -> Result<Option<App>, StoreError>;

    /// The apps `owner` owns, or with `None` every app of the deployment (the operator's view), oldest first.
    async fn apps(&self, owner: Option<Uuid>) -> Result<Vec<App>, StoreError>;

    /// Replaces the app's redirect URIs, and answers the app as it now is; `None` when there is no such app.
    async fn set_redirect_uris(&self, id: Uuid, redirect_uris: &[String]) -> Result<Option<App>, StoreError>;

    /// Replaces the app's API key hash, so that the key before finds no app from now on; false when there is no
    /// such app.
    async fn set_api_key_hash(&self, id: Uuid, api_key_hash: &[u8]) -> Result<bool, StoreError>;

    /// Deletes the app and everything stored under it, in one transaction: every stream's entries and head, the
    /// devices, the key envelopes (with their recovery envelopes) and the blob records. False when there was no
    /// such app. Tokens of the app stop standing ([`TokenStanding::app_exists`]) and its API key finds nothing.
    async fn delete_app(&self, id: Uuid) -> Result<bool, StoreError>;

    /// The app with this OAuth client id.
    async fn app_by_client_id(&self, client_id: &str) -> Result<Option<App>, StoreError>;

    /// Keeps an authorization code's grant, and forgets every grant that expired before `now`, so that codes never
    /// redeemed do not pile up.
    async fn store_authorization_code(&self, code: AuthorizationCode, now: OffsetDateTime) -> Result<(), StoreError>;

    /// Takes the grant of the code hashing to `code_hash` out of the store, so that no one redeems it again, and
    /// answers it, expired or not (the caller checks); `None` when there is none: never issued, redeemed already,
    /// or its app deleted.
    async fn redeem_authorization_code(&self, code_hash: &[u8]) -> Result<Option<AuthorizationCode>, StoreError>;

    /// The app's plan; `None` while it has none.
    async fn app_plan(&self, app_id: Uuid) -> Result<Option<PlanRecord>, StoreError>;

    /// Replaces the app's plan; false when there is no such app.
    async fn set_app_plan(&self, app_id: Uuid, plan: PlanRecord) -> Result<bool, StoreError>;

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
