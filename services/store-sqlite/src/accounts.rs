use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Params, Row, params};
use synckit_store::{
    AccountRecovery, AccountStore, App, AppKeyEnvelope, AuthorizationCode, ChangelogStore, Device, KeyEnvelope,
    LoginKeyChange, LoginKeyChanged, NewApp, NewUser, PendingPlan, PlanRecord, PutKeyOutcome, RecoverableKey,
    Recovered, Recovery, RecoveryKeyChange, RecoveryKeyRefused, SecretName, StoreError, StreamId, TokenStanding, User,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{SqliteStore, from_micros, now_micros, to_i64, to_micros, to_u64, uuid_at};

const USER_COLUMNS: &str = "id, email, salt, login_key_hash, token_version";

fn user(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: uuid_at(r, 0)?,
        email: r.get(1)?,
        salt: r.get(2)?,
        login_key_hash: r.get(3)?,
        token_version: to_u64(r.get(4)?),
    })
}

/// What deleting an app removes besides its row (and, by cascade, its redirect URIs), table by table.
const APP_DATA: [&str; 6] = ["streams", "changes", "devices", "key_envelopes", "blobs", "usage_days"];

/// The apps `filter` (a `WHERE` clause on `apps a`, or nothing) selects, oldest first, each with its redirect URIs:
/// one row per URI (or one with none), folded into their app.
fn apps_where(conn: &Connection, filter: &str, params: impl Params) -> rusqlite::Result<Vec<App>> {
    let sql = format!(
        "SELECT a.id, a.name, a.owner_id, a.client_id, a.created_at, u.uri \
         FROM apps a LEFT JOIN app_redirect_uris u ON u.app_id = a.id {filter} \
         ORDER BY a.created_at, a.id, u.position"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params)?;
    let mut apps: Vec<App> = Vec::new();
    while let Some(r) = rows.next()? {
        let id = uuid_at(r, 0)?;
        if apps.last().is_none_or(|app| app.id != id) {
            apps.push(App {
                id,
                name: r.get(1)?,
                owner_id: r.get::<_, Option<[u8; 16]>>(2)?.map(Uuid::from_bytes),
                client_id: r.get(3)?,
                redirect_uris: Vec::new(),
                created_at: from_micros(r.get(4)?),
            });
        }
        if let Some(uri) = r.get::<_, Option<String>>(5)? {
            apps.last_mut().expect("its app was pushed above").redirect_uris.push(uri);
        }
    }
    Ok(apps)
}

/// The app with this id.
fn app_with_id(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<App>> {
    Ok(apps_where(conn, "WHERE a.id = ?1", [id.as_bytes()])?.pop())
}

/// Stores `uris` as the app's redirect URIs, in their order; the app has none before.
fn insert_redirect_uris(conn: &Connection, id: Uuid, uris: &[String]) -> rusqlite::Result<()> {
    let mut insert =
        conn.prepare_cached("INSERT INTO app_redirect_uris (app_id, position, uri) VALUES (?1, ?2, ?3)")?;
    for (position, uri) in uris.iter().enumerate() {
        insert.execute(params![id.as_bytes(), to_i64(position as u64), uri])?;
    }
    Ok(())
}

fn device(r: &Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device { id: uuid_at(r, 0)?, name: r.get(1)?, platform: r.get(2)?, created_at: from_micros(r.get(3)?) })
}

/// The optimistic envelope write, inside the caller's transaction.
fn put_key_in(
    tx: &rusqlite::Transaction<'_>,
    stream: StreamId,
    envelope: &[u8],
    expected_version: u64,
) -> rusqlite::Result<PutKeyOutcome> {
    let current: u64 = tx
        .query_row(
            "SELECT version FROM key_envelopes WHERE app_id = ?1 AND user_id = ?2",
            params![stream.app_id.as_bytes(), stream.user_id.as_bytes()],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .map_or(0, to_u64);
    if current != expected_version {
        return Ok(PutKeyOutcome::Conflict { current });
    }
    let version = current + 1;
    tx.execute(
        "INSERT INTO key_envelopes (app_id, user_id, envelope, version, updated_at) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (app_id, user_id) DO UPDATE SET \
             envelope = excluded.envelope, version = excluded.version, updated_at = excluded.updated_at",
        params![stream.app_id.as_bytes(), stream.user_id.as_bytes(), envelope, to_i64(version), now_micros()],
    )?;
    Ok(PutKeyOutcome::Stored { version })
}

/// The versions of the account's key envelopes, `(app, version)`. Inside the writer's transaction, which holds
/// SQLite's one write lock, they cannot change before the writes a check of them allows.
fn key_versions(tx: &rusqlite::Transaction<'_>, user_id: Uuid) -> rusqlite::Result<Vec<(Uuid, u64)>> {
    tx.prepare("SELECT app_id, version FROM key_envelopes WHERE user_id = ?1")?
        .query_map([user_id.as_bytes()], |r| Ok((uuid_at(r, 0)?, to_u64(r.get(1)?))))?
        .collect()
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_user(&self, u: NewUser) -> Result<(), StoreError> {
        self.with_writer(move |conn| {
            conn.execute(
                "INSERT INTO users (id, email, salt, login_key_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![u.id.as_bytes(), u.email, u.salt, u.login_key_hash, now_micros()],
            )
            .map(drop)
        })
        .await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let email = email.to_owned();
        self.with_reader(move |conn| {
            conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1"))?
                .query_row([email], user)
                .optional()
        })
        .await
    }

    async fn user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        self.with_reader(move |conn| {
            conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
                .query_row([id.as_bytes()], user)
                .optional()
        })
        .await
    }

    async fn token_standing(
        &self,
        stream: StreamId,
        device_id: Option<Uuid>,
    ) -> Result<Option<TokenStanding>, StoreError> {
        // On every authenticated request: one read on three primary keys. A NULL device id matches no row.
        self.with_reader(move |conn| {
            conn.prepare_cached(
                "SELECT u.token_version, EXISTS (SELECT 1 FROM devices d \
                     WHERE d.id = ?3 AND d.app_id = ?2 AND d.user_id = u.id), \
                     EXISTS (SELECT 1 FROM apps a WHERE a.id = ?2) \
                 FROM users u WHERE u.id = ?1",
            )?
            .query_row(
                params![stream.user_id.as_bytes(), stream.app_id.as_bytes(), device_id.as_ref().map(Uuid::as_bytes)],
                |r| {
                    Ok(TokenStanding {
                        token_version: to_u64(r.get(0)?),
                        device_registered: r.get(1)?,
                        app_exists: r.get(2)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn change_login_key(&self, change: LoginKeyChange) -> Result<LoginKeyChanged, StoreError> {
        self.with_writer(move |conn| {
            let tx = conn.transaction()?;
            let token_version = tx
                .query_row(
                    "UPDATE users SET salt = ?3, login_key_hash = ?4, token_version = token_version + 1, \
                     recovery_key_hash = NULL WHERE id = ?1 AND token_version = ?2 RETURNING token_version",
                    params![
                        change.user_id.as_bytes(),
                        to_i64(change.expected_token_version),
                        change.salt,
                        change.login_key_hash
                    ],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?;
            let Some(token_version) = token_version.map(to_u64) else {
                return Ok(LoginKeyChanged::TokenRevoked);
            };
            // The writer holds SQLite's one write lock, so nothing changes between this check and the writes.
            let stored = key_versions(&tx, change.user_id)?;
            if let Some(conflict) = change.key_conflict(&stored) {
                // Dropping the transaction rolls the password change back.
                return Ok(conflict);
            }
            for key in &change.rewrapped_keys {
                tx.execute(
                    "UPDATE key_envelopes SET envelope = ?3, version = version + 1, updated_at = ?4 \
                     WHERE app_id = ?1 AND user_id = ?2",
                    params![key.app_id.as_bytes(), change.user_id.as_bytes(), key.envelope, now_micros()],
                )?;
            }
            // A password change ends the recovery key, so that one set with a stolen password does not outlive it.
            tx.execute(
                "UPDATE key_envelopes SET recovery_envelope = NULL WHERE user_id = ?1",
                params![change.user_id.as_bytes()],
            )?;
            tx.commit()?;
            Ok(LoginKeyChanged::Changed { token_version })
        })
        .await
    }

    async fn set_recovery_key(&self, change: RecoveryKeyChange) -> Result<Option<RecoveryKeyRefused>, StoreError> {
        self.with_writer(move |conn| {
            let tx = conn.transaction()?;
            // The password first: a password change also moves every key envelope's version, and it is the
            // reason to give.
            let set = tx.execute(
                "UPDATE users SET recovery_key_hash = ?2 WHERE id = ?1 AND login_key_hash = ?3",
                params![change.user_id.as_bytes(), change.recovery_key_hash, change.expected_login_key_hash],
            )?;
            if set == 0 {
                return Ok(Some(RecoveryKeyRefused::PasswordChanged));
            }
            if let Some(conflict) = change.key_conflict(&key_versions(&tx, change.user_id)?) {
                // Dropping the transaction rolls the new hash back.
                return Ok(Some(RecoveryKeyRefused::KeyConflict(conflict)));
            }
            for key in &change.recovery_envelopes {
                tx.execute(
                    "UPDATE key_envelopes SET recovery_envelope = ?3 WHERE app_id = ?1 AND user_id = ?2",
                    params![key.app_id.as_bytes(), change.user_id.as_bytes(), key.envelope],
                )?;
            }
            tx.commit()?;
            Ok(None)
        })
        .await
    }

    async fn recovery(&self, user_id: Uuid) -> Result<Option<AccountRecovery>, StoreError> {
        self.with_reader(move |conn| {
            // One read transaction, so the hash and the envelopes are of the same moment.
            let tx = conn.transaction()?;
            let hash: Option<Vec<u8>> = tx
                .query_row("SELECT recovery_key_hash FROM users WHERE id = ?1", [user_id.as_bytes()], |r| {
                    r.get::<_, Option<Vec<u8>>>(0)
                })
                .optional()?
                .flatten();
            let Some(recovery_key_hash) = hash else { return Ok(None) };
            let keys = tx
                .prepare(
                    "SELECT app_id, version, recovery_envelope FROM key_envelopes WHERE user_id = ?1 ORDER BY app_id",
                )?
                .query_map([user_id.as_bytes()], |r| {
                    Ok(RecoverableKey {
                        app_id: uuid_at(r, 0)?,
                        version: to_u64(r.get(1)?),
                        recovery_envelope: r.get(2)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some(AccountRecovery { recovery_key_hash, keys }))
        })
        .await
    }

    async fn recover(&self, recovery: Recovery) -> Result<Recovered, StoreError> {
        self.with_writer(move |conn| {
            let tx = conn.transaction()?;
            let token_version = tx
                .query_row(
                    "UPDATE users SET salt = ?3, login_key_hash = ?4, recovery_key_hash = ?5, \
                         token_version = token_version + 1 \
                     WHERE id = ?1 AND recovery_key_hash = ?2 RETURNING token_version",
                    params![
                        recovery.user_id.as_bytes(),
                        recovery.expected_recovery_key_hash,
                        recovery.salt,
                        recovery.login_key_hash,
                        recovery.recovery_key_hash
                    ],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?;
            let Some(token_version) = token_version.map(to_u64) else {
                return Ok(Recovered::RecoveryKeyChanged);
            };
            if let Some(conflict) = recovery.key_conflict(&key_versions(&tx, recovery.user_id)?) {
                // Dropping the transaction rolls the new password back.
                return Ok(Recovered::KeyConflict(conflict));
            }
            for key in &recovery.keys {
                tx.execute(
                    "UPDATE key_envelopes SET envelope = ?3, recovery_envelope = ?4, version = version + 1, \
                         updated_at = ?5 \
                     WHERE app_id = ?1 AND user_id = ?2",
                    params![
                        key.app_id.as_bytes(),
                        recovery.user_id.as_bytes(),
                        key.envelope,
                        key.recovery_envelope,
                        now_micros()
                    ],
                )?;
            }
            tx.commit()?;
            Ok(Recovered::Changed { token_version })
        })
        .await
    }

    async fn create_app(&self, new: NewApp) -> Result<App, StoreError> {
        self.with_writer(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO apps (id, name, api_key_hash, created_at, owner_id, client_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    new.id.as_bytes(),
                    new.name,
                    new.api_key_hash,
                    now_micros(),
                    new.owner_id.as_ref().map(Uuid::as_bytes),
                    new.client_id
                ],
            )?;
            insert_redirect_uris(&tx, new.id, &new.redirect_uris)?;
            let app = app_with_id(&tx, new.id)?.expect("inserted above");
            tx.commit()?;
            Ok(app)
        })
        .await
    }

    async fn app(&self, id: Uuid) -> Result<Option<App>, StoreError> {
        self.with_reader(move |conn| app_with_id(conn, id)).await
    }

    async fn app_by_key_hash(&self, api_key_hash: &[u8]) -> Result<Option<App>, StoreError> {
        let hash = api_key_hash.to_vec();
        self.with_reader(move |conn| Ok(apps_where(conn, "WHERE a.api_key_hash = ?1", [hash])?.pop())).await
    }

    async fn apps(&self, owner: Option<Uuid>) -> Result<Vec<App>, StoreError> {
        self.with_reader(move |conn| match owner {
            Some(owner) => apps_where(conn, "WHERE a.owner_id = ?1", [owner.as_bytes()]),
            None => apps_where(conn, "", params![]),
        })
        .await
    }

    async fn set_redirect_uris(&self, id: Uuid, redirect_uris: &[String]) -> Result<Option<App>, StoreError> {
        let redirect_uris = redirect_uris.to_vec();
        self.with_writer(move |conn| {
            let tx = conn.transaction()?;
            if app_with_id(&tx, id)?.is_none() {
                return Ok(None);
            }
            tx.execute("DELETE FROM app_redirect_uris WHERE app_id = ?1", [id.as_bytes()])?;
            insert_redirect_uris(&tx, id, &redirect_uris)?;
            let app = app_with_id(&tx, id)?;
            tx.commit()?;
            Ok(app)
        })
        .await
    }

    async fn set_api_key_hash(&self, id: Uuid, api_key_hash: &[u8]) -> Result<bool, StoreError> {
        let hash = api_key_hash.to_vec();
        self.with_writer(move |conn| {
            conn.execute("UPDATE apps SET api_key_hash = ?2 WHERE id = ?1", params![id.as_bytes(), hash]).map(|n| n > 0)
        })
        .await
    }

    async fn delete_app(&self, id: Uuid) -> Result<bool, StoreError> {
        self.with_writer(move |conn| {
            let tx = conn.transaction()?;
            if tx.execute("DELETE FROM apps WHERE id = ?1", [id.as_bytes()])? == 0 {
                return Ok(false);
            }
            for table in APP_DATA {
                tx.execute(&format!("DELETE FROM {table} WHERE app_id = ?1"), [id.as_bytes()])?;
            }
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn app_by_client_id(&self, client_id: &str) -> Result<Option<App>, StoreError> {
        let client_id = client_id.to_owned();
        self.with_reader(move |conn| Ok(apps_where(conn, "WHERE a.client_id = ?1", [client_id])?.pop())).await
    }

    async fn store_authorization_code(&self, code: AuthorizationCode, now: OffsetDateTime) -> Result<(), StoreError> {
        self.with_writer(move |conn| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM oauth_codes WHERE expires_at < ?1", [to_micros(now)])?;
            tx.execute(
                "INSERT INTO oauth_codes \
                 (code_hash, app_id, user_id, redirect_uri, code_challenge, token_version, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    code.code_hash,
                    code.app_id.as_bytes(),
                    code.user_id.as_bytes(),
                    code.redirect_uri,
                    code.code_challenge,
                    to_i64(code.token_version),
                    to_micros(code.expires_at),
                ],
            )?;
            tx.commit()
        })
        .await
    }

    async fn redeem_authorization_code(&self, code_hash: &[u8]) -> Result<Option<AuthorizationCode>, StoreError> {
        let code_hash = code_hash.to_vec();
        self.with_writer(move |conn| {
            conn.query_row(
                "DELETE FROM oauth_codes WHERE code_hash = ?1 \
                 RETURNING code_hash, app_id, user_id, redirect_uri, code_challenge, token_version, expires_at",
                [code_hash],
                |r| {
                    Ok(AuthorizationCode {
                        code_hash: r.get(0)?,
                        app_id: uuid_at(r, 1)?,
                        user_id: uuid_at(r, 2)?,
                        redirect_uri: r.get(3)?,
                        code_challenge: r.get(4)?,
                        token_version: to_u64(r.get(5)?),
                        expires_at: from_micros(r.get(6)?),
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn app_plan(&self, app_id: Uuid) -> Result<Option<PlanRecord>, StoreError> {
        self.with_reader(move |conn| {
            conn.query_row(
                "SELECT storage_bytes, burst, next_storage_bytes, next_burst, next_from_period \
                 FROM app_plans WHERE app_id = ?1",
                [app_id.as_bytes()],
                |r| {
                    let next = match (r.get::<_, Option<i64>>(2)?, r.get::<_, Option<u32>>(3)?, r.get(4)?) {
                        (Some(storage), Some(burst), Some(from_period)) => {
                            Some(PendingPlan { storage_bytes: to_u64(storage), burst, from_period })
                        }
                        _ => None,
                    };
                    Ok(PlanRecord { storage_bytes: to_u64(r.get(0)?), burst: r.get(1)?, next })
                },
            )
            .optional()
        })
        .await
    }

    async fn set_app_plan(&self, app_id: Uuid, plan: PlanRecord) -> Result<bool, StoreError> {
        self.with_writer(move |conn| {
            if app_with_id(conn, app_id)?.is_none() {
                return Ok(false);
            }
            let next = plan.next;
            conn.execute(
                "INSERT INTO app_plans \
                 (app_id, storage_bytes, burst, next_storage_bytes, next_burst, next_from_period) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (app_id) DO UPDATE SET storage_bytes = excluded.storage_bytes, burst = excluded.burst, \
                 next_storage_bytes = excluded.next_storage_bytes, next_burst = excluded.next_burst, \
                 next_from_period = excluded.next_from_period",
                params![
                    app_id.as_bytes(),
                    to_i64(plan.storage_bytes),
                    plan.burst,
                    next.map(|n| to_i64(n.storage_bytes)),
                    next.map(|n| n.burst),
                    next.map(|n| n.from_period),
                ],
            )?;
            Ok(true)
        })
        .await
    }

    async fn upsert_device(
        &self,
        stream: StreamId,
        new_id: Uuid,
        name: &str,
        platform: &str,
    ) -> Result<Device, StoreError> {
        let (name, platform) = (name.to_owned(), platform.to_owned());
        self.with_writer(move |conn| {
            conn.query_row(
                "INSERT INTO devices (id, app_id, user_id, name, platform, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (app_id, user_id, name) DO UPDATE SET platform = excluded.platform \
                 RETURNING id, name, platform, created_at",
                params![
                    new_id.as_bytes(),
                    stream.app_id.as_bytes(),
                    stream.user_id.as_bytes(),
                    name,
                    platform,
                    now_micros()
                ],
                device,
            )
        })
        .await
    }

    async fn devices(&self, stream: StreamId) -> Result<Vec<Device>, StoreError> {
        self.with_reader(move |conn| {
            conn.prepare_cached(
                "SELECT id, name, platform, created_at FROM devices WHERE app_id = ?1 AND user_id = ?2 \
                 ORDER BY created_at, id",
            )?
            .query_map(params![stream.app_id.as_bytes(), stream.user_id.as_bytes()], device)?
            .collect()
        })
        .await
    }

    async fn has_device(&self, stream: StreamId, id: Uuid) -> Result<bool, StoreError> {
        self.with_reader(move |conn| {
            conn.prepare_cached("SELECT 1 FROM devices WHERE id = ?1 AND app_id = ?2 AND user_id = ?3")?
                .exists(params![id.as_bytes(), stream.app_id.as_bytes(), stream.user_id.as_bytes()])
        })
        .await
    }

    async fn delete_device(&self, stream: StreamId, id: Uuid) -> Result<bool, StoreError> {
        self.with_writer(move |conn| {
            conn.execute(
                "DELETE FROM devices WHERE id = ?1 AND app_id = ?2 AND user_id = ?3",
                params![id.as_bytes(), stream.app_id.as_bytes(), stream.user_id.as_bytes()],
            )
            .map(|n| n > 0)
        })
        .await
    }

    async fn put_key(
        &self,
        stream: StreamId,
        envelope: &[u8],
        expected_version: u64,
    ) -> Result<PutKeyOutcome, StoreError> {
        let envelope = envelope.to_vec();
        self.with_writer(move |conn| {
            let tx = conn.transaction()?;
            let outcome = put_key_in(&tx, stream, &envelope, expected_version)?;
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn key(&self, stream: StreamId) -> Result<Option<KeyEnvelope>, StoreError> {
        self.with_reader(move |conn| {
            conn.query_row(
                "SELECT envelope, version FROM key_envelopes WHERE app_id = ?1 AND user_id = ?2",
                params![stream.app_id.as_bytes(), stream.user_id.as_bytes()],
                |r| Ok(KeyEnvelope { envelope: r.get(0)?, version: to_u64(r.get(1)?) }),
            )
            .optional()
        })
        .await
    }

    async fn account_keys(&self, user_id: Uuid) -> Result<Vec<AppKeyEnvelope>, StoreError> {
        self.with_reader(move |conn| {
            conn.prepare("SELECT app_id, envelope, version FROM key_envelopes WHERE user_id = ?1 ORDER BY app_id")?
                .query_map([user_id.as_bytes()], |r| {
                    let key = KeyEnvelope { envelope: r.get(1)?, version: to_u64(r.get(2)?) };
                    Ok(AppKeyEnvelope { app_id: uuid_at(r, 0)?, key })
                })?
                .collect()
        })
        .await
    }

    async fn secret(&self, name: SecretName, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
        let (name, candidate) = (name.as_str(), candidate.to_vec());
        self.with_writer(move |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO server_secrets (name, value) VALUES (?1, ?2)",
                params![name, candidate],
            )?;
            conn.query_row("SELECT value FROM server_secrets WHERE name = ?1", [name], |r| r.get(0))
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        <Self as ChangelogStore>::ping(self).await
    }
}
