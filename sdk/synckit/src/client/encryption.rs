//! Encryption set-up: create the user's master key, unlock it with the password or from the key store.

use reqwest::Method;
use synckit_protocol::keys::{PutKeyRequest, PutKeyResponse};
use synckit_protocol::paths;

use super::{Opened, check_password, wrap};
use crate::SyncKitClient;
use crate::crypto::{Keys, SecretKey};
use crate::error::{Error, ErrorKind, Result};
use crate::http::Retry;
use crate::task::internal;

impl SyncKitClient {
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
        let envelope = wrap(&master, password, session.app_id, session.user_id).await?;
        let req = PutKeyRequest { envelope: envelope.into(), expected_version: None };
        let put: Result<PutKeyResponse> =
            self.call(Method::PUT, paths::KEYS, true, Some(&req), Retry::IfUnprocessed).await;
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
    /// The key is adopted only if the server's envelope proves it is the user's: a version 2 envelope whose key
    /// check passes. An envelope asking for key derivation parameters SyncKit never uses is refused before any
    /// derivation. A version 1 envelope (written by SDKs before version 2 existed, and exactly what a hostile
    /// server could forge with the login key it receives) is accepted only on a device that already holds the
    /// key (unlocked, or in the key store) and only if it holds that same key; that device then re-wraps the key
    /// as version 2, so the account's other devices can unlock. On a device without the key, a version 1 envelope
    /// is [`ErrorKind::Crypto`], as is any envelope SyncKit did not make; nothing is stored then.
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
        let master = match self.open_envelope(&stored.envelope.0, password, session.app_id, session.user_id).await? {
            Opened::Current(master) => master,
            Opened::Legacy(master) => {
                let envelope = wrap(&master, password, session.app_id, session.user_id).await?;
                let req = PutKeyRequest { envelope: envelope.into(), expected_version: Some(stored.version) };
                let put: Result<PutKeyResponse> =
                    self.call(Method::PUT, paths::KEYS, true, Some(&req), Retry::IfUnprocessed).await;
                match put {
                    // Another device replaced the envelope meanwhile (its own upgrade, or a password change):
                    // that one stands, and this device keeps the key it confirmed.
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::Conflict => {}
                    Err(e) => return Err(e),
                }
                master
            }
        };
        self.unlock(master)
    }

    /// Unlocks from the key store (OS keychain) without the password, if this device unlocked before. When no key is
    /// cached for this account here, fails with [`ErrorKind::Locked`] and changes nothing; a key store that cannot
    /// be read is [`ErrorKind::Keystore`]. Either way the app goes on to ask for the password, so the app start-up
    /// reads:
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, ask_password: impl Fn() -> String) -> synckit::Result<()> {
    /// if client.try_load_key_from_keychain().await.is_ok() {
    ///     // ready
    /// } else if client.has_server_key().await? {
    ///     client.setup_encryption_existing(&ask_password()).await?; // asked once; cached from now on
    /// } else {
    ///     client.setup_encryption_new(&ask_password()).await?; // the account's first device
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn try_load_key_from_keychain(&self) -> Result<()> {
        let account = self.key_account()?;
        let store = self.inner.key_store.clone();
        let loaded = tokio::task::spawn_blocking(move || store.load(&account))
            .await
            .map_err(|e| internal("the key store task", e))??;
        let master = loaded.ok_or_else(|| {
            Error::new(
                ErrorKind::Locked,
                "no key is cached for this account on this device: unlock with setup_encryption_existing (or \
                 setup_encryption_new on the account's first device)",
            )
        })?;
        let keys = Keys::derive(&master);
        self.inner.state.write().expect("not poisoned").unlocked = Some((master, keys));
        Ok(())
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
}
