//! The recovery key: make one while the password is known, and recover with it once the password is forgotten.

use reqwest::Method;
use synckit_protocol::accounts::AuthResponse;
use synckit_protocol::keys::AppKeyRewrap;
use synckit_protocol::paths;
use synckit_protocol::recovery::{
    RecoverRequest, RecoveredKey, RecoveryRequest, RecoveryResponse, SetRecoveryKeyRequest, SetRecoveryKeyResponse,
};
use uuid::Uuid;

use super::{check_password, derive, wrap};
use crate::SyncKitClient;
use crate::crypto::{self, KdfParams, RecoveryKey, SecretKey, open_recovery_envelope, seal_recovery_envelope};
use crate::error::{Error, ErrorKind, Result};
use crate::http::Retry;
use crate::model::Session;

impl SyncKitClient {
    /// Makes a new recovery key for the account and returns it, to show the user once: it is the one way back to
    /// the account's data after a forgotten password, and SyncKit keeps no copy of it. A recovery key made before
    /// stops working.
    ///
    /// `password` is the current password: the server checks it (a stolen session cannot plant a recovery key),
    /// and it opens the account's key in every app of the deployment, each of which the recovery key then opens
    /// too. A wrong one is [`ErrorKind::WrongPassword`] and changes nothing. An app that sets up its key later is
    /// not covered until a new recovery key is made; [`recover`](Self::recover) refuses to leave it behind.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
    /// let recovery_key = client.create_recovery_key("a long passphrase").await?;
    /// println!("Write this down and keep it safe: {recovery_key}");
    /// # Ok(()) }
    /// ```
    pub async fn create_recovery_key(&self, password: &str) -> Result<RecoveryKey> {
        let session = self.require_session()?;
        let current_login_key = self.login_key(&session.email, password).await?;
        let recovery_key = RecoveryKey::generate();
        let keys = self
            .account_keys(&session, password)
            .await?
            .into_iter()
            .map(|(app_id, version, master)| AppKeyRewrap {
                app_id,
                envelope: seal_recovery_envelope(&master, &recovery_key, app_id, session.user_id).into(),
                expected_version: version,
            })
            .collect();
        let req = SetRecoveryKeyRequest {
            current_login_key: current_login_key.as_bytes().to_vec().into(),
            recovery_login_key: recovery_key.login_key().as_bytes().to_vec().into(),
            keys,
        };
        // Repeating it sets the same key again: harmless.
        let _: SetRecoveryKeyResponse =
            self.call(Method::POST, paths::ACCOUNTS_RECOVERY_KEY, true, Some(&req), Retry::Idempotent).await?;
        Ok(recovery_key)
    }

    /// Recovers the account of `email` with its recovery key after a forgotten password: sets `new_password`,
    /// and signs this client in to its app and unlocks it, as [`authenticate`](Self::authenticate) and
    /// [`setup_encryption_existing`](Self::setup_encryption_existing) would (register the device next). Returns the
    /// account's new recovery key, to show the user once: the one used stops working, as does the old password,
    /// and every other session of the account ends, in every app.
    ///
    /// The recovery key opens the account's key in every app on this device, each key is wrapped for the new
    /// password and sealed under the new recovery key, and the server replaces password, recovery key and keys in
    /// one step, or nothing. A key is adopted only if its recovery envelope proves it is the user's: sealed by this
    /// recovery key for this app and user, with its key check; anything else is [`ErrorKind::Crypto`], and nothing
    /// is sent or kept.
    ///
    /// A recovery key that is not the account's (or no longer is) is [`ErrorKind::WrongRecoveryKey`]; parse it
    /// with [`str::parse`] first, which catches a typo. If an app set up its key after the recovery key was made,
    /// the recovery key cannot open it and this is [`ErrorKind::Conflict`], with nothing changed; so is a key that
    /// another device changed meanwhile (try again). A [`ErrorKind::Transport`] or [`ErrorKind::Server`] failure
    /// of the last step may hide a recovery that took place: then the new password signs in, and
    /// [`create_recovery_key`](Self::create_recovery_key) makes a recovery key again. Once the recovery took place
    /// this returns the new recovery key whatever else fails: if the key store cannot keep the key, the client
    /// holds it unlocked until it is dropped (and says so in a `tracing` warning).
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
    /// use synckit::{ErrorKind, RecoveryKey};
    /// let typed = "7KQ2-…"; // as the user typed it
    /// let recovery_key: RecoveryKey = typed.parse()?; // a typo is caught here
    /// match client.recover("ada@example.com", &recovery_key, "a new passphrase").await {
    ///     Ok(next) => println!("Signed in. Your new recovery key: {next}"),
    ///     Err(e) if e.kind() == ErrorKind::WrongRecoveryKey => eprintln!("that is not this account's recovery key"),
    ///     Err(e) => return Err(e),
    /// }
    /// client.register_device("New laptop", "linux").await?;
    /// # Ok(()) }
    /// ```
    pub async fn recover(&self, email: &str, recovery_key: &RecoveryKey, new_password: &str) -> Result<RecoveryKey> {
        check_password(new_password)?;
        let recovery_login_key = recovery_key.login_key();
        let req = RecoveryRequest {
            email: email.to_owned(),
            recovery_login_key: recovery_login_key.as_bytes().to_vec().into(),
        };
        let found: RecoveryResponse =
            self.call(Method::POST, paths::ACCOUNTS_RECOVERY, false, Some(&req), Retry::Idempotent).await?;
        let user_id = found.user_id;
        let mut masters: Vec<(Uuid, u64, SecretKey)> = Vec::with_capacity(found.keys.len());
        for key in found.keys {
            let Some(envelope) = key.recovery_envelope else {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "app {} set up its encryption key after this recovery key was made, so the recovery key \
                         cannot open it and recovering now would lose it; nothing changed",
                        key.app_id
                    ),
                ));
            };
            let master = open_recovery_envelope(&envelope.0, recovery_key, key.app_id, user_id)?;
            masters.push((key.app_id, key.version, master));
        }

        let next = RecoveryKey::generate();
        let salt: [u8; crypto::SALT_BYTES] = crypto::random_bytes();
        let login_key = derive(new_password, salt.to_vec(), KdfParams::DEFAULT).await?;
        let mut keys = Vec::with_capacity(masters.len());
        for (app_id, version, master) in &masters {
            keys.push(RecoveredKey {
                app_id: *app_id,
                envelope: wrap(master, new_password, *app_id, user_id).await?.into(),
                recovery_envelope: seal_recovery_envelope(master, &next, *app_id, user_id).into(),
                expected_version: *version,
            });
        }
        let req = RecoverRequest {
            email: email.to_owned(),
            recovery_login_key: recovery_login_key.as_bytes().to_vec().into(),
            api_key: self.inner.config.api_key.clone(),
            salt: salt.to_vec().into(),
            login_key: login_key.as_bytes().to_vec().into(),
            new_recovery_login_key: next.login_key().as_bytes().to_vec().into(),
            keys,
        };
        let resp: AuthResponse =
            self.call(Method::POST, paths::ACCOUNTS_RECOVER, false, Some(&req), Retry::IfUnprocessed).await?;
        if resp.user_id != user_id {
            return Err(Error::new(ErrorKind::Server, "the server answered the recovery for another account"));
        }
        let app_id = resp.app_id;
        {
            let mut state = self.inner.state.write().expect("not poisoned");
            state.unlocked = None;
            state.session = Some(Session::signed_in(resp, email));
        }
        // The app of this client has no key yet when the user never set one up in it: signed in, still locked.
        if let Some((_, _, master)) = masters.into_iter().find(|(app, _, _)| *app == app_id) {
            // The recovery took place: the new recovery key must reach the caller even if the key store fails, so
            // the key is held unlocked here whatever the store says.
            let keys = crypto::Keys::derive(&master);
            let kept = self.key_account().and_then(|account| self.inner.key_store.store(&account, &master));
            self.inner.state.write().expect("not poisoned").unlocked = Some((master, keys));
            if let Err(e) = kept {
                tracing::warn!(error = %e, "recovered, but the key store did not keep the key: unlocked until exit");
            }
        }
        Ok(next)
    }
}
