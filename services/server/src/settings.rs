//! Configuration: defaults, then an optional TOML file (`--config` or `SYNCKIT_CONFIG`), then `SYNCKIT_*`
//! environment variables, then flags; later sources win. Secrets are [`SecretString`]s and never printed.
//!
//! Settings are grouped in sections (`database`, `s3`, `blob`, `events`, `sign_in`, `serve`). A file writes them as TOML
//! tables (`[blob] url_expiry_secs = 300`); the environment keeps one flat variable per setting
//! (`SYNCKIT_BLOB_URL_EXPIRY_SECS`), and [`env_key`] and [`env_var`] translate between the two. Every check of
//! a value lives in [`Settings::validate`], which names the variable to fix.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::Uncased;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use synckit_auth::ThrottleSettings;
use synckit_blob::{BlobSettings, S3Config};
use synckit_query::EventSettings;

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
    /// Token signing secret, at least 32 bytes (`SYNCKIT_TOKEN_SECRET`). Without it, a random one is made once and
    /// kept in the database, so every instance of a deployment shares it with no configuration.
    pub token_secret: Option<SecretString>,
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
    /// Slow clients (`SYNCKIT_HEADER_READ_TIMEOUT_SECS`, `SYNCKIT_REQUEST_TIMEOUT_SECS`).
    pub serve: ServeSettings,
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
            token_secret: None,
            open_registration: true,
            s3: None,
            blob: BlobSettings::default(),
            events: EventSettings::default(),
            sign_in: ThrottleSettings::default(),
            serve: ServeSettings::default(),
        }
    }
}

/// Where the accounts, changelog and blob catalogue live.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://…` to run on Postgres instead of the embedded SQLite file (`SYNCKIT_DATABASE_URL`).
    pub url: Option<SecretString>,
    /// Postgres connections kept per process (`SYNCKIT_DB_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// How long start-up keeps retrying a database that does not answer yet, since it may be starting too
    /// (`SYNCKIT_DB_STARTUP_RETRY_SECS`).
    #[serde(with = "synckit_http::secs", rename = "startup_retry_secs")]
    pub startup_retry: Duration,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self { url: None, max_connections: 16, startup_retry: Duration::from_secs(30) }
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
}

impl Default for ServeSettings {
    fn default() -> Self {
        Self { header_read_timeout: Duration::from_secs(10), request_timeout: Duration::from_secs(30) }
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

/// A setting that cannot be read or cannot work, named as the operator would set it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(String);

/// Top-level settings: `SYNCKIT_LISTEN` is `listen`.
const TOP_LEVEL: [&str; 7] =
    ["listen", "data_dir", "role", "log_format", "nats_url", "token_secret", "open_registration"];

/// Variable prefixes (after `SYNCKIT_`) that start each section: `SYNCKIT_S3_BUCKET` is `s3.bucket`.
const SECTION_PREFIXES: [(&str, &str); 5] =
    [("s3_", "s3"), ("blob_", "blob"), ("events_", "events"), ("sign_in_", "sign_in"), ("db_", "database")];

/// Variables whose names do not start with their section's.
const SINGLE_KEYS: [(&str, &str); 3] = [
    ("database_url", "database.url"),
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
        if let Some(secret) = &self.token_secret
            && secret.expose_secret().len() < 32
        {
            return bad("token_secret", "must be at least 32 bytes".into());
        }
        if self.database.max_connections == 0 {
            return bad("database.max_connections", "must be at least 1".into());
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
        Ok(())
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
mod tests {
    use super::*;

    fn load() -> Result<Settings, SettingsError> {
        Settings::load(None, &FlagOverrides::default())
    }

    #[test]
    fn later_sources_win() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "synckit.toml",
                "listen = \"127.0.0.1:9000\"\nrole = \"query\"\nopen_registration = false\n[blob]\nurl_expiry_secs = 60",
            )?;
            jail.set_env("SYNCKIT_ROLE", "ingest");
            jail.set_env("SYNCKIT_DATABASE_URL", "postgres://u:secret@db/x");
            jail.set_env("SYNCKIT_EVENTS_HEARTBEAT_SECS", "3");
            let flags = FlagOverrides { data_dir: Some("/tmp/flag".into()), ..Default::default() };
            let s = Settings::load(Some(Path::new("synckit.toml")), &flags).unwrap();
            assert_eq!(s.listen.port(), 9000);
            assert_eq!(s.role, Role::Ingest);
            assert!(!s.open_registration);
            assert_eq!(s.data_dir, PathBuf::from("/tmp/flag"));
            assert_eq!(s.blob.url_expiry, Duration::from_secs(60));
            assert_eq!(s.events.heartbeat, Duration::from_secs(3));
            assert_eq!(s.database.url.as_ref().unwrap().expose_secret(), "postgres://u:secret@db/x");
            // Secrets never show in debug output.
            assert!(!format!("{s:?}").contains("secret@"));
            Ok(())
        });
    }

    #[test]
    fn defaults_and_bad_values() {
        figment::Jail::expect_with(|jail| {
            let s = load().unwrap();
            assert_eq!(s.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
            assert_eq!(s.role, Role::All);
            assert!(s.open_registration && s.database.url.is_none() && s.s3.is_none());

            jail.set_env("SYNCKIT_ROLE", "everything");
            let err = load().unwrap_err();
            assert!(err.to_string().contains("everything"), "{err}");
            assert!(err.to_string().contains("SYNCKIT_ROLE"), "{err}");
            assert!(Settings::load(Some(Path::new("missing.toml")), &FlagOverrides::default()).is_err());
            Ok(())
        });
    }

    #[test]
    fn every_variable_reaches_its_setting() {
        figment::Jail::expect_with(|jail| {
            for (var, value) in [
                ("DB_MAX_CONNECTIONS", "3"),
                ("DB_STARTUP_RETRY_SECS", "4"),
                ("S3_ENDPOINT", "http://127.0.0.1:3900"),
                ("S3_REGION", "garage"),
                ("S3_BUCKET", "b"),
                ("S3_ACCESS_KEY_ID", "id"),
                ("S3_SECRET_ACCESS_KEY", "key"),
                ("BLOB_URL_EXPIRY_SECS", "5"),
                ("BLOB_UPLOAD_TTL_SECS", "6"),
                ("BLOB_SWEEP_INTERVAL_SECS", "7"),
                ("EVENTS_MAX_PER_USER", "8"),
                ("EVENTS_MAX_LIFETIME_SECS", "9"),
                ("SIGN_IN_ACCOUNT_BURST", "12"),
                ("SIGN_IN_ADDRESS_BURST", "13"),
                ("SIGN_IN_REFILL_SECS", "14"),
                ("HEADER_READ_TIMEOUT_SECS", "10"),
                ("REQUEST_TIMEOUT_SECS", "11"),
                ("NATS_URL", "nats://127.0.0.1:4222"),
            ] {
                jail.set_env(format!("SYNCKIT_{var}"), value);
            }
            let s = load().unwrap();
            let secs = Duration::from_secs;
            assert_eq!((s.database.max_connections, s.database.startup_retry), (3, Duration::from_secs(4)));
            let s3 = s.s3.as_ref().unwrap();
            assert_eq!(
                (&*s3.endpoint, &*s3.region, &*s3.bucket, &*s3.access_key_id, s3.secret_access_key.expose_secret()),
                ("http://127.0.0.1:3900", "garage", "b", "id", "key")
            );
            assert_eq!((s.blob.url_expiry, s.blob.upload_ttl, s.blob.sweep_interval), (secs(5), secs(6), secs(7)));
            assert_eq!((s.events.max_connections_per_user, s.events.max_lifetime), (8, secs(9)));
            assert_eq!((s.serve.header_read_timeout, s.serve.request_timeout), (secs(10), secs(11)));
            assert_eq!((s.sign_in.account_burst, s.sign_in.address_burst, s.sign_in.refill), (12, 13, secs(14)));
            assert_eq!(s.nats_url.as_deref(), Some("nats://127.0.0.1:4222"));
            Ok(())
        });
    }

    #[test]
    fn the_readme_configuration_file_loads() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
        let toml = readme.split("```toml\n").nth(1).and_then(|rest| rest.split("```").next()).expect("an example");
        figment::Jail::expect_with(|jail| {
            jail.create_file("synckit.toml", toml)?;
            let s = Settings::load(Some(Path::new("synckit.toml")), &FlagOverrides::default()).unwrap();
            assert!(!s.open_registration);
            assert_eq!(s.database.max_connections, 32);
            assert_eq!(s.s3.as_ref().map(|s3| &*s3.bucket), Some("synckit"));
            assert_eq!(s.blob.url_expiry, Duration::from_secs(300));
            assert_eq!(s.events.max_connections_per_user, 8);
            assert_eq!((s.sign_in.account_burst, s.sign_in.address_burst), (5, 1000));
            assert_eq!(s.serve.header_read_timeout, Duration::from_secs(5));
            Ok(())
        });
    }

    #[test]
    fn keys_and_variables_translate_both_ways() {
        for (var, key) in [
            ("listen", "listen"),
            ("database_url", "database.url"),
            ("db_max_connections", "database.max_connections"),
            ("s3_secret_access_key", "s3.secret_access_key"),
            ("blob_url_expiry_secs", "blob.url_expiry_secs"),
            ("events_max_per_user", "events.max_per_user"),
            ("sign_in_refill_secs", "sign_in.refill_secs"),
            ("request_timeout_secs", "serve.request_timeout_secs"),
        ] {
            assert_eq!(env_key(var).as_deref(), Some(key));
            assert_eq!(env_var(key), format!("SYNCKIT_{}", var.to_uppercase()));
        }
    }

    #[test]
    fn other_synckit_variables_are_not_settings() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SYNCKIT_API_KEY", "sk_for_the_command_line_tool");
            jail.set_env("SYNCKIT_TEST_DATABASE_URL", "postgres://elsewhere/test");
            assert!(env_key("api_key").is_none());
            let s = load().unwrap();
            assert!(s.database.url.is_none());
            Ok(())
        });
    }

    #[test]
    fn half_an_s3_configuration_names_what_is_missing() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SYNCKIT_S3_ENDPOINT", "http://127.0.0.1:3900");
            let err = load().unwrap_err().to_string();
            assert!(err.contains("SYNCKIT_S3_BUCKET"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_typo_in_a_file_is_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("synckit.toml", "[blob]\nurl_expiry = 60")?;
            let err = Settings::load(Some(Path::new("synckit.toml")), &FlagOverrides::default()).unwrap_err();
            assert!(err.to_string().contains("url_expiry"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn values_that_cannot_work_name_their_variable() {
        type Spoil = fn(&mut Settings);
        let cases: [(Spoil, &str); 14] = [
            (|s| s.token_secret = Some("short".into()), "SYNCKIT_TOKEN_SECRET"),
            (|s| s.database.max_connections = 0, "SYNCKIT_DB_MAX_CONNECTIONS"),
            (|s| s.blob.url_expiry = Duration::from_secs(0), "SYNCKIT_BLOB_URL_EXPIRY_SECS"),
            (|s| s.blob.url_expiry = Duration::from_secs(8 * 24 * 3600), "SYNCKIT_BLOB_URL_EXPIRY_SECS"),
            (|s| s.blob.upload_ttl = Duration::from_secs(60), "SYNCKIT_BLOB_UPLOAD_TTL_SECS"),
            (|s| s.blob.sweep_interval = Duration::from_secs(0), "SYNCKIT_BLOB_SWEEP_INTERVAL_SECS"),
            (|s| s.events.max_connections_per_user = 0, "SYNCKIT_EVENTS_MAX_PER_USER"),
            (|s| s.events.max_lifetime = Duration::from_secs(0), "SYNCKIT_EVENTS_MAX_LIFETIME_SECS"),
            (|s| s.events.heartbeat = Duration::from_secs(0), "SYNCKIT_EVENTS_HEARTBEAT_SECS"),
            (|s| s.sign_in.account_burst = 0, "SYNCKIT_SIGN_IN_ACCOUNT_BURST"),
            (|s| s.sign_in.address_burst = 0, "SYNCKIT_SIGN_IN_ADDRESS_BURST"),
            (|s| s.sign_in.refill = Duration::from_secs(0), "SYNCKIT_SIGN_IN_REFILL_SECS"),
            (|s| s.serve.header_read_timeout = Duration::from_secs(0), "SYNCKIT_HEADER_READ_TIMEOUT_SECS"),
            (|s| s.serve.request_timeout = Duration::from_secs(0), "SYNCKIT_REQUEST_TIMEOUT_SECS"),
        ];
        assert!(Settings::default().validate().is_ok());
        for (spoil, named) in cases {
            let mut settings = Settings::default();
            spoil(&mut settings);
            let err = settings.validate().expect_err(named).to_string();
            assert!(err.contains(named), "{err}");
        }
    }
}
