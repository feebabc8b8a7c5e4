//! Where an unlocked master key is kept between runs, so the password is needed once per device.
//!
//! - [`KeychainStore`] (feature `keychain`, on by default): the OS keychain through keyring-core: the macOS
//!   Keychain, the Windows Credential Manager, the Secret Service on Linux desktops.
//! - [`FileKeyStore`]: a file per key in a directory, readable by its owner only (mode 0600), for headless boxes
//!   and CI where no keychain runs. The key is as safe as that account and disk: use it where that is acceptable.
//! - [`MemoryKeyStore`]: for tests, and for apps that want the password at every start.
//!
//! [`default_key_store`] picks the keychain when one answers and the file store otherwise.
//!
//! ```
//! use std::sync::Arc;
//! use synckit::{SyncKitConfig, keystore::MemoryKeyStore};
//! // Ask for the password at every start: keep the unlocked key in memory only.
//! let config = SyncKitConfig::new("https://sync.example.com", "sk_…").key_store(Arc::new(MemoryKeyStore::default()));
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

use crate::crypto::SecretKey;
use crate::error::{Error, ErrorKind, Result};

/// Stores master keys by account name (one per server, app and user). Implement it to keep keys elsewhere and
/// pass it to [`SyncKitConfig::key_store`](crate::SyncKitConfig::key_store).
///
/// ```
/// use std::sync::Arc;
/// use synckit::keystore::{FileKeyStore, KeyStore};
/// let dir = tempfile::tempdir().unwrap();
/// let store: Arc<dyn KeyStore> = Arc::new(FileKeyStore::new(dir.path()));
/// let config = synckit::SyncKitConfig::new("https://sync.example.com", "sk_…").key_store(store);
/// ```
pub trait KeyStore: Send + Sync + std::fmt::Debug {
    /// The key stored under `account`, if any.
    ///
    /// ```
    /// use synckit::keystore::{KeyStore, MemoryKeyStore};
    /// assert!(MemoryKeyStore::default().load("nobody").unwrap().is_none());
    /// ```
    fn load(&self, account: &str) -> Result<Option<SecretKey>>;
    /// Stores (or replaces) the key under `account`.
    ///
    /// ```
    /// use synckit::{crypto::SecretKey, keystore::{KeyStore, MemoryKeyStore}};
    /// let (store, key) = (MemoryKeyStore::default(), SecretKey::generate());
    /// store.store("me", &SecretKey::generate()).unwrap();
    /// store.store("me", &key).unwrap();
    /// assert_eq!(store.load("me").unwrap(), Some(key));
    /// ```
    fn store(&self, account: &str, key: &SecretKey) -> Result<()>;
    /// Forgets the key under `account`; forgetting a missing key is not an error.
    ///
    /// ```
    /// use synckit::{crypto::SecretKey, keystore::{KeyStore, MemoryKeyStore}};
    /// let store = MemoryKeyStore::default();
    /// store.store("me", &SecretKey::generate()).unwrap();
    /// store.delete("me").unwrap();
    /// store.delete("me").unwrap();
    /// assert!(store.load("me").unwrap().is_none());
    /// ```
    fn delete(&self, account: &str) -> Result<()>;
}

fn keystore_error(message: impl Into<String>, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::new(ErrorKind::Keystore, message).with_source(source)
}

/// Keys in memory, gone when the process ends.
///
/// ```
/// use synckit::keystore::{KeyStore, MemoryKeyStore};
/// use synckit::crypto::SecretKey;
/// let store = MemoryKeyStore::default();
/// store.store("me", &SecretKey::generate()).unwrap();
/// assert!(store.load("me").unwrap().is_some());
/// ```
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    keys: Mutex<HashMap<String, SecretKey>>,
}

impl KeyStore for MemoryKeyStore {
    fn load(&self, account: &str) -> Result<Option<SecretKey>> {
        Ok(self.keys.lock().expect("not poisoned").get(account).cloned())
    }

    fn store(&self, account: &str, key: &SecretKey) -> Result<()> {
        self.keys.lock().expect("not poisoned").insert(account.to_owned(), key.clone());
        Ok(())
    }

    fn delete(&self, account: &str) -> Result<()> {
        self.keys.lock().expect("not poisoned").remove(account);
        Ok(())
    }
}

/// One owner-only file per key under a directory.
///
/// ```
/// use synckit::keystore::{FileKeyStore, KeyStore};
/// use synckit::crypto::SecretKey;
/// let dir = tempfile::tempdir().unwrap();
/// let store = FileKeyStore::new(dir.path());
/// let key = SecretKey::generate();
/// store.store("https://sync.example|app|user", &key).unwrap();
/// assert_eq!(store.load("https://sync.example|app|user").unwrap(), Some(key));
/// ```
#[derive(Debug, Clone)]
pub struct FileKeyStore {
    dir: PathBuf,
}

impl FileKeyStore {
    /// A store in `dir` (created on first write).
    ///
    /// ```
    /// use synckit::{crypto::SecretKey, keystore::{FileKeyStore, KeyStore}};
    /// let dir = tempfile::tempdir().unwrap();
    /// FileKeyStore::new(dir.path().join("keys")).store("me", &SecretKey::generate()).unwrap();
    /// assert!(dir.path().join("keys").is_dir());
    /// ```
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, account: &str) -> PathBuf {
        // Account names hold URLs: hex keeps file names portable.
        let name: String = account.bytes().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}.key"))
    }
}

impl KeyStore for FileKeyStore {
    fn load(&self, account: &str) -> Result<Option<SecretKey>> {
        match std::fs::read(self.path(account)) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                SecretKey::from_bytes(&bytes).map(Some).map_err(|e| keystore_error("a stored key file is damaged", e))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(keystore_error("cannot read the key file", e)),
        }
    }

    fn store(&self, account: &str, key: &SecretKey) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| keystore_error("cannot create the key directory", e))?;
        crate::fs::write_atomic(&self.path(account), key.as_bytes())
            .map_err(|e| keystore_error("cannot write the key file", e))
    }

    fn delete(&self, account: &str) -> Result<()> {
        match std::fs::remove_file(self.path(account)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(keystore_error("cannot delete the key file", e)),
            _ => Ok(()),
        }
    }
}

/// The OS keychain, through keyring-core.
///
/// ```
/// use synckit::{ErrorKind, keystore::KeychainStore};
/// // Headless machines and CI often have no keychain running: fall back as `default_key_store` does.
/// match KeychainStore::open() {
///     Ok(store) => println!("using {store:?}"),
///     Err(e) => assert_eq!(e.kind(), ErrorKind::Keystore),
/// }
/// ```
#[cfg(feature = "keychain")]
#[derive(Clone)]
pub struct KeychainStore {
    store: Arc<keyring_core::CredentialStore>,
}

#[cfg(feature = "keychain")]
impl std::fmt::Debug for KeychainStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeychainStore")
    }
}

#[cfg(feature = "keychain")]
const KEYCHAIN_SERVICE: &str = "synckit";

#[cfg(feature = "keychain")]
impl KeychainStore {
    /// The platform's keychain, if this build has one and it answers; [`ErrorKind::Keystore`] otherwise.
    ///
    /// ```
    /// let keychain_available = synckit::keystore::KeychainStore::open().is_ok();
    /// ```
    pub fn open() -> Result<Self> {
        let store = platform_store()?;
        // A Secret Service that is not running fails here rather than at the first unlock.
        let probe = keyring_core::Entry::new_in_store(&store, KEYCHAIN_SERVICE, "synckit-probe")
            .map_err(|e| keystore_error("the keychain is not usable", e))?;
        match probe.get_secret() {
            Ok(_) | Err(keyring_core::Error::NoEntry) => Ok(Self { store }),
            Err(e) => Err(keystore_error("the keychain is not usable", e)),
        }
    }

    fn entry(&self, account: &str) -> Result<keyring_core::Entry> {
        keyring_core::Entry::new_in_store(&self.store, KEYCHAIN_SERVICE, account)
            .map_err(|e| keystore_error("cannot address the keychain entry", e))
    }
}

#[cfg(all(feature = "keychain", target_os = "linux"))]
fn platform_store() -> Result<Arc<keyring_core::CredentialStore>> {
    Ok(dbus_secret_service_keyring_store::Store::new().map_err(|e| keystore_error("no Secret Service", e))?)
}

#[cfg(all(feature = "keychain", target_os = "macos"))]
fn platform_store() -> Result<Arc<keyring_core::CredentialStore>> {
    Ok(apple_native_keyring_store::keychain::Store::new().map_err(|e| keystore_error("no keychain", e))?)
}

#[cfg(all(feature = "keychain", target_os = "windows"))]
fn platform_store() -> Result<Arc<keyring_core::CredentialStore>> {
    Ok(windows_native_keyring_store::Store::new().map_err(|e| keystore_error("no credential manager", e))?)
}

#[cfg(all(feature = "keychain", not(any(target_os = "linux", target_os = "macos", target_os = "windows"))))]
fn platform_store() -> Result<Arc<keyring_core::CredentialStore>> {
    Err(Error::new(ErrorKind::Keystore, "no keychain support for this platform"))
}

#[cfg(feature = "keychain")]
impl KeyStore for KeychainStore {
    fn load(&self, account: &str) -> Result<Option<SecretKey>> {
        match self.entry(account)?.get_secret() {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                SecretKey::from_bytes(&bytes).map(Some).map_err(|e| keystore_error("a keychain key is damaged", e))
            }
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(keystore_error("cannot read the keychain", e)),
        }
    }

    fn store(&self, account: &str, key: &SecretKey) -> Result<()> {
        self.entry(account)?.set_secret(key.as_bytes()).map_err(|e| keystore_error("cannot write the keychain", e))
    }

    fn delete(&self, account: &str) -> Result<()> {
        match self.entry(account)?.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(e) => Err(keystore_error("cannot delete from the keychain", e)),
        }
    }
}

/// The OS keychain when one answers, otherwise a [`FileKeyStore`] in `fallback_dir`.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let store = synckit::keystore::default_key_store(&dir.path().join("keys"));
/// let config = synckit::SyncKitConfig::new("https://sync.example.com", "sk_…").key_store(store);
/// ```
pub fn default_key_store(fallback_dir: &Path) -> Arc<dyn KeyStore> {
    #[cfg(feature = "keychain")]
    match KeychainStore::open() {
        Ok(store) => return Arc::new(store),
        Err(e) => tracing::info!(error = %e, dir = %fallback_dir.display(), "no OS keychain; keeping keys in files"),
    }
    Arc::new(FileKeyStore::new(fallback_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_store_round_trips_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileKeyStore::new(dir.path().join("keys"));
        assert_eq!(store.load("a").unwrap(), None);
        let key = SecretKey::generate();
        store.store("a", &key).unwrap();
        assert_eq!(store.load("a").unwrap(), Some(key));
        assert_eq!(store.load("b").unwrap(), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path("a")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        store.delete("a").unwrap();
        store.delete("a").unwrap();
        assert_eq!(store.load("a").unwrap(), None);

        std::fs::write(store.path("c"), b"short").unwrap();
        assert_eq!(store.load("c").unwrap_err().kind(), ErrorKind::Keystore);
    }
}
