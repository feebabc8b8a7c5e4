//! The SDK client for a profile, and resuming the login a profile saved.

use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use synckit::cursor::FileCursorStore;
use synckit::keystore::{FileKeyStore, KeyStore, default_key_store};
use synckit::{ErrorKind, SyncKitClient, SyncKitConfig};

use crate::Globals;
use crate::password;
use crate::profile::{Profile, ProfileDir};

/// Where the server is when neither a flag, the environment nor a profile says.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

pub const NOT_LOGGED_IN: &str = "not logged in: run synckit login EMAIL (or synckit login --browser)";

/// A client keeping its key and cursors in the profile, so profiles never share either.
pub fn client(dir: &ProfileDir, server: &str, api_key: &str, keychain: bool) -> SyncKitClient {
    SyncKitClient::new(config(dir, server, api_key, keychain))
}

/// The configuration of [`client`].
pub fn config(dir: &ProfileDir, server: &str, api_key: &str, keychain: bool) -> SyncKitConfig {
    let keys: Arc<dyn KeyStore> =
        if keychain { default_key_store(&dir.keys_dir()) } else { Arc::new(FileKeyStore::new(dir.keys_dir())) };
    SyncKitConfig::new(server, api_key)
        .key_store(keys)
        .cursor_store(Arc::new(FileCursorStore::new(dir.cursors_file())))
        .data_dir(dir.path())
}

/// A profile's saved login, resumed.
#[derive(Debug)]
pub struct LoggedIn {
    pub client: SyncKitClient,
    pub dir: ProfileDir,
    pub profile: Profile,
}

impl LoggedIn {
    /// Resumes the profile's login for a command that talks to its server.
    pub fn open(globals: &Globals) -> Result<Self> {
        let this = Self::open_any(globals)?;
        // A session belongs to one server and app: sending it elsewhere would fail, or act on another app.
        if let Some(server) = &globals.server
            && server.trim_end_matches('/') != this.profile.server.trim_end_matches('/')
        {
            bail!(
                "this profile is logged in to {}, not {server}: run synckit login EMAIL to switch, or use another \
                 --profile",
                this.profile.server
            );
        }
        if let (Some(key), Some(saved)) = (&globals.api_key, &this.profile.api_key)
            && key != saved
        {
            bail!("this profile is logged in with another API key: run synckit login EMAIL to switch apps");
        }
        Ok(this)
    }

    /// Resumes the profile's login wherever it points, for logout, which only forgets.
    pub fn open_any(globals: &Globals) -> Result<Self> {
        let dir = globals.profile_dir()?;
        let profile = dir.load()?.ok_or_else(|| anyhow!(NOT_LOGGED_IN))?;
        let api_key = profile.api_key.as_deref().unwrap_or_default();
        let client = client(&dir, &profile.server, api_key, profile.keychain);
        client.restore_session(profile.session.clone());
        Ok(Self { client, dir, profile })
    }

    /// Unlocks the key from the key store, or with the password where the store lost it (a wiped keychain).
    /// Only push and pull call this: the other commands need no key, so they never ask for a password.
    pub async fn unlock(&self) -> Result<()> {
        match self.client.try_load_key_from_keychain().await {
            Err(e) if e.kind() == ErrorKind::Locked => {
                let password = password::current(&self.profile.session.email)?;
                Ok(self.client.setup_encryption_existing(&password).await?)
            }
            loaded => Ok(loaded?),
        }
    }

    /// Turns the SDK's "sign in again" into the command that does it.
    pub fn explain(&self, err: anyhow::Error) -> anyhow::Error {
        match err.downcast_ref::<synckit::Error>() {
            Some(e) if e.code() == Some(synckit::ErrorCode::DeviceRemoved) => anyhow!(
                "this profile's device {} ({}) was deleted: run synckit login {} to register it again",
                self.profile.device_name,
                self.profile.device_id,
                self.profile.session.email
            ),
            Some(e) if e.kind() == ErrorKind::Unauthorized => anyhow!(
                "the session has ended (it expired, or the password was changed): run synckit login {}",
                self.profile.session.email
            ),
            _ => err,
        }
    }
}
