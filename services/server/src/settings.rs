//! Configuration: defaults, then an optional TOML file (`--config` or `SYNCKIT_CONFIG`), then `SYNCKIT_*`
//! environment variables, then flags; later sources win. Secrets are [`SecretString`]s and never printed.
//!
//! Settings are grouped in sections (`database`, `secrets`, `s3`, `blob`, `events`, `sign_in`, `serve`, `push`). A file
//! writes them as TOML tables (`[blob] url_expiry_secs = 300`); the environment keeps one flat variable per
//! setting (`SYNCKIT_BLOB_URL_EXPIRY_SECS`), and [`env_key`] and [`env_var`] translate between the two. Every check of
//! a value lives in [`Settings::validate`], which names the variable to fix.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::Uncased;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use synckit_auth::ThrottleSettings;
use synckit_blob::{BlobSettings, S3Config};
use synckit_http::budget::USER_SHARE_DIVISOR;
use synckit_protocol::limits::{MAX_PULL_LIMIT, MAX_PUSH_BODY_BYTES};
use synckit_query::EventSettings;

use crate::secrets::SecretSettings;

/// Everything the server can be told.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on (`SYNCKIT_LISTEN`).
    pub listen: SocketAddr,
    /// Where the embedded default keeps its files (`SYNCKIT_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Which services this process runs (`SYNCKIT_ROLE`).
    pub role: Role,
    /// `text` for people, `json` for log collectors (`SYNCKIT_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Postgres instead of the embedded SQLite file (`SYNCKIT_DATABASE_URL`, `SYNCKIT_DB_*`).
    pub database: DatabaseSettings,
    /// `nats://…` to fan commit notices out through NATS, so query instances in other processes hear pushes
    /// (`SYNCKIT_NATS_URL`). Without it, notices stay inside this process.
    pub nats_url: Option<String>,
    /// Signing secrets, from variables or files (`SYNCKIT_TOKEN_SECRET`, `SYNCKIT_URL_SECRET`,
    /// `SYNCKIT_PRELOGIN_SECRET`, each with `_FILE` and `_PREVIOUS`). Required on Postgres; see [`crate::secrets`].
    pub secrets: SecretSettings,
    /// Anyone may sign up (`SYNCKIT_OPEN_REGISTRATION`).
    pub open_registration: bool,
    /// Blobs in S3 or an S3-compatible store instead of `data_dir/blobs` (`SYNCKIT_S3_*`). Once any S3 setting is
    /// given, the endpoint, bucket and both keys must be.
    pub s3: Option<S3Config>,
    /// Signed URLs and unconfirmed uploads (`SYNCKIT_BLOB_*`).
    pub blob: BlobSettings,
    /// Live-sync event streams (`SYNCKIT_EVENTS_*`).
    pub events: EventSettings,
    /// How fast wrong passwords may be tried, per account and per client address (`SYNCKIT_SIGN_IN_*`).
    pub sign_in: ThrottleSettings,
    /// Slow clients and connections (`SYNCKIT_HEADER_READ_TIMEOUT_SECS`, `SYNCKIT_REQUEST_TIMEOUT_SECS`,
    /// `SYNCKIT_SERVE_*`).
    pub serve: ServeSettings,
    /// How pushes share the database (`SYNCKIT_PUSH_*`).
    pub push: PushSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./synckit-data"),
            role: Role::All,
            log_format: LogFormat::Text,
            database: DatabaseSettings::default(),
            nats_url: None,
            secrets: SecretSettings::default(),
            open_registration: true,
            s3: None,
            blob: BlobSettings::default(),
            events: EventSettings::default(),
            sign_in: ThrottleSettings::default(),
            serve: ServeSettings::default(),
            push: PushSettings::default(),
        }
    }
}

/// Where the accounts, changelog and blob catalogue live.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://…` to run on Postgres instead of the embedded SQLite file (`SYNCKIT_DATABASE_URL`).
    pub url: Option<SecretString>,
    /// Postgres connections kept per process (`SYNCKIT_DB_MAX_CONNECTIONS`), for everything but token checks.
    pub max_connections: usize,
    /// Postgres connections kept per process for the token check of every authenticated request, on top of
    /// `max_connections`, so that nothing holding those can shut every user out (`SYNCKIT_DB_TOKEN_CONNECTIONS`).
    pub token_connections: usize,
    /// How long a push waits for its stream's lock on Postgres before it is answered 503
    /// (`SYNCKIT_DB_LOCK_TIMEOUT_SECS`).
    #[serde(with = "synckit_http::secs", rename = "lock_timeout_secs")]
    pub lock_timeout: Duration,
    /// How long one statement of a push may run on Postgres before it is cancelled and the push answered 503
    /// (`SYNCKIT_DB_STATEMENT_TIMEOUT_SECS`).
    #[serde(with = "synckit_http::secs", rename = "statement_timeout_secs")]
    pub statement_timeout: Duration,
    /// Calls waiting for the embedded database's writer, and for its reader, at most; past it they are answered 503
    /// (`SYNCKIT_DB_MAX_QUEUED`).
    pub max_queued: usize,
    /// How long start-up keeps retrying a database that does not answer yet, since it may be starting too
    /// (`SYNCKIT_DB_STARTUP_RETRY_SECS`).
    #[serde(with = "synckit_http::secs", rename = "startup_retry_secs")]
    pub startup_retry: Duration,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 16,
            token_connections: 2,
            lock_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(20),
            max_queued: 128,
            startup_retry: Duration::from_secs(30),
        }
    }
}

/// How pushes share the database (see `synckit_ingest::admission`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushSettings {
    /// Pushes to one stream in progress at most, the running one included; more are answered 429
    /// (`SYNCKIT_PUSH_MAX_QUEUED_PER_STREAM`).
    pub max_queued_per_stream: usize,
    /// Pushes using the database at once, across all streams (`SYNCKIT_PUSH_MAX_IN_DATABASE`). Unset, three quarters
    /// of `SYNCKIT_DB_MAX_CONNECTIONS`: the rest stay free for pulls.
    pub max_in_database: Option<usize>,
}

impl Default for PushSettings {
    fn default() -> Self {
        Self { max_queued_per_stream: 8, max_in_database: None }
    }
}

/// How long clients may take.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeSettings {
    /// Time a client has to send a request's headers (`SYNCKIT_HEADER_READ_TIMEOUT_SECS`).
    #[serde(with = "synckit_http::secs", rename = "header_read_timeout_secs")]
    pub header_read_timeout: Duration,
    /// Time a request may take in all, body included (`SYNCKIT_REQUEST_TIMEOUT_SECS`).
    #[serde(with = "synckit_http::secs", rename = "request_timeout_secs")]
    pub request_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog (`SYNCKIT_SERVE_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Age at which a connection is asked to close and, a grace period later, closed
    /// (`SYNCKIT_SERVE_MAX_CONNECTION_AGE_SECS`).
    #[serde(with = "synckit_http::secs", rename = "max_connection_age_secs")]
    pub max_connection_age: Duration,
    /// Request and response bytes the server holds in flight at most, in MiB (`SYNCKIT_SERVE_MEMORY_BUDGET_MIB`).
    /// One user may hold a quarter of it; see [`synckit_http::budget`].
    pub memory_budget_mib: u64,
    /// A request body that sends nothing for this long is answered 408 (`SYNCKIT_SERVE_BODY_READ_TIMEOUT_SECS`).
    #[serde(with = "synckit_http::secs", rename = "body_read_timeout_secs")]
    pub body_read_timeout: Duration,
    /// A response the client takes nothing of for this long is cut, its connection closed
    /// (`SYNCKIT_SERVE_WRITE_TIMEOUT_SECS`).
    #[serde(with = "synckit_http::secs", rename = "write_timeout_secs")]
    pub write_timeout: Duration,
    /// On SIGTERM or Ctrl-C the server stops accepting, ends event streams and gives in-flight requests this long to
    /// finish before it closes their connections (`SYNCKIT_SERVE_SHUTDOWN_GRACE_SECS`).
    #[serde(with = "synckit_http::secs", rename = "shutdown_grace_secs")]
    pub shutdown_grace: Duration,
}

impl ServeSettings {
    /// The memory budget in bytes.
    pub fn memory_budget_bytes(&self) -> u64 {
        self.memory_budget_mib.saturating_mul(1024 * 1024)
    }

    /// The largest single reservation: a push of the largest body, or a pull of the largest page. A user's share of
    /// the budget must hold it, or the largest honest requests would always be refused.
    pub fn largest_reservation() -> u64 {
        let push = MAX_PUSH_BODY_BYTES as u64 * synckit_http::budget::BODY_COST_FACTOR;
        push.max(synckit_query::page_reservation(MAX_PULL_LIMIT))
    }
}

impl Default for ServeSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_connection_age: Duration::from_secs(3600),
            memory_budget_mib: 1024,
            body_read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A subset of the services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every service in this process.
    All,
    /// Accounts, tokens, devices, key envelopes.
    Auth,
    /// Push.
    Ingest,
    /// Pull, status and the event stream.
    Query,
    /// Blob upload and download URLs (and, on the embedded store, the uploads and downloads themselves).
    Blob,
}

impl Role {
    /// The role's name, as `--role` and the settings write it.
    pub fn name(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Auth => "auth",
            Role::Ingest => "ingest",
            Role::Query => "query",
            Role::Blob => "blob",
        }
    }

    /// Whether a process of this role runs `service`.
    pub fn runs(self, service: Role) -> bool {
        self == Role::All || self == service
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Settings given as flags, which override every other source.
#[derive(Debug, Default, Serialize)]
pub struct FlagOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

/// A setting that cannot be read or cannot work, named as the operator would set it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub(crate) String);

/// Top-level settings: `SYNCKIT_LISTEN` is `listen`.
const TOP_LEVEL: [&str; 6] = ["listen", "data_dir", "role", "log_format", "nats_url", "open_registration"];

/// Variable prefixes (after `SYNCKIT_`) that start each section: `SYNCKIT_S3_BUCKET` is `s3.bucket`.
const SECTION_PREFIXES: [(&str, &str); 7] = [
    ("s3_", "s3"),
    ("blob_", "blob"),
    ("events_", "events"),
    ("sign_in_", "sign_in"),
    ("db_", "database"),
    ("serve_", "serve"),
    ("push_", "push"),
];

/// Variables whose names do not start with their section's.
const SINGLE_KEYS: [(&str, &str); 12] = [
    ("database_url", "database.url"),
    ("token_secret", "secrets.token.value"),
    ("token_secret_file", "secrets.token.file"),
    ("token_secret_previous", "secrets.token.previous"),
    ("url_secret", "secrets.url.value"),
    ("url_secret_file", "secrets.url.file"),
    ("url_secret_previous", "secrets.url.previous"),
    ("prelogin_secret", "secrets.prelogin.value"),
    ("prelogin_secret_file", "secrets.prelogin.file"),
    ("prelogin_secret_previous", "secrets.prelogin.previous"),
    ("header_read_timeout_secs", "serve.header_read_timeout_secs"),
    ("request_timeout_secs", "serve.request_timeout_secs"),
];

/// The settings key of a `SYNCKIT_*` variable, given without the prefix in lower case (`blob_url_expiry_secs` is
/// `blob.url_expiry_secs`), or `None` for a variable that is not a server setting (the command-line tool's
/// `SYNCKIT_API_KEY`, say), which the server leaves alone.
pub fn env_key(var: &str) -> Option<String> {
    if TOP_LEVEL.contains(&var) {
        return Some(var.to_owned());
    }
    if let Some((_, key)) = SINGLE_KEYS.iter().find(|(v, _)| *v == var) {
        return Some((*key).to_owned());
    }
    SECTION_PREFIXES
        .iter()
        .find_map(|(prefix, section)| var.strip_prefix(prefix).map(|rest| format!("{section}.{rest}")))
}

/// The `SYNCKIT_*` variable of a settings key: `blob.url_expiry_secs` is `SYNCKIT_BLOB_URL_EXPIRY_SECS`.
pub fn env_var(key: &str) -> String {
    let var = match (SINGLE_KEYS.iter().find(|(_, k)| *k == key), key.split_once('.')) {
        (Some((var, _)), _) => (*var).to_owned(),
        (None, Some((section, rest))) => match SECTION_PREFIXES.iter().find(|(_, s)| *s == section) {
            Some((prefix, _)) => format!("{prefix}{rest}"),
            None => format!("{section}_{rest}"),
        },
        (None, None) => key.to_owned(),
    };
    format!("SYNCKIT_{}", var.to_uppercase())
}

impl Settings {
    /// Reads the layered configuration and checks it.
    pub fn load(file: Option<&Path>, flags: &FlagOverrides) -> Result<Self, SettingsError> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.exists() {
                return Err(SettingsError(format!("config file {} does not exist", file.display())));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        let settings: Self = figment
            .merge(
                Env::prefixed("SYNCKIT_").filter(|var| env_key(&var.as_str().to_ascii_lowercase()).is_some()).map(
                    |var| env_key(&var.as_str().to_ascii_lowercase()).map_or_else(|| var.into(), Uncased::from_owned),
                ),
            )
            .merge(Serialized::globals(flags))
            .extract()
            .map_err(|e| SettingsError(describe(e)))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Every check of a value, in one place: the first setting that cannot work, named by its variable.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let bad = |key: &str, why: String| Err(SettingsError(format!("{} {why}", env_var(key))));
        self.secrets.validate()?;
        let database = &self.database;
        if database.max_connections == 0 {
            return bad("database.max_connections", "must be at least 1".into());
        }
        if database.token_connections == 0 {
            return bad("database.token_connections", "must be at least 1".into());
        }
        if database.lock_timeout.is_zero() {
            return bad("database.lock_timeout_secs", "must be at least 1".into());
        }
        if database.statement_timeout.is_zero() {
            return bad("database.statement_timeout_secs", "must be at least 1".into());
        }
        if database.max_queued == 0 {
            return bad("database.max_queued", "must be at least 1".into());
        }
        if self.push.max_queued_per_stream == 0 {
            return bad("push.max_queued_per_stream", "must be at least 1".into());
        }
        match self.push.max_in_database {
            Some(0) => return bad("push.max_in_database", "must be at least 1".into()),
            Some(n) if database.url.is_some() && database.max_connections > 1 && n >= database.max_connections => {
                return bad(
                    "push.max_in_database",
                    format!(
                        "({n}) must be below SYNCKIT_DB_MAX_CONNECTIONS ({}), or pushes could take every connection \
                         and leave none for pulls",
                        database.max_connections
                    ),
                );
            }
            _ => {}
        }
        let blob = &self.blob;
        let max_expiry = BlobSettings::MAX_URL_EXPIRY.as_secs();
        if !(1..=max_expiry).contains(&blob.url_expiry.as_secs()) {
            let expiry = blob.url_expiry.as_secs();
            return bad("blob.url_expiry_secs", format!("must be 1 to {max_expiry} (7 days), not {expiry}"));
        }
        if blob.upload_ttl < blob.url_expiry {
            return bad(
                "blob.upload_ttl_secs",
                format!(
                    "({}) must be at least SYNCKIT_BLOB_URL_EXPIRY_SECS ({}), or uploads could be swept while their \
                     URL is still valid",
                    blob.upload_ttl.as_secs(),
                    blob.url_expiry.as_secs()
                ),
            );
        }
        if blob.sweep_interval.is_zero() {
            return bad("blob.sweep_interval_secs", "must be at least 1".into());
        }
        let events = &self.events;
        if events.max_connections_per_user == 0 {
            return bad("events.max_per_user", "must be at least 1".into());
        }
        if events.max_lifetime.is_zero() {
            return bad("events.max_lifetime_secs", "must be at least 1".into());
        }
        if events.heartbeat.is_zero() {
            return bad("events.heartbeat_secs", "must be at least 1".into());
        }
        let sign_in = &self.sign_in;
        if sign_in.account_burst == 0 {
            return bad("sign_in.account_burst", "must be at least 1".into());
        }
        if sign_in.address_burst == 0 {
            return bad("sign_in.address_burst", "must be at least 1".into());
        }
        if sign_in.refill.is_zero() {
            return bad("sign_in.refill_secs", "must be at least 1".into());
        }
        if self.serve.header_read_timeout.is_zero() {
            return bad("serve.header_read_timeout_secs", "must be at least 1".into());
        }
        if self.serve.request_timeout.is_zero() {
            return bad("serve.request_timeout_secs", "must be at least 1".into());
        }
        if self.serve.max_connections == 0 {
            return bad("serve.max_connections", "must be at least 1".into());
        }
        if self.serve.max_connection_age.is_zero() {
            return bad("serve.max_connection_age_secs", "must be at least 1".into());
        }
        let smallest_budget = (ServeSettings::largest_reservation() * USER_SHARE_DIVISOR).div_ceil(1024 * 1024);
        if self.serve.memory_budget_mib < smallest_budget {
            return bad(
                "serve.memory_budget_mib",
                format!(
                    "must be at least {smallest_budget}, not {}: a user's share (a quarter) must hold the largest \
                     push or pull",
                    self.serve.memory_budget_mib
                ),
            );
        }
        if self.serve.body_read_timeout.is_zero() {
            return bad("serve.body_read_timeout_secs", "must be at least 1".into());
        }
        if self.serve.write_timeout.is_zero() {
            return bad("serve.write_timeout_secs", "must be at least 1".into());
        }
        if let Some(s3) = &self.s3 {
            let is_url = |url: &str| url.starts_with("http://") || url.starts_with("https://");
            if !is_url(&s3.endpoint) {
                return bad("s3.endpoint", format!("must be an http:// or https:// URL, not `{}`", s3.endpoint));
            }
            if let Some(public) = s3.public_endpoint.as_deref().filter(|url| !is_url(url)) {
                return bad("s3.public_endpoint", format!("must be an http:// or https:// URL, not `{public}`"));
            }
        }
        Ok(())
    }
}

impl Settings {
    /// Pushes using the database at once: `SYNCKIT_PUSH_MAX_IN_DATABASE`, or three quarters of the pool (at least 1).
    pub fn push_max_in_database(&self) -> usize {
        self.push.max_in_database.unwrap_or((self.database.max_connections * 3 / 4).max(1))
    }
}

/// Figment's errors name keys (`s3.bucket`); operators set variables, so each is named as both.
fn describe(error: figment::Error) -> String {
    use figment::error::Kind;
    let name = |path: &[String], field: &str| {
        let key = path.iter().map(String::as_str).chain([field]).filter(|k| !k.is_empty()).collect::<Vec<_>>();
        key.join(".")
    };
    error
        .into_iter()
        .map(|e| match &e.kind {
            Kind::MissingField(field) => {
                let key = name(&e.path, field);
                format!("{} (`{key}` in a config file) must be set", env_var(&key))
            }
            Kind::UnknownField(field, _) => format!("unknown setting `{}`: {e}", name(&e.path, field)),
            _ if e.path.is_empty() => e.to_string(),
            _ => {
                let key = name(&e.path, "");
                format!("{} (`{key}`): {e}", env_var(&key))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail API
mod tests;
