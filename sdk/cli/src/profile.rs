//! The profile directory: one device of one account.
//!
//! ```text
//! <profile>/profile.json   server, API key, session, device (0600, replaced atomically)
//! <profile>/keys/          the unlocked master key (the SDK's FileKeyStore, 0600 files)
//! <profile>/cursors.json   how far this device has pulled (the SDK's FileCursorStore)
//! ```
//!
//! `profile.json` exists exactly while the profile is logged in: login writes it last, logout removes it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use synckit::Session;
use uuid::Uuid;

const PROFILE_FILE: &str = "profile.json";

/// What a login leaves behind for the commands after it.
#[derive(Clone, Serialize, Deserialize)]
pub struct Profile {
    /// The server the session belongs to; later commands go there, not to a default.
    pub server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    pub session: Session,
    pub device_id: Uuid,
    pub device_name: String,
    /// Whether the key was put in the OS keychain at login. Remembered so a later command without `--keychain`
    /// does not look for it in (and, after a password prompt, write it to) the key file instead.
    #[serde(default)]
    pub keychain: bool,
}

/// Leaves out the API key (the session's own `Debug` leaves out its token).
impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("server", &self.server)
            .field("session", &self.session)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// Where a profile lives.
#[derive(Debug, Clone)]
pub struct ProfileDir {
    path: PathBuf,
}

impl ProfileDir {
    /// The given directory, else `$XDG_CONFIG_HOME/synckit/default`, else `~/.config/synckit/default`.
    pub fn resolve(explicit: Option<PathBuf>) -> Result<Self> {
        if let Some(path) = explicit {
            return Ok(Self { path });
        }
        // The XDG spec says to ignore a relative XDG_CONFIG_HOME.
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".config")))
            .context("no profile directory: set SYNCKIT_PROFILE or pass --profile DIR (HOME is not set)")?;
        Ok(Self { path: config.join("synckit").join("default") })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn keys_dir(&self) -> PathBuf {
        self.path.join("keys")
    }

    pub fn cursors_file(&self) -> PathBuf {
        self.path.join("cursors.json")
    }

    fn profile_file(&self) -> PathBuf {
        self.path.join(PROFILE_FILE)
    }

    /// The saved login, or `None` when this profile is not logged in.
    pub fn load(&self) -> Result<Option<Profile>> {
        let file = self.profile_file();
        let bytes = match std::fs::read(&file) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
        };
        let profile = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is damaged: run synckit login EMAIL to replace it", file.display()))?;
        Ok(Some(profile))
    }

    /// Saves the login atomically, readable by its owner only: a crash leaves the old file or the new one, never
    /// half of one, and never a token others can read.
    pub fn save(&self, profile: &Profile) -> Result<()> {
        self.create()?;
        let json = serde_json::to_vec_pretty(profile).expect("a profile serialises");
        let file = self.profile_file();
        synckit::fs::write_atomic(&file, &json).with_context(|| format!("cannot write {}", file.display()))
    }

    /// Forgets the login; a profile that is not logged in is left as it is.
    pub fn remove(&self) -> Result<()> {
        let file = self.profile_file();
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", file.display()))
            }
            _ => Ok(()),
        }
    }

    /// Creates the directory, private to its owner: it holds the session token and, by default, the key. Login
    /// calls this before anything writes there (the key store would create it with the default mode).
    pub fn create(&self) -> Result<()> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&self.path)
            .with_context(|| format!("cannot create the profile directory {}", self.path.display()))
    }
}
