//! A real server in this process for the SDK tests, on either engine.
#![allow(dead_code)] // each test binary uses its own part

use std::net::SocketAddr;
use std::sync::Arc;

use secrecy::SecretString;
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
            database_url: database_url.clone().map(SecretString::from),
            nats_url,
            ..Settings::default()
        };
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
