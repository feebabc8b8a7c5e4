//! Client configuration.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cursor::CursorStore;
use crate::keystore::KeyStore;
use crate::outbox::OutboxStore;

/// How a [`SyncKitClient`](crate::SyncKitClient) reaches its server and where it keeps keys, cursors and its
/// outbox.
///
/// Fill in the two required fields and take the defaults for the rest:
///
/// ```
/// use synckit::SyncKitConfig;
/// let config = SyncKitConfig {
///     server_url: "https://sync.example.com".into(),
///     api_key: "sk_…".into(),
///     ..Default::default()
/// };
/// assert_eq!(config.max_retries, 4);
/// ```
///
/// or build it:
///
/// ```
/// use std::time::Duration;
/// use synckit::SyncKitConfig;
/// let config = SyncKitConfig::new("https://sync.example.com", "sk_…")
///     .attempt_timeout(Duration::from_secs(10))
///     .max_retries(2)
///     .key_store(std::sync::Arc::new(synckit::keystore::MemoryKeyStore::default()));
/// ```
#[derive(Clone, Debug)]
pub struct SyncKitConfig {
    /// The server's base URL, e.g. `https://sync.example.com`.
    pub server_url: String,
    /// The app's API key, from `synckit-server admin create-app`.
    pub api_key: String,
    /// One HTTP attempt may take this long (default 30 s).
    pub attempt_timeout: Duration,
    /// A call, retries and back-off included, may take this long (default 2 min).
    pub total_timeout: Duration,
    /// Retries after the first attempt, for what is safe to retry (default 4).
    pub max_retries: u32,
    /// Where unlocked master keys are cached; `None` picks the OS keychain, or files under `data_dir` where no
    /// keychain answers.
    pub key_store: Option<Arc<dyn KeyStore>>,
    /// Where pull cursors are kept; `None` keeps them in a file under `data_dir`.
    pub cursor_store: Option<Arc<dyn CursorStore>>,
    /// Where enqueued changes wait for the server; `None` keeps them in a SQLite database under `data_dir`
    /// (`outbox.sqlite3`).
    pub outbox_store: Option<Arc<dyn OutboxStore>>,
    /// The SDK's own files (fallback key store, cursors, outbox); `None` is the platform's data directory plus
    /// `synckit` (`$XDG_DATA_HOME/synckit`, `~/.local/share/synckit`).
    pub data_dir: Option<PathBuf>,
    /// The app's OAuth client id (`cid_…`), for signing in through the browser; `None` asks the server for the one
    /// of [`api_key`](Self::api_key), once per client.
    pub oauth_client_id: Option<String>,
    /// How long a sign-in through the browser waits for the browser to come back before it stops (default 5 min).
    pub sign_in_timeout: Duration,
}

impl Default for SyncKitConfig {
    fn default() -> Self {
        Self {
            server_url: "http://127.0.0.1:8080".into(),
            api_key: String::new(),
            attempt_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(120),
            max_retries: 4,
            key_store: None,
            cursor_store: None,
            outbox_store: None,
            data_dir: None,
            oauth_client_id: None,
            sign_in_timeout: Duration::from_secs(300),
        }
    }
}

impl SyncKitConfig {
    /// A configuration for this server and app, with defaults for the rest.
    ///
    /// ```
    /// let config = synckit::SyncKitConfig::new("https://sync.example.com", "sk_…");
    /// assert_eq!(config.server_url, "https://sync.example.com");
    /// assert!(config.key_store.is_none());
    /// ```
    pub fn new(server_url: impl Into<String>, api_key: impl Into<String>) -> Self {
        Self { server_url: server_url.into(), api_key: api_key.into(), ..Self::default() }
    }

    /// Sets [`SyncKitConfig::attempt_timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = synckit::SyncKitConfig::default().attempt_timeout(Duration::from_secs(5));
    /// assert_eq!(config.attempt_timeout, Duration::from_secs(5));
    /// ```
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Sets [`SyncKitConfig::total_timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = synckit::SyncKitConfig::default().total_timeout(Duration::from_secs(60));
    /// assert_eq!(config.total_timeout, Duration::from_secs(60));
    /// ```
    pub fn total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = timeout;
        self
    }

    /// Sets [`SyncKitConfig::max_retries`]; 0 makes a single attempt.
    ///
    /// ```
    /// let config = synckit::SyncKitConfig::default().max_retries(0);
    /// assert_eq!(config.max_retries, 0);
    /// ```
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Sets [`SyncKitConfig::key_store`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use synckit::keystore::MemoryKeyStore;
    /// let config = synckit::SyncKitConfig::default().key_store(Arc::new(MemoryKeyStore::default()));
    /// assert!(config.key_store.is_some());
    /// ```
    pub fn key_store(mut self, store: Arc<dyn KeyStore>) -> Self {
        self.key_store = Some(store);
        self
    }

    /// Sets [`SyncKitConfig::cursor_store`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use synckit::cursor::MemoryCursorStore;
    /// let config = synckit::SyncKitConfig::default().cursor_store(Arc::new(MemoryCursorStore::default()));
    /// assert!(config.cursor_store.is_some());
    /// ```
    pub fn cursor_store(mut self, store: Arc<dyn CursorStore>) -> Self {
        self.cursor_store = Some(store);
        self
    }

    /// Sets [`SyncKitConfig::outbox_store`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use synckit::outbox::MemoryOutboxStore;
    /// let config = synckit::SyncKitConfig::default().outbox_store(Arc::new(MemoryOutboxStore::default()));
    /// assert!(config.outbox_store.is_some());
    /// ```
    pub fn outbox_store(mut self, store: Arc<dyn OutboxStore>) -> Self {
        self.outbox_store = Some(store);
        self
    }

    /// Sets [`SyncKitConfig::data_dir`].
    ///
    /// ```
    /// let config = synckit::SyncKitConfig::default().data_dir("/var/lib/myapp/synckit");
    /// assert_eq!(config.data_dir.as_deref(), Some(std::path::Path::new("/var/lib/myapp/synckit")));
    /// ```
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Sets [`SyncKitConfig::oauth_client_id`].
    ///
    /// ```
    /// let config = synckit::SyncKitConfig::default().oauth_client_id("cid_…");
    /// assert_eq!(config.oauth_client_id.as_deref(), Some("cid_…"));
    /// ```
    pub fn oauth_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.oauth_client_id = Some(client_id.into());
        self
    }

    /// Sets [`SyncKitConfig::sign_in_timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = synckit::SyncKitConfig::default().sign_in_timeout(Duration::from_secs(120));
    /// assert_eq!(config.sign_in_timeout, Duration::from_secs(120));
    /// ```
    pub fn sign_in_timeout(mut self, timeout: Duration) -> Self {
        self.sign_in_timeout = timeout;
        self
    }

    pub(crate) fn resolved_data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        let base = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("synckit")
    }
}
