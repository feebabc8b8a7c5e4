//! The settings' sources, their order, the variable names and every check.

use secrecy::ExposeSecret;

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
        let (db, secs) = (&s.database, Duration::from_secs);
        assert_eq!((db.token_connections, db.lock_timeout, db.statement_timeout), (2, secs(2), secs(20)));
        assert_eq!((db.max_queued, s.push.max_queued_per_stream, s.push.max_in_database), (128, 8, None));
        // Unset, pushes get three quarters of the pool.
        assert_eq!(s.push_max_in_database(), 12);
        assert_eq!(s.serve.memory_budget_mib, 1024);
        assert_eq!(
            (s.serve.body_read_timeout, s.serve.write_timeout),
            (Duration::from_secs(30), Duration::from_secs(30))
        );
        // The default budget fits the largest request four times over in each user's quarter... at least once.
        assert!(s.serve.memory_budget_bytes() / 4 >= ServeSettings::largest_reservation());

        jail.set_env("SYNCKIT_ROLE", "everything");
        let err = load().unwrap_err();
        assert!(err.to_string().contains("everything"), "{err}");
        assert!(err.to_string().contains("SYNCKIT_ROLE"), "{err}");
        assert!(Settings::load(Some(Path::new("missing.toml")), &FlagOverrides::default()).is_err());
        jail.set_env("SYNCKIT_ROLE", "blob");

        for (var, value) in [
            ("S3_ENDPOINT", "http://127.0.0.1:3900"),
            ("S3_BUCKET", "b"),
            ("S3_ACCESS_KEY_ID", "id"),
            ("S3_SECRET_ACCESS_KEY", "key"),
            ("S3_PUBLIC_ENDPOINT", "localhost:3900"),
        ] {
            jail.set_env(format!("SYNCKIT_{var}"), value);
        }
        let err = load().unwrap_err().to_string();
        assert!(err.contains("SYNCKIT_S3_PUBLIC_ENDPOINT") && err.contains("localhost:3900"), "{err}");
        jail.set_env("SYNCKIT_S3_PUBLIC_ENDPOINT", "http://localhost:3900");
        assert_eq!(load().unwrap().s3.unwrap().public_endpoint.as_deref(), Some("http://localhost:3900"));
        Ok(())
    });
}

#[test]
fn every_variable_reaches_its_setting() {
    figment::Jail::expect_with(|jail| {
        for (var, value) in [
            ("DB_MAX_CONNECTIONS", "3"),
            ("DB_STARTUP_RETRY_SECS", "4"),
            ("DB_TOKEN_CONNECTIONS", "17"),
            ("DB_LOCK_TIMEOUT_SECS", "18"),
            ("DB_STATEMENT_TIMEOUT_SECS", "19"),
            ("DB_MAX_QUEUED", "20"),
            ("PUSH_MAX_QUEUED_PER_STREAM", "21"),
            ("PUSH_MAX_IN_DATABASE", "2"),
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
            ("SERVE_MAX_CONNECTIONS", "15"),
            ("SERVE_MAX_CONNECTION_AGE_SECS", "16"),
            ("SERVE_MEMORY_BUDGET_MIB", "2048"),
            ("SERVE_BODY_READ_TIMEOUT_SECS", "17"),
            ("SERVE_WRITE_TIMEOUT_SECS", "18"),
            ("SERVE_SHUTDOWN_GRACE_SECS", "22"),
            ("NATS_URL", "nats://127.0.0.1:4222"),
        ] {
            jail.set_env(format!("SYNCKIT_{var}"), value);
        }
        let s = load().unwrap();
        let secs = Duration::from_secs;
        assert_eq!((s.database.max_connections, s.database.startup_retry), (3, Duration::from_secs(4)));
        let db = &s.database;
        assert_eq!((db.token_connections, db.lock_timeout, db.statement_timeout), (17, secs(18), secs(19)));
        assert_eq!(db.max_queued, 20);
        assert_eq!((s.push.max_queued_per_stream, s.push.max_in_database), (21, Some(2)));
        assert_eq!(s.push_max_in_database(), 2);
        let s3 = s.s3.as_ref().unwrap();
        assert_eq!(
            (&*s3.endpoint, &*s3.region, &*s3.bucket, &*s3.access_key_id, s3.secret_access_key.expose_secret()),
            ("http://127.0.0.1:3900", "garage", "b", "id", "key")
        );
        assert_eq!((s.blob.url_expiry, s.blob.upload_ttl, s.blob.sweep_interval), (secs(5), secs(6), secs(7)));
        assert_eq!((s.events.max_connections_per_user, s.events.max_lifetime), (8, secs(9)));
        assert_eq!((s.serve.header_read_timeout, s.serve.request_timeout), (secs(10), secs(11)));
        assert_eq!((s.serve.max_connections, s.serve.max_connection_age), (15, secs(16)));
        assert_eq!((s.serve.memory_budget_mib, s.serve.memory_budget_bytes()), (2048, 2048 << 20));
        assert_eq!((s.serve.body_read_timeout, s.serve.write_timeout), (secs(17), secs(18)));
        assert_eq!(s.serve.shutdown_grace, secs(22));
        assert_eq!((s.sign_in.account_burst, s.sign_in.address_burst, s.sign_in.refill), (12, 13, secs(14)));
        assert_eq!(s.nats_url.as_deref(), Some("nats://127.0.0.1:4222"));
        Ok(())
    });
}

#[test]
fn the_documented_configuration_file_loads() {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/operations.md"));
    let toml = readme.split("```toml\n").nth(1).and_then(|rest| rest.split("```").next()).expect("an example");
    figment::Jail::expect_with(|jail| {
        jail.create_file("synckit.toml", toml)?;
        let s = Settings::load(Some(Path::new("synckit.toml")), &FlagOverrides::default()).unwrap();
        assert!(!s.open_registration);
        assert_eq!(s.database.max_connections, 32);
        let token = &s.secrets.token;
        assert_eq!(token.file.as_deref(), Some(Path::new("/run/secrets/synckit-token")));
        assert_eq!(token.previous.len(), 1);
        assert!(s.secrets.url.file.is_some() && s.secrets.prelogin.file.is_some());
        assert_eq!(s.s3.as_ref().map(|s3| &*s3.bucket), Some("synckit"));
        assert_eq!(s.blob.url_expiry, Duration::from_secs(300));
        assert_eq!(s.events.max_connections_per_user, 8);
        assert_eq!((s.sign_in.account_burst, s.sign_in.address_burst), (5, 1000));
        assert_eq!(s.serve.header_read_timeout, Duration::from_secs(5));
        assert_eq!(s.serve.max_connections, 20_000);
        Ok(())
    });
}

#[test]
fn keys_and_variables_translate_both_ways() {
    for (var, key) in [
        ("listen", "listen"),
        ("database_url", "database.url"),
        ("token_secret_file", "secrets.token.file"),
        ("url_secret_previous", "secrets.url.previous"),
        ("prelogin_secret", "secrets.prelogin.value"),
        ("db_max_connections", "database.max_connections"),
        ("s3_secret_access_key", "s3.secret_access_key"),
        ("blob_url_expiry_secs", "blob.url_expiry_secs"),
        ("events_max_per_user", "events.max_per_user"),
        ("sign_in_refill_secs", "sign_in.refill_secs"),
        ("request_timeout_secs", "serve.request_timeout_secs"),
        ("serve_max_connections", "serve.max_connections"),
        ("db_lock_timeout_secs", "database.lock_timeout_secs"),
        ("push_max_queued_per_stream", "push.max_queued_per_stream"),
        ("serve_memory_budget_mib", "serve.memory_budget_mib"),
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
    let cases: [(Spoil, &str); 26] = [
        (|s| s.secrets.token.value = Some("short".into()), "SYNCKIT_TOKEN_SECRET"),
        (|s| s.database.max_connections = 0, "SYNCKIT_DB_MAX_CONNECTIONS"),
        (|s| s.database.token_connections = 0, "SYNCKIT_DB_TOKEN_CONNECTIONS"),
        (|s| s.database.lock_timeout = Duration::from_secs(0), "SYNCKIT_DB_LOCK_TIMEOUT_SECS"),
        (|s| s.database.statement_timeout = Duration::from_secs(0), "SYNCKIT_DB_STATEMENT_TIMEOUT_SECS"),
        (|s| s.database.max_queued = 0, "SYNCKIT_DB_MAX_QUEUED"),
        (|s| s.push.max_queued_per_stream = 0, "SYNCKIT_PUSH_MAX_QUEUED_PER_STREAM"),
        (|s| s.push.max_in_database = Some(0), "SYNCKIT_PUSH_MAX_IN_DATABASE"),
        // On Postgres, pushes alone may not take every connection.
        (
            |s| {
                s.database.url = Some("postgres://db/x".into());
                s.push.max_in_database = Some(16);
            },
            "SYNCKIT_PUSH_MAX_IN_DATABASE",
        ),
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
        (|s| s.serve.max_connections = 0, "SYNCKIT_SERVE_MAX_CONNECTIONS"),
        (|s| s.serve.max_connection_age = Duration::from_secs(0), "SYNCKIT_SERVE_MAX_CONNECTION_AGE_SECS"),
        // A quarter of 383 MiB cannot hold the largest push (twice its 48 MiB body); 384 can (below).
        (|s| s.serve.memory_budget_mib = 383, "SYNCKIT_SERVE_MEMORY_BUDGET_MIB"),
        (|s| s.serve.body_read_timeout = Duration::from_secs(0), "SYNCKIT_SERVE_BODY_READ_TIMEOUT_SECS"),
        (|s| s.serve.write_timeout = Duration::from_secs(0), "SYNCKIT_SERVE_WRITE_TIMEOUT_SECS"),
    ];
    assert!(Settings::default().validate().is_ok());
    let mut smallest = Settings::default();
    smallest.serve.memory_budget_mib = 384;
    assert!(smallest.validate().is_ok(), "the smallest budget the docs name");
    for (spoil, named) in cases {
        let mut settings = Settings::default();
        spoil(&mut settings);
        let err = settings.validate().expect_err(named).to_string();
        assert!(err.contains(named), "{err}");
    }
}

/// The keys the settings code accepts under `table` (`""` for the top level), as its deserializer lists them when
/// refusing an unknown one: the code itself, not a list kept beside it.
fn keys_of(table: &str) -> Vec<&'static str> {
    let toml = match table {
        "" => "not_a_setting = 1".to_owned(),
        table => format!("[{table}]\nnot_a_setting = 1"),
    };
    let err = Figment::from(Toml::string(&toml)).extract::<Settings>().expect_err("an unknown key is refused");
    match err.kind {
        figment::error::Kind::UnknownField(_, expected) => expected.to_vec(),
        other => panic!("[{table}]: {other}"),
    }
}

/// Every setting the code accepts, as `table.key`.
fn every_setting() -> Vec<String> {
    // The sections, `secrets`, and each secret's own table.
    let is_table = |key: &str| {
        SECTION_PREFIXES.iter().any(|(_, section)| *section == key)
            || key == "secrets"
            || key.strip_prefix("secrets.").is_some_and(|secret| !secret.contains('.'))
    };
    let (mut keys, mut tables) = (Vec::new(), vec![String::new()]);
    while let Some(table) = tables.pop() {
        for key in keys_of(&table) {
            let key = if table.is_empty() { key.to_owned() } else { format!("{table}.{key}") };
            if is_table(&key) { tables.push(key) } else { keys.push(key) }
        }
    }
    keys.sort();
    keys
}

#[test]
fn every_setting_is_documented_with_its_variable() {
    let settings = every_setting();
    // What the enumeration must find, or it is broken: a key of each kind of table.
    for key in [
        "listen",
        "database.url",
        "serve.shutdown_grace_secs",
        "secrets.token.file",
        "s3.bucket",
        "push.max_in_database",
    ] {
        assert!(settings.iter().any(|k| k == key), "{key} not found among {settings:?}");
    }
    let docs = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/operations.md"));
    let undocumented: Vec<String> = settings
        .iter()
        // Accepted by the reader, refused by the check, and said so there: pre-login salts have no previous secret.
        .filter(|key| *key != "secrets.prelogin.previous")
        .map(|key| env_var(key))
        .filter(|var| !docs.contains(&format!("`{var}`")))
        .collect();
    assert!(undocumented.is_empty(), "settings missing from docs/operations.md's table: {undocumented:?}");
}

#[test]
fn a_roles_name_is_how_settings_write_it() {
    for role in [Role::All, Role::Auth, Role::Ingest, Role::Query, Role::Blob] {
        assert_eq!(serde_json::to_value(role).unwrap(), role.name(), "{role:?}");
    }
}
