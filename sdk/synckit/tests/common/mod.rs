//! A real server in this process for the SDK tests, on either engine.
#![allow(dead_code)] // each test binary uses its own part

use std::net::SocketAddr;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use synckit::keystore::MemoryKeyStore;
use synckit::{SyncKitClient, SyncKitConfig};
use synckit_server::{Engines, Server, Settings, admin};
use tokio::net::TcpListener;

/// Emits each listed test twice: on the embedded default and on Postgres.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::TestServer::embedded().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::TestServer::postgres().await).await
                }
            )*
        }
    };
}

/// Emits each listed test twice: blobs in the embedded local-disk store, and in the test Garage (S3). Each test
/// takes the [`BlobStore`] and starts its server with [`TestServer::with_blobs`].
#[macro_export]
macro_rules! on_both_blob_stores {
    ($($name:ident),* $(,)?) => {
        mod local_disk {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::BlobStore::LocalDisk).await
                }
            )*
        }
        mod garage {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::BlobStore::Garage).await
                }
            )*
        }
    };
}

/// Where a test server keeps blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobStore {
    /// The embedded default: `blobs/` in the data directory, behind URLs the server serves itself.
    LocalDisk,
    /// The test Garage S3 server (`ops/ensure-garage`).
    Garage,
}

pub struct TestServer {
    pub addr: SocketAddr,
    /// Dropping it (or sending) shuts the server down gracefully.
    pub shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub url: String,
    pub api_key: String,
    pub engines: Engines,
    pub database_url: Option<String>,
    pub data_dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn embedded() -> Self {
        Self::start(None).await
    }

    pub async fn postgres() -> Self {
        Self::start(Some(synckit_testkit::fresh_database().await.expect("a test database"))).await
    }

    async fn start(database_url: Option<String>) -> Self {
        Self::start_with(database_url, None, "127.0.0.1:0".parse().unwrap(), tempfile::tempdir().unwrap(), None).await
    }

    /// An embedded server keeping its blobs in `store`. For Garage, the server signs URLs for `s3_endpoint` when
    /// given (a proxy in front of Garage), else for Garage itself.
    pub async fn with_blobs(store: BlobStore, s3_endpoint: Option<String>) -> Self {
        Self::with_blob_settings(store, s3_endpoint, |s| s).await
    }

    /// [`with_blobs`](Self::with_blobs) with other settings adjusted by `adjust`.
    pub async fn with_blob_settings(
        store: BlobStore,
        s3_endpoint: Option<String>,
        adjust: impl FnOnce(Settings) -> Settings,
    ) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let mut settings = adjust(Settings { data_dir: data_dir.path().to_owned(), ..Settings::default() });
        if store == BlobStore::Garage {
            let s3 = synckit_testkit::garage().await.expect("the test Garage: run ops/ensure-garage");
            settings.s3_endpoint = Some(s3_endpoint.unwrap_or(s3.endpoint));
            settings.s3_region = s3.region;
            settings.s3_bucket = Some(s3.bucket);
            settings.s3_access_key_id = Some(s3.access_key_id);
            settings.s3_secret_access_key = Some(SecretString::from(s3.secret_access_key));
        }
        Self::launch(settings, "127.0.0.1:0".parse().unwrap(), data_dir, None).await
    }

    /// A server on `addr` with its data in `data_dir`, commit notices through `nats_url` if given, and the app of
    /// `api_key` (a new app when `None`).
    pub async fn start_with(
        database_url: Option<String>,
        nats_url: Option<String>,
        addr: SocketAddr,
        data_dir: tempfile::TempDir,
        api_key: Option<String>,
    ) -> Self {
        let settings = Settings {
            data_dir: data_dir.path().to_owned(),
            database_url: database_url.map(SecretString::from),
            nats_url,
            ..Settings::default()
        };
        Self::launch(settings, addr, data_dir, api_key).await
    }

    /// A server with `settings` on `addr`, and the app of `api_key` (a new app when `None`).
    async fn launch(
        settings: Settings,
        addr: SocketAddr,
        data_dir: tempfile::TempDir,
        api_key: Option<String>,
    ) -> Self {
        let database_url = settings.database_url.as_ref().map(|url| url.expose_secret().to_owned());
        let server = Server::build(&settings).await.expect("server");
        let engines = server.engines.clone();
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run(listener, async {
            let _ = rx.await;
        }));
        let api_key = match api_key {
            Some(key) => key,
            None => admin::create_app(&engines, "SDK tests").await.unwrap().api_key,
        };
        Self { addr, shutdown: Some(tx), url: format!("http://{addr}"), api_key, engines, database_url, data_dir }
    }

    /// A client with its own in-memory key store: a separate device.
    pub fn client(&self) -> SyncKitClient {
        self.client_with(&self.url, Arc::new(MemoryKeyStore::default()))
    }

    /// A client on `url` keeping keys in `keys` (share it to model one device restarting).
    pub fn client_with(&self, url: &str, keys: Arc<MemoryKeyStore>) -> SyncKitClient {
        let dir = tempfile::tempdir().unwrap().keep();
        SyncKitClient::new(SyncKitConfig::new(url, &self.api_key).key_store(keys).data_dir(dir).max_retries(3))
    }

    /// Runs SQL against the server's database, whichever engine it is.
    pub async fn execute(&self, sql: &str) {
        match &self.database_url {
            Some(url) => {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(conn);
                client.batch_execute(sql).await.unwrap();
            }
            None => {
                let conn = rusqlite::Connection::open(self.data_dir.path().join("synckit.db")).unwrap();
                conn.execute_batch(sql).unwrap();
            }
        }
    }

    /// Everything the server stored, as bytes to search: every table's rows as text on Postgres (binary columns
    /// as hex), the database files on SQLite.
    pub async fn stored_bytes(&self) -> Vec<u8> {
        match &self.database_url {
            Some(url) => {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(conn);
                let tables =
                    client.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", &[]).await.unwrap();
                let mut all = Vec::new();
                for t in tables {
                    let name: String = t.get(0);
                    for row in client.query(&format!("SELECT t::text FROM \"{name}\" t"), &[]).await.unwrap() {
                        all.extend(row.get::<_, String>(0).into_bytes());
                    }
                }
                all
            }
            None => {
                let mut all = Vec::new();
                for entry in std::fs::read_dir(self.data_dir.path()).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_file() {
                        all.extend(std::fs::read(path).unwrap());
                    }
                }
                all
            }
        }
    }
}

pub fn email() -> String {
    format!("{}@example.com", uuid::Uuid::new_v4())
}
