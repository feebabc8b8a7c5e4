//! The deployment's signing secrets: the token key, the embedded blob store's URL key and the pre-login key.
//!
//! Each comes from a variable or a file (`SYNCKIT_TOKEN_SECRET` or `SYNCKIT_TOKEN_SECRET_FILE`, and likewise `URL`
//! and `PRELOGIN`), so that read access to the database, a backup or a replica is not enough to forge tokens or
//! URLs. Only the embedded default, whose database is a file beside the server, may fall back to secrets made once
//! and kept in that database, and it warns when it does; on Postgres a missing secret stops start-up.
//!
//! A secret is rotated by setting a new one and moving the old one to `…_PREVIOUS`: the new one signs, the old one
//! still verifies (tokens and URLs name their key by id) and can be dropped once what it signed has expired.

use std::path::{Path, PathBuf};

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use synckit_http::KeyRing;
use synckit_http::keys::MIN_SECRET_BYTES;
use synckit_store::{AccountStore, SecretName};

use crate::Settings;
use crate::settings::{SettingsError, env_var};

/// The `secrets` section: one entry per secret.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretSettings {
    /// Signs tokens (`SYNCKIT_TOKEN_SECRET`, `_FILE`, `_PREVIOUS`).
    pub token: SecretSetting,
    /// Signs the embedded blob store's URLs (`SYNCKIT_URL_SECRET`, `_FILE`, `_PREVIOUS`); unused with S3.
    pub url: SecretSetting,
    /// Keys the salts pre-login makes up for unknown emails (`SYNCKIT_PRELOGIN_SECRET`, `_FILE`). Nothing it made is
    /// ever verified, so it takes no previous value: changing it changes the made-up salts once.
    pub prelogin: SecretSetting,
}

/// One secret: its value, or a file that holds it, and the values it replaced, which still verify.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretSetting {
    /// The secret itself, at least 32 bytes.
    pub value: Option<SecretString>,
    /// A file holding it, read once at start-up; one trailing newline is ignored.
    pub file: Option<PathBuf>,
    /// Earlier values, one or a list: what they signed stays valid until it expires.
    #[serde(deserialize_with = "one_or_many")]
    pub previous: Vec<SecretString>,
}

impl std::fmt::Debug for SecretSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretSetting")
            .field("value", &self.value)
            .field("file", &self.file)
            .field("previous", &self.previous.len())
            .finish()
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<SecretString>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(SecretString),
        Many(Vec<SecretString>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

/// Which secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    Token,
    Url,
    Prelogin,
}

impl Secret {
    const ALL: [Secret; 3] = [Self::Token, Self::Url, Self::Prelogin];

    fn setting(self, secrets: &SecretSettings) -> &SecretSetting {
        match self {
            Self::Token => &secrets.token,
            Self::Url => &secrets.url,
            Self::Prelogin => &secrets.prelogin,
        }
    }

    /// The variable of one of its settings: `value`, `file` or `previous`.
    fn var(self, field: &str) -> String {
        let name = match self {
            Self::Token => "token",
            Self::Url => "url",
            Self::Prelogin => "prelogin",
        };
        env_var(&format!("secrets.{name}.{field}"))
    }

    fn stored_as(self) -> SecretName {
        match self {
            Self::Token => SecretName::TokenSigningKey,
            Self::Url => SecretName::BlobUrlSigningKey,
            Self::Prelogin => SecretName::PreloginKey,
        }
    }

    /// What a reader of the database could do with it.
    fn exposure(self) -> &'static str {
        match self {
            Self::Token => "forge tokens for any user",
            Self::Url => "forge blob upload and download URLs",
            Self::Prelogin => "tell made-up pre-login salts from real ones, and so which emails have accounts",
        }
    }
}

impl SecretSettings {
    /// The checks that need no file: one source per secret, and values long enough.
    pub(crate) fn validate(&self) -> Result<(), SettingsError> {
        for secret in Secret::ALL {
            let setting = secret.setting(self);
            if setting.value.is_some() && setting.file.is_some() {
                let (value, file) = (secret.var("value"), secret.var("file"));
                return Err(SettingsError(format!("{value} and {file} are both set: set one of them")));
            }
            if let Some(value) = &setting.value {
                long_enough(value.expose_secret().len(), &secret.var("value"))?;
            }
            if secret == Secret::Prelogin && !setting.previous.is_empty() {
                return Err(SettingsError(format!(
                    "{} has no use: pre-login salts are never verified; remove it",
                    secret.var("previous")
                )));
            }
            for previous in &setting.previous {
                long_enough(previous.expose_secret().len(), &secret.var("previous"))?;
            }
        }
        Ok(())
    }
}

fn long_enough(len: usize, var: &str) -> Result<(), SettingsError> {
    if len < MIN_SECRET_BYTES {
        return Err(SettingsError(format!(
            "{var} is {len} bytes; it must be at least {MIN_SECRET_BYTES} (for example `openssl rand -base64 48`)"
        )));
    }
    Ok(())
}

/// The configured keys of `secret`, its file read now, or `None` when neither a value nor a file is set.
pub fn configured(secret: Secret, secrets: &SecretSettings) -> anyhow::Result<Option<KeyRing>> {
    let setting = secret.setting(secrets);
    let current = match (&setting.value, &setting.file) {
        (Some(_), Some(_)) => {
            anyhow::bail!("{} and {} are both set: set one of them", secret.var("value"), secret.var("file"))
        }
        (Some(value), None) => value.expose_secret().as_bytes().to_vec(),
        (None, Some(path)) => read_file(path, &secret.var("file"))?,
        (None, None) => return Ok(None),
    };
    ring(secret, &current, setting).map(Some)
}

fn read_file(path: &Path, var: &str) -> anyhow::Result<Vec<u8>> {
    let mut bytes = std::fs::read(path).with_context(|| format!("{var}: cannot read {}", path.display()))?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    long_enough(bytes.len(), &format!("{var} ({})", path.display()))?;
    Ok(bytes)
}

fn ring(secret: Secret, current: &[u8], setting: &SecretSetting) -> anyhow::Result<KeyRing> {
    let previous = setting.previous.iter().map(|p| p.expose_secret().as_bytes());
    KeyRing::new(current, previous).with_context(|| secret.var("previous"))
}

/// The keys of `secret`: as configured, or on the embedded default made once and kept in its database.
pub(crate) async fn keys(secret: Secret, settings: &Settings, accounts: &dyn AccountStore) -> anyhow::Result<KeyRing> {
    if let Some(ring) = configured(secret, &settings.secrets)? {
        return Ok(ring);
    }
    may_keep_in_database(secret, settings)?;
    let (value, file) = (secret.var("value"), secret.var("file"));
    tracing::warn!(
        "{value} is not set: using a secret kept in the embedded database, so anyone who can read a copy of it could \
         {}; set {value} or {file} to keep it out",
        secret.exposure()
    );
    let stored = accounts.secret(secret.stored_as(), &random_32()).await?;
    ring(secret, &stored, secret.setting(&settings.secrets))
}

/// Only the embedded default may keep a secret in its database. Postgres is shared, backed up and replicated: there a
/// missing secret is an error that says what to set.
fn may_keep_in_database(secret: Secret, settings: &Settings) -> anyhow::Result<()> {
    if settings.database.url.is_some() {
        anyhow::bail!(
            "set {} or {}: on Postgres the server keeps no signing secret in the database, where anyone who can read \
             it, a backup or a replica could {}. Give every instance the same random value of at least \
             {MIN_SECRET_BYTES} bytes (for example `openssl rand -base64 48`)",
            secret.var("value"),
            secret.var("file"),
            secret.exposure()
        );
    }
    Ok(())
}

fn random_32() -> [u8; 32] {
    let mut bytes = [0; 32];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    bytes
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail API
mod tests {
    use std::path::Path;

    use super::*;
    use crate::settings::FlagOverrides;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn load() -> Result<Settings, SettingsError> {
        Settings::load(None, &FlagOverrides::default())
    }

    fn id(secret: &str) -> String {
        KeyRing::new(secret.as_bytes(), []).unwrap().current().id().to_owned()
    }

    fn ids(ring: &KeyRing) -> Vec<&str> {
        ring.keys().iter().map(|k| k.id()).collect()
    }

    #[test]
    fn every_secret_comes_from_a_variable_or_a_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("url-secret", &format!("{B}\n"))?;
            jail.set_env("SYNCKIT_TOKEN_SECRET", A);
            jail.set_env("SYNCKIT_TOKEN_SECRET_PREVIOUS", format!("[{B}, {A}]"));
            jail.set_env("SYNCKIT_URL_SECRET_FILE", "url-secret");
            jail.set_env("SYNCKIT_URL_SECRET_PREVIOUS", A);
            jail.set_env("SYNCKIT_PRELOGIN_SECRET", B);
            let s = load().unwrap();
            assert!(!format!("{s:?}").contains(A), "secrets never show in debug output");

            let token = configured(Secret::Token, &s.secrets).unwrap().unwrap();
            assert_eq!(ids(&token), [id(A), id(B)], "the current key first, a repeated one once");
            // The file's trailing newline is not part of the secret.
            let url = configured(Secret::Url, &s.secrets).unwrap().unwrap();
            assert_eq!(ids(&url), [id(B), id(A)]);
            let prelogin = configured(Secret::Prelogin, &s.secrets).unwrap().unwrap();
            assert_eq!(prelogin.current().secret(), B.as_bytes());
            Ok(())
        });
    }

    #[test]
    fn a_file_is_read_once_at_start_up_and_must_be_long_enough() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("short", "0123456789012345678901234567890\n")?;
            jail.set_env("SYNCKIT_TOKEN_SECRET_FILE", "short");
            let s = load().unwrap();
            let err = configured(Secret::Token, &s.secrets).unwrap_err().to_string();
            assert!(err.contains("SYNCKIT_TOKEN_SECRET_FILE") && err.contains("31 bytes"), "{err}");

            jail.set_env("SYNCKIT_TOKEN_SECRET_FILE", "missing");
            let err = format!("{:#}", configured(Secret::Token, &load().unwrap().secrets).unwrap_err());
            assert!(err.contains("SYNCKIT_TOKEN_SECRET_FILE") && err.contains("missing"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_value_and_a_file_together_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("synckit.toml", &format!("[secrets.url]\nvalue = \"{A}\"\nfile = \"/run/secrets/url\""))?;
            let err = Settings::load(Some(Path::new("synckit.toml")), &FlagOverrides::default()).unwrap_err();
            let err = err.to_string();
            assert!(err.contains("SYNCKIT_URL_SECRET and SYNCKIT_URL_SECRET_FILE are both set"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn short_values_name_their_variable() {
        for (var, value) in [
            ("SYNCKIT_TOKEN_SECRET", "short"),
            ("SYNCKIT_URL_SECRET", "short"),
            ("SYNCKIT_PRELOGIN_SECRET", "short"),
            ("SYNCKIT_TOKEN_SECRET_PREVIOUS", "short"),
            ("SYNCKIT_URL_SECRET_PREVIOUS", "short"),
            ("SYNCKIT_PRELOGIN_SECRET_PREVIOUS", A),
        ] {
            figment::Jail::expect_with(|jail| {
                jail.set_env("SYNCKIT_TOKEN_SECRET", A);
                jail.set_env("SYNCKIT_URL_SECRET", A);
                jail.set_env(var, value);
                let err = load().unwrap_err().to_string();
                assert!(err.starts_with(&format!("{var} ")), "{var}: {err}");
                Ok(())
            });
        }
    }

    #[test]
    fn postgres_needs_every_secret_set() {
        figment::Jail::expect_with(|jail| {
            assert!(Secret::ALL.iter().all(|&secret| may_keep_in_database(secret, &load().unwrap()).is_ok()));
            jail.set_env("SYNCKIT_DATABASE_URL", "postgres://postgres@127.0.0.1/unused");
            let settings = load().unwrap();
            for (secret, var) in [(Secret::Token, "TOKEN"), (Secret::Url, "URL"), (Secret::Prelogin, "PRELOGIN")] {
                let err = may_keep_in_database(secret, &settings).unwrap_err().to_string();
                let named = format!("set SYNCKIT_{var}_SECRET or SYNCKIT_{var}_SECRET_FILE: on Postgres");
                assert!(err.starts_with(&named), "{err}");
            }
            Ok(())
        });
    }
}
