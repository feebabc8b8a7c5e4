//! Accounts and sessions: register, sign in and out, resume a saved session, change the password.

use reqwest::Method;
use synckit_protocol::accounts::{AuthRequest, AuthResponse, ChangePasswordRequest, RegisterRequest, RegisterResponse};
use synckit_protocol::keys::AppKeyRewrap;
use synckit_protocol::paths;
use uuid::Uuid;

use super::{State, check_password, derive, wrap};
use crate::SyncKitClient;
use crate::crypto::{self, KdfParams};
#[cfg(doc)]
use crate::error::ErrorKind;
use crate::error::Result;
use crate::http::Retry;
use crate::model::Session;

impl SyncKitClient {
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
            self.call(Method::POST, paths::ACCOUNTS_REGISTER, false, Some(&req), Retry::IfUnprocessed).await?;
        Ok(resp.user_id)
    }

    /// Signs in to this app, returning `(user_id, app_id)`. A wrong password is [`ErrorKind::WrongPassword`]; too
    /// many wrong ones make the server hold off new attempts for a while, which this call waits out within its
    /// total timeout ([`ErrorKind::RateLimited`] beyond it).
    ///
    /// The session's token only sets up: [`register_device`](Self::register_device) next, which switches to the
    /// device's own token.
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
        let resp: AuthResponse = self.call(Method::POST, paths::AUTH, false, Some(&req), Retry::Idempotent).await?;
        Ok(self.signed_in(Session::signed_in(resp, email)))
    }

    /// Takes the sign-in session a sign-in answered, and returns its `(user_id, app_id)`.
    pub(super) fn signed_in(&self, session: Session) -> (Uuid, Uuid) {
        let ids = (session.user_id, session.app_id);
        let mut state = self.inner.state.write().expect("not poisoned");
        // Another user's key must not stay unlocked.
        if state.session.as_ref().is_some_and(|s| (s.user_id, s.app_id) != ids) {
            state.unlocked = None;
        }
        state.session = Some(session);
        ids
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
    /// let unlocked = client.try_load_key_from_keychain().await.is_ok();
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

    /// Changes the account password, and re-wraps for it the master key of every app the account has one in
    /// (the account is shared by the apps of a deployment), in one step on the server: all change or nothing
    /// does. If another device changed a key meanwhile this fails with [`ErrorKind::Conflict`] and nothing
    /// changes. Other devices' sessions end, in every app; they sign in with the new password.
    /// The keys re-wrapped are the ones the stored envelopes prove to be the user's, under the rules of
    /// [`setup_encryption_existing`](Self::setup_encryption_existing), and the new envelopes are version 2; a
    /// version 1 envelope of another app than this client's is refused ([`ErrorKind::Crypto`]) until a device of
    /// that app has unlocked once and so upgraded it.
    ///
    /// It also ends the account's recovery key, so that one set by whoever learned the old password stops working:
    /// make a new one afterwards ([`create_recovery_key`](Self::create_recovery_key)).
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
        let mut keys = Vec::new();
        for (app_id, version, master) in self.account_keys(&session, current).await? {
            let envelope = wrap(&master, new, app_id, session.user_id).await?;
            keys.push(AppKeyRewrap { app_id, envelope: envelope.into(), expected_version: version });
        }
        let salt: [u8; crypto::SALT_BYTES] = crypto::random_bytes();
        let login_key = derive(new, salt.to_vec(), KdfParams::DEFAULT).await?;
        let req = ChangePasswordRequest {
            current_login_key: current_login_key.as_bytes().to_vec().into(),
            salt: salt.to_vec().into(),
            login_key: login_key.as_bytes().to_vec().into(),
            keys,
        };
        // The answer is a token of the same kind (a device's, when the session has one).
        let resp: AuthResponse =
            self.call(Method::POST, paths::ACCOUNTS_PASSWORD, true, Some(&req), Retry::IfUnprocessed).await?;
        let mut state = self.inner.state.write().expect("not poisoned");
        if let Some(s) = state.session.as_mut() {
            s.token = resp.token;
            s.expires_at = resp.expires_at;
        }
        Ok(())
    }
}
