//! [`SyncKitClient`]: sign-in, encryption set-up, devices, push and pull. Its blob methods live in
//! [`crate::blobs`].

use std::sync::{Arc, RwLock};

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use synckit_protocol::accounts::{
    AuthRequest, AuthResponse, ChangePasswordRequest, PreloginRequest, PreloginResponse, RegisterRequest,
    RegisterResponse,
};
use synckit_protocol::devices::RegisterDeviceRequest;
use synckit_protocol::keys::{KeyEnvelope, PutKeyRequest, PutKeyResponse};
use synckit_protocol::limits::{MAX_ENTRY_BYTES, MAX_PULL_LIMIT, MAX_PUSH_BODY_BYTES, MAX_PUSH_ENTRIES};
use synckit_protocol::sync::{PullRequest, PullResponse, PushEntry, PushRequest, PushResponse, StatusResponse};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::config::SyncKitConfig;
use crate::crypto::{self, KdfParams, Keys, SecretKey};
use crate::cursor::{CursorStore, FileCursorStore};
use crate::error::{Error, ErrorKind, Result};
use crate::http::{Retry, Transport};
use crate::keystore::{KeyStore, default_key_store};
use crate::live::{LiveOptions, LiveSync};
use crate::model::{ChangeEntry, Device, Session, Status};
use crate::task::{blocking, internal};

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
/// let (changes, new_cursor, has_more) = client.pull(device.id, 0).await?;
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
    state: RwLock<State>,
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
        let transport = Transport::new(&config);
        Self {
            inner: Arc::new(Inner { config, transport, key_store, cursor_store, state: RwLock::new(State::default()) }),
        }
    }

    // ----- accounts and sessions -----

    /// Creates an account. The password never leaves the device: only a key derived from it with Argon2id.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
    /// let user_id = client.register("ada@example.com", "a long passphrase").await?;
    /// # Ok(()) }
    /// ```
    pub async fn register(&self, email: &str, password: &str) -> Result<Uuid> {
        check_password(password)?;
        let salt: [u8; crypto::SALT_BYTES] = crypto::random_bytes();
        let login_key = derive(password, salt.to_vec(), KdfParams::DEFAULT).await?;
        let req = RegisterRequest {
            email: email.to_owned(),
            salt: salt.to_vec().into(),
            login_key: login_key.as_bytes().to_vec().into(),
        };
        let resp: RegisterResponse =
            self.call(Method::POST, "/api/accounts/register", false, Some(&req), Retry::IfUnprocessed).await?;
        Ok(resp.user_id)
    }

    /// Signs in to this app, returning `(user_id, app_id)`. A wrong password is [`ErrorKind::WrongPassword`].
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
    /// let (user_id, app_id) = client.authenticate("ada@example.com", "a long passphrase").await?;
    /// # Ok(()) }
    /// ```
    pub async fn authenticate(&self, email: &str, password: &str) -> Result<(Uuid, Uuid)> {
        check_password(password)?;
        let login_key = self.login_key(email, password).await?;
        let req = AuthRequest {
            email: email.to_owned(),
            login_key: login_key.as_bytes().to_vec().into(),
            api_key: self.inner.config.api_key.clone(),
        };
        let resp: AuthResponse =
            self.call(Method::POST, "/api/sync/auth", false, Some(&req), Retry::Idempotent).await?;
        let ids = (resp.user_id, resp.app_id);
        let mut state = self.inner.state.write().expect("not poisoned");
        // Another user's key must not stay unlocked.
        if state.session.as_ref().is_some_and(|s| (s.user_id, s.app_id) != ids) {
            state.unlocked = None;
        }
        state.session = Some(Session {
            token: resp.token,
            user_id: resp.user_id,
            app_id: resp.app_id,
            email: email.trim().to_lowercase(),
            expires_at: resp.expires_at,
        });
        Ok(ids)
    }

    /// The current session, to save and [`restore_session`](Self::restore_session) later.
    ///
    /// ```
    /// # let client = synckit::SyncKitClient::new(synckit::SyncKitConfig::default());
    /// assert!(client.session().is_none());
    /// ```
    pub fn session(&self) -> Option<Session> {
        self.inner.state.read().expect("not poisoned").session.clone()
    }

    /// Resumes a saved session (then [`try_load_key_from_keychain`](Self::try_load_key_from_keychain) unlocks).
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, saved: synckit::Session) -> synckit::Result<()> {
    /// client.restore_session(saved);
    /// let unlocked = client.try_load_key_from_keychain().await?;
    /// # Ok(()) }
    /// ```
    pub fn restore_session(&self, session: Session) {
        let mut state = self.inner.state.write().expect("not poisoned");
        state.unlocked = None;
        state.session = Some(session);
    }

    /// Signs out: forgets the session and the unlocked key, here and in the key store.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
    /// client.logout()?;
    /// assert!(client.session().is_none());
    /// # Ok(()) }
    /// ```
    pub fn logout(&self) -> Result<()> {
        let account = self.key_account().ok();
        *self.inner.state.write().expect("not poisoned") = State::default();
        match account {
            Some(account) => self.inner.key_store.delete(&account),
            None => Ok(()),
        }
    }

    /// Changes the account password and re-wraps the master key for it, in one step on the server: both change
    /// or neither does. If another device changed the key meanwhile this fails with [`ErrorKind::Conflict`] and
    /// nothing changes. Other devices' sessions end; they sign in with the new password.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
    /// client.change_password("old passphrase", "new passphrase").await?;
    /// # Ok(()) }
    /// ```
    pub async fn change_password(&self, current: &str, new: &str) -> Result<()> {
        check_password(new)?;
        let session = self.require_session()?;
        let current_login_key = self.login_key(&session.email, current).await?;
        let key = match self.server_key().await? {
            Some(stored) => {
                let master = unwrap(&stored.envelope.0, current, &session).await?;
                let envelope = wrap(&master, new, &session).await?;
                Some(PutKeyRequest { envelope: envelope.into(), expected_version: Some(stored.version) })
            }
            None => None,
        };
        let salt: [u8; crypto::SALT_BYTES] = crypto::random_bytes();
        let login_key = derive(new, salt.to_vec(), KdfParams::DEFAULT).await?;
        let req = ChangePasswordRequest {
            current_login_key: current_login_key.as_bytes().to_vec().into(),
            salt: salt.to_vec().into(),
            login_key: login_key.as_bytes().to_vec().into(),
            key,
        };
        let resp: AuthResponse =
            self.call(Method::POST, "/api/accounts/password", true, Some(&req), Retry::IfUnprocessed).await?;
        let mut state = self.inner.state.write().expect("not poisoned");
        if let Some(s) = state.session.as_mut() {
            s.token = resp.token;
            s.expires_at = resp.expires_at;
        }
        Ok(())
    }

    // ----- encryption -----

    /// Creates this user's master key, stores it on the server wrapped by `password`, and unlocks this client.
    /// Fails with [`ErrorKind::Conflict`] when the user already has one: use
    /// [`setup_encryption_existing`](Self::setup_encryption_existing) then.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
    /// if !client.has_server_key().await? {
    ///     client.setup_encryption_new("a long passphrase").await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn setup_encryption_new(&self, password: &str) -> Result<()> {
        check_password(password)?;
        let session = self.require_session()?;
        let master = SecretKey::generate();
        let envelope = wrap(&master, password, &session).await?;
        let req = PutKeyRequest { envelope: envelope.into(), expected_version: None };
        let put: Result<PutKeyResponse> =
            self.call(Method::PUT, "/api/sync/keys", true, Some(&req), Retry::IfUnprocessed).await;
        match put {
            Ok(_) => self.unlock(master),
            Err(e) if e.kind() == ErrorKind::Conflict => Err(Error::new(
                ErrorKind::Conflict,
                "this user already has an encryption key: unlock it with setup_encryption_existing",
            )),
            Err(e) => Err(e),
        }
    }

    /// Unlocks with the master key stored on the server, opened with `password`. A wrong password is
    /// [`ErrorKind::WrongPassword`] and changes nothing.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
    /// client.setup_encryption_existing("a long passphrase").await?;
    /// # Ok(()) }
    /// ```
    pub async fn setup_encryption_existing(&self, password: &str) -> Result<()> {
        let session = self.require_session()?;
        let stored = self
            .server_key()
            .await?
            .ok_or_else(|| Error::new(ErrorKind::NotFound, "this user has no encryption key yet: set one up"))?;
        let master = unwrap(&stored.envelope.0, password, &session).await?;
        self.unlock(master)
    }

    /// Unlocks from the key store (OS keychain) without the password, if this device unlocked before. Returns
    /// whether it did.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
    /// if !client.try_load_key_from_keychain().await? {
    ///     client.setup_encryption_existing("a long passphrase").await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn try_load_key_from_keychain(&self) -> Result<bool> {
        let account = self.key_account()?;
        let store = self.inner.key_store.clone();
        let loaded = tokio::task::spawn_blocking(move || store.load(&account))
            .await
            .map_err(|e| internal("the key store task", e))??;
        match loaded {
            Some(master) => {
                let keys = Keys::derive(&master);
                self.inner.state.write().expect("not poisoned").unlocked = Some((master, keys));
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Whether this user has a master key on the server (set up on some device).
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
    /// let first_device = !client.has_server_key().await?;
    /// # Ok(()) }
    /// ```
    pub async fn has_server_key(&self) -> Result<bool> {
        Ok(self.server_key().await?.is_some())
    }

    /// Whether this client holds the unlocked master key.
    ///
    /// ```
    /// # let client = synckit::SyncKitClient::new(synckit::SyncKitConfig::default());
    /// assert!(!client.is_unlocked());
    /// ```
    pub fn is_unlocked(&self) -> bool {
        self.inner.state.read().expect("not poisoned").unlocked.is_some()
    }

    // ----- devices -----

    /// Registers this device (or returns the one registered under `name`, with `platform` updated).
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
    /// let device = client.register_device("MacBook", "macos").await?;
    /// println!("{}", device.id);
    /// # Ok(()) }
    /// ```
    pub async fn register_device(&self, name: &str, platform: &str) -> Result<Device> {
        let req = RegisterDeviceRequest { name: name.to_owned(), platform: platform.to_owned() };
        self.call(Method::POST, "/api/sync/devices", true, Some(&req), Retry::Idempotent).await
    }

    /// This user's devices in this app, oldest first.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
    /// for d in client.list_devices().await? {
    ///     println!("{} {} {}", d.id, d.name, d.platform);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_devices(&self) -> Result<Vec<Device>> {
        self.call::<(), _>(Method::GET, "/api/sync/devices", true, None, Retry::Idempotent).await
    }

    /// Removes a device; [`ErrorKind::NotFound`] if this user has none with that id.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, old: uuid::Uuid) -> synckit::Result<()> {
    /// client.delete_device(old).await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_device(&self, device_id: Uuid) -> Result<()> {
        let path = format!("/api/sync/devices/{device_id}");
        self.call::<(), ()>(Method::DELETE, &path, true, None, Retry::IfUnprocessed).await
    }

    // ----- sync -----

    /// Encrypts and pushes changes made on `device_id`, in as many requests as the protocol's limits need, and
    /// returns the stream's cursor after them. Each change is encrypted once; a retry after a lost answer resends
    /// the same bytes under the same change ids, so nothing is stored twice.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
    /// use synckit::ChangeEntry;
    /// let cursor = client.push(device, vec![
    ///     ChangeEntry::insert("notes", "n1", serde_json::json!({"title": "Groceries"})),
    ///     ChangeEntry::delete("notes", "n0"),
    /// ]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn push(&self, device_id: Uuid, changes: impl IntoIterator<Item = ChangeEntry>) -> Result<u64> {
        let session = self.require_session()?;
        let keys = self.keys()?;
        let mut batches: Vec<Vec<PushEntry>> = vec![Vec::new()];
        let mut batch_bytes = 0usize;
        for change in changes {
            let change_id = Uuid::now_v7();
            let plaintext = Zeroizing::new(serde_json::to_vec(&change).expect("a change entry serialises"));
            let payload = keys.seal_entry(&plaintext, session.app_id, session.user_id, change_id);
            if payload.len() > MAX_ENTRY_BYTES {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "a change to {}/{} is {} bytes encrypted; at most {MAX_ENTRY_BYTES}",
                        change.table,
                        change.row_id,
                        payload.len()
                    ),
                ));
            }
            // Base64 and JSON framing: 4/3 of the payload plus the id, with room to spare.
            let wire = payload.len().div_ceil(3) * 4 + 80;
            let full = batches.last().expect("never empty");
            if full.len() == MAX_PUSH_ENTRIES || batch_bytes + wire > MAX_PUSH_BODY_BYTES - 1024 {
                batches.push(Vec::new());
                batch_bytes = 0;
            }
            batch_bytes += wire;
            batches.last_mut().expect("never empty").push(PushEntry { change_id, payload: payload.into() });
        }
        let mut cursor = None;
        for entries in batches.into_iter().filter(|b| !b.is_empty()) {
            let req = PushRequest { device_id, entries };
            let resp: PushResponse =
                self.call(Method::POST, "/api/sync/push", true, Some(&req), Retry::Idempotent).await?;
            cursor = Some(resp.cursor);
        }
        match cursor {
            Some(cursor) => Ok(cursor),
            None => Ok(self.status().await?.cursor),
        }
    }

    /// Pulls one page (up to 500) of the changes after `cursor`, decrypted, and returns them with the cursor to
    /// pass next and whether more remain. Changes pushed by `device_id` itself are skipped (the app already has
    /// them), though the cursor moves past them.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
    /// let mut cursor = client.load_cursor(device)?;
    /// loop {
    ///     let (changes, next, has_more) = client.pull(device, cursor).await?;
    ///     for change in changes { /* apply to the local store */ }
    ///     cursor = next;
    ///     client.save_cursor(device, cursor)?;
    ///     if !has_more { break; }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn pull(&self, device_id: Uuid, cursor: u64) -> Result<(Vec<ChangeEntry>, u64, bool)> {
        let session = self.require_session()?;
        let keys = self.keys()?;
        let req = PullRequest { cursor, limit: Some(MAX_PULL_LIMIT) };
        let page: PullResponse = self.call(Method::POST, "/api/sync/pull", true, Some(&req), Retry::Idempotent).await?;
        let mut changes = Vec::with_capacity(page.entries.len());
        for e in page.entries.into_iter().filter(|e| e.device_id != device_id) {
            let plaintext =
                Zeroizing::new(keys.open_entry(e.payload.as_bytes(), session.app_id, session.user_id, e.change_id)?);
            let change = serde_json::from_slice(&plaintext).map_err(|err| {
                Error::new(
                    ErrorKind::Crypto,
                    format!("entry {} decrypted to something that is not a change", e.change_id),
                )
                .with_source(err)
            })?;
            changes.push(change);
        }
        Ok((changes, page.cursor, page.has_more))
    }

    /// How many changes this user's stream holds, and its newest cursor.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
    /// let status = client.status().await?;
    /// println!("{} changes", status.change_count);
    /// # Ok(()) }
    /// ```
    pub async fn status(&self) -> Result<Status> {
        let s: StatusResponse =
            self.call::<(), _>(Method::GET, "/api/sync/status", true, None, Retry::Idempotent).await?;
        Ok(Status { change_count: s.change_count, cursor: s.cursor })
    }

    /// The cursor saved for `device_id` in the cursor store (0 when none).
    ///
    /// ```no_run
    /// # fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
    /// let cursor = client.load_cursor(device)?;
    /// # Ok(()) }
    /// ```
    pub fn load_cursor(&self, device_id: Uuid) -> Result<u64> {
        Ok(self.inner.cursor_store.load(&self.cursor_name(device_id)?)?.unwrap_or(0))
    }

    /// Saves the cursor for `device_id` in the cursor store.
    ///
    /// ```no_run
    /// # fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
    /// client.save_cursor(device, 42)?;
    /// # Ok(()) }
    /// ```
    pub fn save_cursor(&self, device_id: Uuid, cursor: u64) -> Result<()> {
        self.inner.cursor_store.save(&self.cursor_name(device_id)?, cursor)
    }

    /// Starts live sync from `cursor`: whenever another device pushes, the server says so and the returned
    /// [`LiveSync`] pulls, decrypts and hands over the new changes. It reconnects by itself after network or
    /// server loss, and pulls on an interval while no events arrive. Needs a Tokio runtime.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
    /// let mut live = client.live(device, 0);
    /// while let Some(page) = live.next().await {
    ///     println!("{} new changes, now at {}", page?.changes.len(), client.load_cursor(device)?);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn live(&self, device_id: Uuid, cursor: u64) -> LiveSync {
        self.live_with(device_id, cursor, LiveOptions::default())
    }

    /// [`live`](Self::live) with non-default options.
    ///
    /// ```no_run
    /// # fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) {
    /// let options = synckit::LiveOptions { poll_interval: std::time::Duration::from_secs(5), ..Default::default() };
    /// let live = client.live_with(device, 0, options);
    /// # }
    /// ```
    pub fn live_with(&self, device_id: Uuid, cursor: u64, options: LiveOptions) -> LiveSync {
        crate::live::start(self.clone(), device_id, cursor, options)
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

    async fn login_key(&self, email: &str, password: &str) -> Result<SecretKey> {
        let req = PreloginRequest { email: email.to_owned() };
        let pre: PreloginResponse =
            self.call(Method::POST, "/api/accounts/prelogin", false, Some(&req), Retry::Idempotent).await?;
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

    async fn server_key(&self) -> Result<Option<KeyEnvelope>> {
        match self.call::<(), KeyEnvelope>(Method::GET, "/api/sync/keys", true, None, Retry::Idempotent).await {
            Ok(key) => Ok(Some(key)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn unlock(&self, master: SecretKey) -> Result<()> {
        let account = self.key_account()?;
        self.inner.key_store.store(&account, &master)?;
        let keys = Keys::derive(&master);
        self.inner.state.write().expect("not poisoned").unlocked = Some((master, keys));
        Ok(())
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

async fn wrap(master: &SecretKey, password: &str, session: &Session) -> Result<Vec<u8>> {
    let (master, password, app, user) =
        (master.clone(), Zeroizing::new(password.to_owned()), session.app_id, session.user_id);
    blocking(move || crypto::wrap_master_key(&master, &password, app, user)).await
}

async fn unwrap(envelope: &[u8], password: &str, session: &Session) -> Result<SecretKey> {
    let (envelope, password, app, user) =
        (envelope.to_vec(), Zeroizing::new(password.to_owned()), session.app_id, session.user_id);
    blocking(move || crypto::unwrap_master_key(&envelope, &password, app, user)).await
}
