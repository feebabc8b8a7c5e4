//! [`SyncKitClient`]: the handle, what it holds, and the internals every group of its methods shares.
//!
//! Its methods are grouped by concern, each group an `impl SyncKitClient` block in a module of its own:
//! `accounts` (sign-in and sessions), `oauth` (sign-in through the browser), `encryption` (the master key),
//! `recovery` (the recovery key), `devices`, `sync` (push, pull, cursors, live), `engine` (the outbox and one-call
//! sync, built on `sync`'s sealing and pulling), and the blob methods in [`crate::blobs`]. They share what is here
//! (the login key, opening and unlocking the master key); apart from `engine`, and `oauth`, which ends a sign-in as
//! `accounts` does, none of them uses another.

mod accounts;
mod devices;
mod encryption;
mod engine;
mod oauth;
mod recovery;
mod sync;

pub use engine::ApplyResult;

use std::sync::{Arc, RwLock};

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use synckit_protocol::accounts::{PreloginRequest, PreloginResponse};
use synckit_protocol::keys::{AccountKeysResponse, KeyEnvelope};
use synckit_protocol::paths;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::config::SyncKitConfig;
use crate::crypto::{self, KdfParams, Keys, SecretKey};
use crate::cursor::{CursorStore, FileCursorStore};
use crate::error::{Error, ErrorKind, Result};
use crate::http::{Retry, Transport};
use crate::keystore::{KeyStore, default_key_store};
use crate::model::Session;
use crate::outbox::{OutboxStore, SqliteOutboxStore};
use crate::task::blocking;

/// The SyncKit client: cheap to clone, `Send + Sync`, every method takes `&self`. Share one per app (in an `Arc`
/// or by cloning); it pools its connections.
///
/// ```no_run
/// use synckit::{ChangeEntry, SyncKitClient, SyncKitConfig};
/// # async fn demo() -> synckit::Result<()> {
/// let client = SyncKitClient::new(SyncKitConfig {
///     server_url: "http://127.0.0.1:8080".into(),
///     api_key: "sk_…".into(),
///     ..Default::default()
/// });
/// let (user_id, app_id) = client.authenticate("user@example.com", "pass").await?;
/// client.setup_encryption_new("pass").await?;
/// let device = client.register_device("MacBook", "macos").await?;
/// let cursor = client.push(device.id, vec![ChangeEntry::insert("notes", "n1", serde_json::json!({"t": "hi"}))]).await?;
/// let page = client.pull(device.id, 0).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SyncKitClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: SyncKitConfig,
    transport: Transport,
    key_store: Arc<dyn KeyStore>,
    cursor_store: Arc<dyn CursorStore>,
    outbox: Arc<dyn OutboxStore>,
    /// Bumped by every enqueue, so live sync pushes what was just enqueued.
    enqueued: tokio::sync::watch::Sender<u64>,
    /// One push of the outbox at a time per client: a second would only send the same batch again.
    pushing: tokio::sync::Mutex<()>,
    state: RwLock<State>,
    /// The app's OAuth client id, from the configuration or asked of the server once.
    oauth_client: tokio::sync::OnceCell<oauth::OAuthClient>,
}

#[derive(Debug, Default)]
struct State {
    session: Option<Session>,
    /// The unlocked master key and its subkeys.
    unlocked: Option<(SecretKey, Keys)>,
}

impl SyncKitClient {
    /// A client for the configured server. Nothing is sent until the first call.
    ///
    /// ```
    /// let client = synckit::SyncKitClient::new(synckit::SyncKitConfig::new("http://127.0.0.1:8080", "sk_…"));
    /// assert!(client.session().is_none());
    /// ```
    pub fn new(config: SyncKitConfig) -> Self {
        let data_dir = config.resolved_data_dir();
        let key_store = config.key_store.clone().unwrap_or_else(|| default_key_store(&data_dir.join("keys")));
        let cursor_store = config
            .cursor_store
            .clone()
            .unwrap_or_else(|| Arc::new(FileCursorStore::new(data_dir.join("cursors.json"))));
        let outbox = config
            .outbox_store
            .clone()
            .unwrap_or_else(|| Arc::new(SqliteOutboxStore::new(data_dir.join("outbox.sqlite3"))));
        let transport = Transport::new(&config);
        Self {
            inner: Arc::new(Inner {
                config,
                transport,
                key_store,
                cursor_store,
                outbox,
                enqueued: tokio::sync::watch::Sender::new(0),
                pushing: tokio::sync::Mutex::new(()),
                state: RwLock::new(State::default()),
                oauth_client: tokio::sync::OnceCell::new(),
            }),
        }
    }

    // ----- internals -----

    pub(crate) fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    pub(crate) async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        authenticated: bool,
        body: Option<&B>,
        retry: Retry,
    ) -> Result<T> {
        let token = if authenticated { Some(self.require_session()?.token) } else { None };
        let body = body.map(|b| bytes::Bytes::from(serde_json::to_vec(b).expect("protocol types serialise")));
        self.inner.transport.call(method, path, token.as_deref(), body, retry).await
    }

    async fn server_key(&self) -> Result<Option<KeyEnvelope>> {
        match self.call::<(), KeyEnvelope>(Method::GET, paths::KEYS, true, None, Retry::Idempotent).await {
            Ok(key) => Ok(Some(key)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn require_session(&self) -> Result<Session> {
        self.session().ok_or_else(|| Error::new(ErrorKind::Unauthorized, "not signed in: call authenticate first"))
    }

    pub(crate) fn keys(&self) -> Result<Keys> {
        self.inner.state.read().expect("not poisoned").unlocked.as_ref().map(|(_, k)| k.clone()).ok_or_else(|| {
            Error::new(
                ErrorKind::Locked,
                "encryption is not set up: call setup_encryption_new or setup_encryption_existing",
            )
        })
    }

    /// The key store account: one per server, app and user.
    fn key_account(&self) -> Result<String> {
        let s = self.require_session()?;
        Ok(format!("{}|{}|{}", self.inner.transport.base_url(), s.app_id, s.user_id))
    }

    fn cursor_name(&self, device_id: Uuid) -> Result<String> {
        Ok(format!("{}|{device_id}", self.key_account()?))
    }
}

fn check_password(password: &str) -> Result<()> {
    if password.is_empty() {
        return Err(Error::new(ErrorKind::InvalidInput, "the password must not be empty"));
    }
    Ok(())
}

/// Argon2id off the async runtime.
async fn derive(password: &str, salt: Vec<u8>, params: KdfParams) -> Result<SecretKey> {
    let password = Zeroizing::new(password.to_owned());
    blocking(move || crypto::derive_key(&password, &salt, params)).await
}

/// The master key of `user` in `app`, wrapped by `password` (Argon2id, off the async runtime).
async fn wrap(master: &SecretKey, password: &str, app: Uuid, user: Uuid) -> Result<Vec<u8>> {
    let (master, password) = (master.clone(), Zeroizing::new(password.to_owned()));
    blocking(move || crypto::wrap_master_key(&master, &password, app, user)).await
}

/// A master key taken from the server's key envelope.
enum Opened {
    /// From a version 2 envelope, opened with the password and its key check passed.
    Current(SecretKey),
    /// The key this device already held, which the server's version 1 envelope was confirmed to hold: re-wrap it
    /// as version 2.
    Legacy(SecretKey),
}

impl Opened {
    fn into_key(self) -> SecretKey {
        match self {
            Opened::Current(key) | Opened::Legacy(key) => key,
        }
    }
}

impl SyncKitClient {
    /// The master key of `user` in `app` in the server's `envelope`, opened with `password`. The envelope's
    /// header, KDF parameters included, is checked before any key is derived. A version 1 envelope cannot show
    /// that the key inside is the user's (a server can forge one with the login key it receives), so it is only
    /// confirmed against the key this device already holds, which can only be the session's app's, and refused
    /// ([`ErrorKind::Crypto`]) otherwise.
    async fn open_envelope(&self, envelope: &[u8], password: &str, app: Uuid, user: Uuid) -> Result<Opened> {
        let legacy = crypto::Envelope::parse(envelope)?.is_legacy();
        let ours = self.session().is_some_and(|s| (s.app_id, s.user_id) == (app, user));
        let held = if legacy && ours { self.held_key().await? } else { None };
        let (envelope, password) = (envelope.to_vec(), Zeroizing::new(password.to_owned()));
        blocking(move || {
            let envelope = crypto::Envelope::parse(&envelope)?;
            match held {
                Some(held) => envelope.confirm_legacy(&password, app, user, &held).map(|()| Opened::Legacy(held)),
                // A version 1 envelope without a held key is refused by `open` itself.
                None => envelope.open(&password, app, user).map(Opened::Current),
            }
        })
        .await
    }

    /// The master key this device already holds for the session's (app, user): unlocked now, or in the key store.
    async fn held_key(&self) -> Result<Option<SecretKey>> {
        if let Some((master, _)) = self.inner.state.read().expect("not poisoned").unlocked.as_ref() {
            return Ok(Some(master.clone()));
        }
        let (store, account) = (self.inner.key_store.clone(), self.key_account()?);
        blocking(move || store.load(&account)).await
    }

    /// The master key of every app the account has a key envelope in, `(app, version, key)`, opened with the
    /// (current) password under the rules of [`setup_encryption_existing`](Self::setup_encryption_existing).
    async fn account_keys(&self, session: &Session, password: &str) -> Result<Vec<(Uuid, u64, SecretKey)>> {
        let stored: AccountKeysResponse =
            self.call::<(), _>(Method::GET, paths::ACCOUNTS_KEYS, true, None, Retry::Idempotent).await?;
        let mut keys = Vec::with_capacity(stored.keys.len());
        for key in stored.keys {
            let opened = self.open_envelope(&key.envelope.0, password, key.app_id, session.user_id).await;
            let master = match opened.map(Opened::into_key) {
                Err(e) if e.kind() == ErrorKind::WrongPassword && key.app_id != session.app_id => {
                    // Only an envelope left behind by an earlier password (or one the server altered) does this.
                    let message = format!(
                        "the key envelope of app {} does not open with the current password, so it cannot be \
                         re-wrapped; nothing changed",
                        key.app_id
                    );
                    return Err(Error::new(ErrorKind::WrongPassword, message));
                }
                master => master?,
            };
            keys.push((key.app_id, key.version, master));
        }
        Ok(keys)
    }

    /// The login key: derived from the password with the salt and parameters the server holds for the account.
    async fn login_key(&self, email: &str, password: &str) -> Result<SecretKey> {
        let req = PreloginRequest { email: email.to_owned() };
        let pre: PreloginResponse =
            self.call(Method::POST, paths::ACCOUNTS_PRELOGIN, false, Some(&req), Retry::Idempotent).await?;
        let params = KdfParams {
            memory_kib: pre.kdf.memory_kib,
            iterations: pre.kdf.iterations,
            parallelism: pre.kdf.parallelism,
        };
        if params != KdfParams::DEFAULT {
            // The login derivation is fixed by the protocol: a server asking for less is not one to trust.
            return Err(Error::new(ErrorKind::Server, "the server asked for a different login key derivation"));
        }
        derive(password, pre.salt.into_vec(), params).await
    }

    /// Holds `master` unlocked, here and in the key store.
    fn unlock(&self, master: SecretKey) -> Result<()> {
        let account = self.key_account()?;
        self.inner.key_store.store(&account, &master)?;
        let keys = Keys::derive(&master);
        self.inner.state.write().expect("not poisoned").unlocked = Some((master, keys));
        Ok(())
    }
}
