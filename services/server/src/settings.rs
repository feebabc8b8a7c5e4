//! Configuration: defaults, then an optional TOML file (`--config` or `SYNCKIT_CONFIG`), then `SYNCKIT_*`
//! environment variables, then flags; later sources win. Secrets are [`SecretString`]s and never printed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Everything the server can be told.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Address to listen on (`SYNCKIT_LISTEN`).
    pub listen: SocketAddr,
    /// Where the embedded default keeps its files (`SYNCKIT_DATA_DIR`).
    pub data_dir: PathBuf,
    /// `postgres://…` to run on Postgres instead of the embedded SQLite file (`SYNCKIT_DATABASE_URL`).
    pub database_url: Option<SecretString>,
    /// `nats://…` to fan commit notices out through NATS, so query instances in other processes hear pushes
    /// (`SYNCKIT_NATS_URL`). Without it, notices stay inside this process.
    pub nats_url: Option<String>,
    /// Open event streams per user on one instance (`SYNCKIT_EVENTS_MAX_PER_USER`).
    pub events_max_per_user: usize,
    /// Seconds an event stream lives before the server closes it and the client reconnects
    /// (`SYNCKIT_EVENTS_MAX_LIFETIME_SECS`).
    pub events_max_lifetime_secs: u64,
    /// Seconds between heartbeats on an idle event stream (`SYNCKIT_EVENTS_HEARTBEAT_SECS`).
    pub events_heartbeat_secs: u64,
    /// S3 endpoint, e.g. `https://s3.eu-west-1.amazonaws.com` or a Garage or MinIO URL (`SYNCKIT_S3_ENDPOINT`).
    /// With it (and the bucket and credentials), blobs go to S3; without it, to `data_dir/blobs`.
    pub s3_endpoint: Option<String>,
    /// S3 region (`SYNCKIT_S3_REGION`).
    pub s3_region: String,
    /// S3 bucket (`SYNCKIT_S3_BUCKET`).
    pub s3_bucket: Option<String>,
    /// S3 access key id (`SYNCKIT_S3_ACCESS_KEY_ID`).
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key (`SYNCKIT_S3_SECRET_ACCESS_KEY`).
    pub s3_secret_access_key: Option<SecretString>,
    /// Seconds a signed blob upload or download URL stays valid (`SYNCKIT_BLOB_URL_EXPIRY_SECS`).
    pub blob_url_expiry_secs: u64,
    /// Seconds an upload may stay unconfirmed before it is swept from the store (`SYNCKIT_BLOB_UPLOAD_TTL_SECS`).
    pub blob_upload_ttl_secs: u64,
    /// Seconds between sweeps of unconfirmed uploads (`SYNCKIT_BLOB_SWEEP_INTERVAL_SECS`).
    pub blob_sweep_interval_secs: u64,
    /// Token signing secret, at least 32 bytes (`SYNCKIT_TOKEN_SECRET`). Without it, a random one is made once and
    /// kept in the database, so every instance of a deployment shares it with no configuration.
    pub token_secret: Option<SecretString>,
    /// Anyone may sign up (`SYNCKIT_OPEN_REGISTRATION`).
    pub open_registration: bool,
    /// Which services this process runs (`SYNCKIT_ROLE`).
    pub role: Role,
    /// `text` for people, `json` for log collectors (`SYNCKIT_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Postgres connections kept per process (`SYNCKIT_DB_MAX_CONNECTIONS`).
    pub db_max_connections: usize,
    /// Seconds start-up keeps retrying a database that does not answer yet, since it may be starting too
    /// (`SYNCKIT_DB_STARTUP_RETRY_SECS`).
    pub db_startup_retry_secs: u64,
    /// Seconds a client has to send a request's headers (`SYNCKIT_HEADER_READ_TIMEOUT_SECS`).
    pub header_read_timeout_secs: u64,
    /// Seconds a request may take in all, body included (`SYNCKIT_REQUEST_TIMEOUT_SECS`).
    pub request_timeout_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./synckit-data"),
            database_url: None,
            token_secret: None,
            nats_url: None,
            s3_endpoint: None,
            s3_region: "us-east-1".to_owned(),
            s3_bucket: None,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            blob_url_expiry_secs: 900,
            blob_upload_ttl_secs: 24 * 3600,
            blob_sweep_interval_secs: 600,
            events_max_per_user: 16,
            events_max_lifetime_secs: 3600,
            events_heartbeat_secs: 15,
            open_registration: true,
            role: Role::All,
            log_format: LogFormat::Text,
            db_max_connections: 16,
            db_startup_retry_secs: 30,
            header_read_timeout_secs: 10,
            request_timeout_secs: 30,
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

impl Settings {
    /// Reads the layered configuration.
    pub fn load(file: Option<&Path>, flags: &FlagOverrides) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.exists() {
                return Err(Box::new(format!("config file {} does not exist", file.display()).into()));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment
            .merge(Env::prefixed("SYNCKIT_").ignore(&["config"]))
            .merge(Serialized::globals(flags))
            .extract()
            .map_err(Box::new)
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail API
mod tests {
    use super::*;

    #[test]
    fn later_sources_win() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "synckit.toml",
                "listen = \"127.0.0.1:9000\"\nrole = \"query\"\nopen_registration = false",
            )?;
            jail.set_env("SYNCKIT_ROLE", "ingest");
            jail.set_env("SYNCKIT_DATABASE_URL", "postgres://u:secret@db/x");
            let flags = FlagOverrides { data_dir: Some("/tmp/flag".into()), ..Default::default() };
            let s = Settings::load(Some(Path::new("synckit.toml")), &flags).map_err(|e| *e)?;
            assert_eq!(s.listen.port(), 9000);
            assert_eq!(s.role, Role::Ingest);
            assert!(!s.open_registration);
            assert_eq!(s.data_dir, PathBuf::from("/tmp/flag"));
            // Secrets never show in debug output.
            assert!(!format!("{s:?}").contains("secret@"));
            Ok(())
        });
    }

    #[test]
    fn defaults_and_bad_values() {
        figment::Jail::expect_with(|jail| {
            let s = Settings::load(None, &FlagOverrides::default()).map_err(|e| *e)?;
            assert_eq!(s.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
            assert_eq!(s.role, Role::All);
            assert!(s.open_registration && s.database_url.is_none());

            jail.set_env("SYNCKIT_ROLE", "everything");
            let err = Settings::load(None, &FlagOverrides::default()).unwrap_err();
            assert!(err.to_string().contains("everything"), "{err}");
            assert!(Settings::load(Some(Path::new("missing.toml")), &FlagOverrides::default()).is_err());
            Ok(())
        });
    }
}
