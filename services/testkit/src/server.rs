//! A real server in the test's process, on a real port, on the engines a test names.

use std::net::SocketAddr;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use synckit_server::secrets::{SecretSetting, SecretSettings};
use synckit_server::{Engines, Server, Settings, admin};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use uuid::Uuid;

/// The signing secret test servers use, so tests can forge tokens with it.
pub const TOKEN_SECRET: &str = "test-secret-test-secret-test-secret-0123";
/// The secret test servers sign their local blob store's URLs with.
pub const URL_SECRET: &str = "test-url-secret-test-url-secret-test-url";
/// The secret test servers key pre-login's made-up salts with.
pub const PRELOGIN_SECRET: &str = "test-prelogin-secret-test-prelogin-secret";

/// The engines a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Engine {
    /// A fresh Postgres database, or SQLite in the data directory.
    pub postgres: bool,
    /// Blobs in the test Garage, or in the data directory.
    pub garage: bool,
    /// Commit notices through the test NATS, or in process.
    pub nats: bool,
}

/// The engines by name, as [`on_each_engine!`](crate::on_each_engine) names them.
pub mod engine {
    use super::Engine;

    /// The embedded default: SQLite, blobs on local disk, notices in process.
    pub fn embedded() -> Engine {
        Engine { postgres: false, garage: false, nats: false }
    }

    /// Postgres; blobs on local disk, notices in process.
    pub fn postgres() -> Engine {
        Engine { postgres: true, ..embedded() }
    }

    /// The production storage: Postgres and the test Garage.
    pub fn garage() -> Engine {
        Engine { postgres: true, garage: true, nats: false }
    }

    /// Every production engine: Postgres, Garage and NATS.
    pub fn production() -> Engine {
        Engine { postgres: true, garage: true, nats: true }
    }
}

/// The test NATS (`ops/ensure-nats`).
pub const NATS_URL: &str = "nats://127.0.0.1:4222";

impl Engine {
    /// Settings for a server on these engines with its files in `data_dir`: a fresh database, the test Garage and
    /// NATS as named, and the secrets [`TOKEN_SECRET`], [`URL_SECRET`] and [`PRELOGIN_SECRET`], which Postgres
    /// requires.
    pub async fn settings(self, data_dir: &Path) -> Settings {
        let mut settings = Settings {
            data_dir: data_dir.to_owned(),
            secrets: SecretSettings {
                token: secret(TOKEN_SECRET),
                url: secret(URL_SECRET),
                prelogin: secret(PRELOGIN_SECRET),
            },
            ..Settings::default()
        };
        if self.postgres {
            let url = crate::fresh_database().await.expect("a test database");
            settings.database.url = Some(url.into());
        }
        if self.garage {
            settings.s3 = Some(crate::garage().await.expect("the test Garage"));
        }
        if self.nats {
            settings.nats_url = Some(NATS_URL.to_owned());
        }
        settings
    }
}

/// A secret setting with `value` and nothing else.
pub fn secret(value: &str) -> SecretSetting {
    SecretSetting { value: Some(SecretString::from(value)), ..SecretSetting::default() }
}

/// A running server and an app registered on it. Dropping it shuts the server down.
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    /// `http://` and the address.
    pub url: String,
    pub http: reqwest::Client,
    pub engines: Engines,
    pub api_key: String,
    pub app_id: Uuid,
    /// What the server was started with.
    pub settings: Settings,
    pub data_dir: tempfile::TempDir,
    /// Sending (or dropping) shuts the server down gracefully.
    pub shutdown: Option<oneshot::Sender<()>>,
}

impl TestServer {
    /// A server on `engine`.
    pub async fn start(engine: Engine) -> Self {
        Self::start_with(engine, |_| {}).await
    }

    /// A server on `engine` with settings adjusted by `adjust`.
    pub async fn start_with(engine: Engine, adjust: impl FnOnce(&mut Settings)) -> Self {
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let mut settings = engine.settings(data_dir.path()).await;
        adjust(&mut settings);
        Self::launch(settings, data_dir, "127.0.0.1:0".parse().unwrap(), None).await
    }

    /// A second instance of this deployment: the same database, bus, store and app, its own port and directory.
    pub async fn another_instance(&self) -> Self {
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let settings = Settings { data_dir: data_dir.path().to_owned(), ..self.settings.clone() };
        Self::launch(settings, data_dir, "127.0.0.1:0".parse().unwrap(), Some(self.app())).await
    }

    /// Stops this server, then starts it again on the same address, data and app.
    pub async fn restart(mut self) -> Self {
        let (addr, app, settings) = (self.addr, self.app(), self.settings.clone());
        let data_dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir().expect("a temporary directory"));
        self.shutdown.take().expect("a running server").send(()).expect("the server is running");
        // The listener closes as shutdown begins; wait until the address is free.
        for _ in 0..100 {
            if std::net::TcpListener::bind(addr).is_ok() {
                return Self::launch(settings, data_dir, addr, Some(app)).await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("{addr} never became free after shutdown");
    }

    /// A server with exactly `settings` on `addr`, and the app `app` (a new one when `None`).
    pub async fn launch(
        settings: Settings,
        data_dir: tempfile::TempDir,
        addr: SocketAddr,
        app: Option<(Uuid, String)>,
    ) -> Self {
        let server = Server::build(&settings).await.expect("the test server starts");
        let engines = server.engines.clone();
        let listener = TcpListener::bind(addr).await.expect("a free test port");
        let addr = listener.local_addr().expect("a bound address");
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(server.run(listener, async {
            let _ = rx.await;
        }));
        let (app_id, api_key) = match app {
            Some(app) => app,
            None => {
                let created = admin::create_app(&*engines.accounts, "Test app", &[]).await.expect("an app");
                (created.app_id, created.api_key)
            }
        };
        Self {
            addr,
            url: format!("http://{addr}"),
            http: reqwest::Client::new(),
            engines,
            api_key,
            app_id,
            settings,
            data_dir,
            shutdown: Some(tx),
        }
    }

    fn app(&self) -> (Uuid, String) {
        (self.app_id, self.api_key.clone())
    }

    /// The Postgres URL the server runs on, if it does.
    pub fn database_url(&self) -> Option<&str> {
        self.settings.database.url.as_ref().map(|url| url.expose_secret())
    }

    /// Runs SQL against the server's database, whichever engine it is.
    pub async fn execute(&self, sql: &str) {
        match self.database_url() {
            Some(url) => crate::postgres::connect(url).await.unwrap().batch_execute(sql).await.unwrap(),
            None => {
                let conn = rusqlite::Connection::open(self.data_dir.path().join("synckit.db")).unwrap();
                conn.execute_batch(sql).unwrap();
            }
        }
    }

    /// Everything the server stored, as bytes to search: every table's rows as text on Postgres (binary columns
    /// as hex), the database files on SQLite.
    pub async fn stored_bytes(&self) -> Vec<u8> {
        let mut all = Vec::new();
        match self.database_url() {
            Some(url) => {
                let client = crate::postgres::connect(url).await.unwrap();
                let tables =
                    client.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", &[]).await.unwrap();
                for t in tables {
                    let name: String = t.get(0);
                    for row in client.query(&format!("SELECT t::text FROM \"{name}\" t"), &[]).await.unwrap() {
                        all.extend(row.get::<_, String>(0).into_bytes());
                    }
                }
            }
            None => {
                for entry in std::fs::read_dir(self.data_dir.path()).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_file() {
                        all.extend(std::fs::read(path).unwrap());
                    }
                }
            }
        }
        all
    }
}

/// What [`on_each_engine!`](crate::on_each_engine) hands a test: the engine itself, or a server started on it.
pub trait FromEngine: Sized {
    fn from_engine(engine: Engine) -> impl Future<Output = Self> + Send;
}

impl FromEngine for Engine {
    async fn from_engine(engine: Engine) -> Self {
        engine
    }
}

impl FromEngine for TestServer {
    async fn from_engine(engine: Engine) -> Self {
        TestServer::start(engine).await
    }
}

/// Runs `test` with what it takes: the engine itself, or a server started on it.
pub async fn run_on<T: FromEngine, F: Future<Output = ()>>(engine: Engine, test: impl FnOnce(T) -> F) {
    test(T::from_engine(engine).await).await
}

/// Emits each listed test once per engine, in a module named after it, each with a fresh server (or the
/// [`Engine`], for a test that starts its own). Without a list, the two storage engines: `embedded` and
/// `postgres`.
///
/// ```ignore
/// on_each_engine!(push_then_pull, retries_store_nothing_twice);
/// on_each_engine!([embedded, garage] upload_then_download);
/// ```
#[macro_export]
macro_rules! on_each_engine {
    ([] $($test:ident),+ $(,)?) => {};
    ([$engine:ident $(, $rest:ident)* $(,)?] $($test:ident),+ $(,)?) => {
        mod $engine {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    $crate::server::run_on($crate::engine::$engine(), super::$test).await
                }
            )+
        }
        $crate::on_each_engine!([$($rest),*] $($test),+);
    };
    ($($test:ident),+ $(,)?) => {
        $crate::on_each_engine!([embedded, postgres] $($test),+);
    };
}
