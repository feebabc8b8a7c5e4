use async_trait::async_trait;
use synckit_store::{
    AccountRecovery, AccountStore, App, AppKeyEnvelope, AuthorizationCode, ChangelogStore, Device, KeyEnvelope,
    LoginKeyChange, LoginKeyChanged, NewApp, NewUser, PendingPlan, PlanRecord, PutKeyOutcome, RecoverableKey,
    Recovered, Recovery, RecoveryKeyChange, RecoveryKeyRefused, SecretName, StoreError, StreamId, TokenStanding, User,
};
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use tracing::instrument;
use uuid::Uuid;

use crate::error::db_error;
use crate::{PgStore, to_i64, to_u64};

const USER_COLUMNS: &str = "id, email, salt, login_key_hash, token_version";
const APP_COLUMNS: &str = "id, name, owner_id, client_id, redirect_uris, created_at";

/// The user's token version, whether the token's device is still theirs in this app, and whether the app still
/// exists: on every authenticated request, one round trip on three primary keys, prepared. The device is found by its
/// id alone and its app and user compared in the select list, so that no cached plan can walk the user's other
/// devices through the (app, user, name) index instead. A NULL device id matches no row: a sign-in token's check is
/// the user and app lookups.
pub(crate) const TOKEN_STANDING: &str = "SELECT u.token_version, \
     COALESCE((SELECT d.app_id = $2 AND d.user_id = u.id FROM devices d WHERE d.id = $3), false), \
     EXISTS (SELECT 1 FROM apps a WHERE a.id = $2) \
     FROM users u WHERE u.id = $1";

/// What deleting an app removes besides its row, table by table, each by the app id that leads its primary key (or
/// unique index). Streams go first: deleting a head row waits for a push holding its lock, so that push's entries
/// have committed before the entries are deleted.
const APP_DATA: [&str; 6] = ["streams", "changes", "devices", "key_envelopes", "blobs", "usage_days"];

fn user(row: &Row) -> User {
    User {
        id: row.get(0),
        email: row.get(1),
        salt: row.get(2),
        login_key_hash: row.get(3),
        token_version: to_u64(row.get(4)),
    }
}

fn app(row: &Row) -> App {
    App {
        id: row.get(0),
        name: row.get(1),
        owner_id: row.get(2),
        client_id: row.get(3),
        redirect_uris: row.get(4),
        created_at: row.get(5),
    }
}

fn device(row: &Row) -> Device {
    Device { id: row.get(0), name: row.get(1), platform: row.get(2), created_at: row.get(3) }
}

/// The optimistic envelope write, on a connection or inside the caller's transaction.
async fn put_key_in(
    client: &(impl tokio_postgres::GenericClient + Sync),
    stream: StreamId,
    envelope: &[u8],
    expected_version: u64,
) -> Result<PutKeyOutcome, StoreError> {
    let (app, user) = (&stream.app_id, &stream.user_id);
    let written = if expected_version == 0 {
        client
            .query_opt(
                "INSERT INTO key_envelopes (app_id, user_id, envelope, version) VALUES ($1, $2, $3, 1) \
                     ON CONFLICT DO NOTHING RETURNING version",
                &[app, user, &envelope],
            )
            .await
    } else {
        client
            .query_opt(
                "UPDATE key_envelopes SET envelope = $3, version = version + 1, updated_at = now() \
                     WHERE app_id = $1 AND user_id = $2 AND version = $4 RETURNING version",
                &[app, user, &envelope, &to_i64(expected_version)],
            )
            .await
    }
    .map_err(db_error)?;
    if let Some(row) = written {
        return Ok(PutKeyOutcome::Stored { version: to_u64(row.get(0)) });
    }
    let current = client
        .query_opt("SELECT version FROM key_envelopes WHERE app_id = $1 AND user_id = $2", &[app, user])
        .await
        .map_err(db_error)?
        .map_or(0, |r| to_u64(r.get(0)));
    Ok(PutKeyOutcome::Conflict { current })
}

/// The versions of the account's key envelopes, `(app, version)`, locked until the transaction ends so that none
/// changes between a check and the writes it allows.
async fn locked_key_versions(
    tx: &tokio_postgres::Transaction<'_>,
    user_id: Uuid,
) -> Result<Vec<(Uuid, u64)>, StoreError> {
    Ok(tx
        .query("SELECT app_id, version FROM key_envelopes WHERE user_id = $1 FOR UPDATE", &[&user_id])
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| (r.get(0), to_u64(r.get(1))))
        .collect())
}

#[async_trait]
impl AccountStore for PgStore {
    #[instrument(level = "debug", name = "postgres create_user", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "create_user"))]
    async fn create_user(&self, u: NewUser) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO users (id, email, salt, login_key_hash) VALUES ($1, $2, $3, $4)",
                &[&u.id, &u.email, &u.salt, &u.login_key_hash],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    #[instrument(level = "debug", name = "postgres user_by_email", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "user_by_email"))]
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
        let client = self.client().await?;
        let stmt = client.prepare_cached(&sql).await.map_err(db_error)?;
        Ok(client.query_opt(&stmt, &[&email]).await.map_err(db_error)?.as_ref().map(user))
    }

    #[instrument(level = "debug", name = "postgres user", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "user"))]
    async fn user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        // On every authenticated request (the token version check): keep it prepared.
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let client = self.client().await?;
        let stmt = client.prepare_cached(&sql).await.map_err(db_error)?;
        Ok(client.query_opt(&stmt, &[&id]).await.map_err(db_error)?.as_ref().map(user))
    }

    #[instrument(level = "debug", name = "postgres token_standing", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "token_standing"))]
    async fn token_standing(
        &self,
        stream: StreamId,
        device_id: Option<Uuid>,
    ) -> Result<Option<TokenStanding>, StoreError> {
        // Its own pool: see `PgStore::token_pool`.
        let client = self.token_client().await?;
        let stmt = client.prepare_cached(TOKEN_STANDING).await.map_err(db_error)?;
        let row = client.query_opt(&stmt, &[&stream.user_id, &stream.app_id, &device_id]).await.map_err(db_error)?;
        Ok(row.map(|r| TokenStanding {
            token_version: to_u64(r.get(0)),
            device_registered: r.get(1),
            app_exists: r.get(2),
        }))
    }

    #[instrument(level = "debug", name = "postgres change_login_key", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "change_login_key"))]
    async fn change_login_key(&self, change: LoginKeyChange) -> Result<LoginKeyChanged, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let row = tx
            .query_opt(
                "UPDATE users SET salt = $3, login_key_hash = $4, token_version = token_version + 1, \
                 recovery_key_hash = NULL WHERE id = $1 AND token_version = $2 RETURNING token_version",
                &[&change.user_id, &to_i64(change.expected_token_version), &change.salt, &change.login_key_hash],
            )
            .await
            .map_err(db_error)?;
        let Some(token_version) = row.map(|r| to_u64(r.get(0))) else {
            return Ok(LoginKeyChanged::TokenRevoked);
        };
        // Locked, so that no envelope of the account changes between this check and the writes below.
        let stored = locked_key_versions(&tx, change.user_id).await?;
        if let Some(conflict) = change.key_conflict(&stored) {
            // Dropping the transaction rolls the password change back.
            return Ok(conflict);
        }
        for key in &change.rewrapped_keys {
            tx.execute(
                "UPDATE key_envelopes SET envelope = $3, version = version + 1, updated_at = now() \
                 WHERE app_id = $1 AND user_id = $2",
                &[&key.app_id, &change.user_id, &key.envelope],
            )
            .await
            .map_err(db_error)?;
        }
        // A password change ends the recovery key, so that one set with a stolen password does not outlive it.
        tx.execute("UPDATE key_envelopes SET recovery_envelope = NULL WHERE user_id = $1", &[&change.user_id])
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(LoginKeyChanged::Changed { token_version })
    }

    #[instrument(level = "debug", name = "postgres set_recovery_key", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "set_recovery_key"))]
    async fn set_recovery_key(&self, change: RecoveryKeyChange) -> Result<Option<RecoveryKeyRefused>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        // The user row first, then the envelopes, in the order of the password change and the recovery, so that
        // none of them waits on another in a cycle. A password change committed meanwhile makes the row no longer
        // match (Postgres re-reads it once the change's lock is released).
        let set = tx
            .execute(
                "UPDATE users SET recovery_key_hash = $2 WHERE id = $1 AND login_key_hash = $3",
                &[&change.user_id, &change.recovery_key_hash, &change.expected_login_key_hash],
            )
            .await
            .map_err(db_error)?;
        if set == 0 {
            return Ok(Some(RecoveryKeyRefused::PasswordChanged));
        }
        let stored = locked_key_versions(&tx, change.user_id).await?;
        if let Some(conflict) = change.key_conflict(&stored) {
            // Dropping the transaction rolls the new hash back.
            return Ok(Some(RecoveryKeyRefused::KeyConflict(conflict)));
        }
        for key in &change.recovery_envelopes {
            tx.execute(
                "UPDATE key_envelopes SET recovery_envelope = $3 WHERE app_id = $1 AND user_id = $2",
                &[&key.app_id, &change.user_id, &key.envelope],
            )
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(None)
    }

    #[instrument(level = "debug", name = "postgres recovery", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "recovery"))]
    async fn recovery(&self, user_id: Uuid) -> Result<Option<AccountRecovery>, StoreError> {
        // One statement, so one snapshot: the hash and the envelopes of the same recovery key, even while a
        // recovery or a new recovery key commits.
        let rows = self
            .client()
            .await?
            .query(
                "SELECT u.recovery_key_hash, k.app_id, k.version, k.recovery_envelope \
                 FROM users u LEFT JOIN key_envelopes k ON k.user_id = u.id \
                 WHERE u.id = $1 AND u.recovery_key_hash IS NOT NULL ORDER BY k.app_id",
                &[&user_id],
            )
            .await
            .map_err(db_error)?;
        let Some(first) = rows.first() else { return Ok(None) };
        let keys = rows
            .iter()
            .filter_map(|r| {
                let app_id: Option<Uuid> = r.get(1);
                Some(RecoverableKey { app_id: app_id?, version: to_u64(r.get(2)), recovery_envelope: r.get(3) })
            })
            .collect();
        Ok(Some(AccountRecovery { recovery_key_hash: first.get(0), keys }))
    }

    #[instrument(level = "debug", name = "postgres recover", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "recover"))]
    async fn recover(&self, recovery: Recovery) -> Result<Recovered, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let row = tx
            .query_opt(
                "UPDATE users SET salt = $3, login_key_hash = $4, recovery_key_hash = $5, \
                 token_version = token_version + 1 \
                 WHERE id = $1 AND recovery_key_hash = $2 RETURNING token_version",
                &[
                    &recovery.user_id,
                    &recovery.expected_recovery_key_hash,
                    &recovery.salt,
                    &recovery.login_key_hash,
                    &recovery.recovery_key_hash,
                ],
            )
            .await
            .map_err(db_error)?;
        let Some(token_version) = row.map(|r| to_u64(r.get(0))) else {
            return Ok(Recovered::RecoveryKeyChanged);
        };
        let stored = locked_key_versions(&tx, recovery.user_id).await?;
        if let Some(conflict) = recovery.key_conflict(&stored) {
            // Dropping the transaction rolls the new password back.
            return Ok(Recovered::KeyConflict(conflict));
        }
        for key in &recovery.keys {
            tx.execute(
                "UPDATE key_envelopes SET envelope = $3, recovery_envelope = $4, version = version + 1,                      updated_at = now()                  WHERE app_id = $1 AND user_id = $2",
                &[&key.app_id, &recovery.user_id, &key.envelope, &key.recovery_envelope],
            )
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(Recovered::Changed { token_version })
    }

    #[instrument(level = "debug", name = "postgres create_app", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "create_app"))]
    async fn create_app(&self, new: NewApp) -> Result<App, StoreError> {
        let sql = format!(
            "INSERT INTO apps (id, name, owner_id, client_id, redirect_uris, api_key_hash) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {APP_COLUMNS}"
        );
        let params: [&(dyn ToSql + Sync); 6] =
            [&new.id, &new.name, &new.owner_id, &new.client_id, &new.redirect_uris, &new.api_key_hash];
        let row = self.client().await?.query_one(&sql, &params).await.map_err(db_error)?;
        Ok(app(&row))
    }

    #[instrument(level = "debug", name = "postgres app", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "app"))]
    async fn app(&self, id: Uuid) -> Result<Option<App>, StoreError> {
        let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE id = $1");
        let row = self.client().await?.query_opt(&sql, &[&id]).await.map_err(db_error)?;
        Ok(row.as_ref().map(app))
    }

    #[instrument(level = "debug", name = "postgres app_by_key_hash", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "app_by_key_hash"))]
    async fn app_by_key_hash(&self, api_key_hash: &[u8]) -> Result<Option<App>, StoreError> {
        let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE api_key_hash = $1");
        let row = self.client().await?.query_opt(&sql, &[&api_key_hash]).await.map_err(db_error)?;
        Ok(row.as_ref().map(app))
    }

    #[instrument(level = "debug", name = "postgres apps", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "apps"))]
    async fn apps(&self, owner: Option<Uuid>) -> Result<Vec<App>, StoreError> {
        let client = self.client().await?;
        let rows = match owner {
            Some(owner) => {
                let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE owner_id = $1 ORDER BY created_at, id");
                client.query(&sql, &[&owner]).await
            }
            None => client.query(&format!("SELECT {APP_COLUMNS} FROM apps ORDER BY created_at, id"), &[]).await,
        }
        .map_err(db_error)?;
        Ok(rows.iter().map(app).collect())
    }

    #[instrument(level = "debug", name = "postgres set_redirect_uris", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "set_redirect_uris"))]
    async fn set_redirect_uris(&self, id: Uuid, redirect_uris: &[String]) -> Result<Option<App>, StoreError> {
        let sql = format!("UPDATE apps SET redirect_uris = $2 WHERE id = $1 RETURNING {APP_COLUMNS}");
        let row = self.client().await?.query_opt(&sql, &[&id, &redirect_uris]).await.map_err(db_error)?;
        Ok(row.as_ref().map(app))
    }

    #[instrument(level = "debug", name = "postgres set_api_key_hash", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "set_api_key_hash"))]
    async fn set_api_key_hash(&self, id: Uuid, api_key_hash: &[u8]) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute("UPDATE apps SET api_key_hash = $2 WHERE id = $1", &[&id, &api_key_hash])
            .await
            .map_err(db_error)?;
        Ok(n > 0)
    }

    #[instrument(level = "debug", name = "postgres delete_app", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "delete_app"))]
    async fn delete_app(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        if tx.execute("DELETE FROM apps WHERE id = $1", &[&id]).await.map_err(db_error)? == 0 {
            return Ok(false);
        }
        for table in APP_DATA {
            tx.execute(&format!("DELETE FROM {table} WHERE app_id = $1"), &[&id]).await.map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    #[instrument(level = "debug", name = "postgres app_by_client_id", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "app_by_client_id"))]
    async fn app_by_client_id(&self, client_id: &str) -> Result<Option<App>, StoreError> {
        let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE client_id = $1");
        let row = self.client().await?.query_opt(&sql, &[&client_id]).await.map_err(db_error)?;
        Ok(row.as_ref().map(app))
    }

    #[instrument(level = "debug", name = "postgres store_authorization_code", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "store_authorization_code"))]
    async fn store_authorization_code(&self, code: AuthorizationCode, now: OffsetDateTime) -> Result<(), StoreError> {
        // One statement: the sweep of expired grants rides along with the insert.
        self.client()
            .await?
            .execute(
                "WITH swept AS (DELETE FROM oauth_codes WHERE expires_at < $8) \
                 INSERT INTO oauth_codes \
                 (code_hash, app_id, user_id, redirect_uri, code_challenge, token_version, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &code.code_hash,
                    &code.app_id,
                    &code.user_id,
                    &code.redirect_uri,
                    &code.code_challenge,
                    &to_i64(code.token_version),
                    &code.expires_at,
                    &now,
                ],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    #[instrument(level = "debug", name = "postgres redeem_authorization_code", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "redeem_authorization_code"))]
    async fn redeem_authorization_code(&self, code_hash: &[u8]) -> Result<Option<AuthorizationCode>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "DELETE FROM oauth_codes WHERE code_hash = $1 \
                 RETURNING code_hash, app_id, user_id, redirect_uri, code_challenge, token_version, expires_at",
                &[&code_hash],
            )
            .await
            .map_err(db_error)?;
        Ok(row.map(|r| AuthorizationCode {
            code_hash: r.get(0),
            app_id: r.get(1),
            user_id: r.get(2),
            redirect_uri: r.get(3),
            code_challenge: r.get(4),
            token_version: to_u64(r.get(5)),
            expires_at: r.get(6),
        }))
    }

    #[instrument(level = "debug", name = "postgres app_plan", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "app_plan"))]
    async fn app_plan(&self, app_id: Uuid) -> Result<Option<PlanRecord>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT storage_bytes, burst, next_storage_bytes, next_burst, next_from_period \
                 FROM app_plans WHERE app_id = $1",
                &[&app_id],
            )
            .await
            .map_err(db_error)?;
        Ok(row.map(|r| {
            let next = match (r.get::<_, Option<i64>>(2), r.get::<_, Option<i32>>(3), r.get::<_, Option<i64>>(4)) {
                (Some(storage), Some(burst), Some(from_period)) => Some(PendingPlan {
                    storage_bytes: to_u64(storage),
                    burst: u32::try_from(burst).expect("a stored burst is positive"),
                    from_period,
                }),
                _ => None,
            };
            let burst: i32 = r.get(1);
            PlanRecord {
                storage_bytes: to_u64(r.get(0)),
                burst: u32::try_from(burst).expect("a stored burst is positive"),
                next,
            }
        }))
    }

    #[instrument(level = "debug", name = "postgres set_app_plan", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "set_app_plan"))]
    async fn set_app_plan(&self, app_id: Uuid, plan: PlanRecord) -> Result<bool, StoreError> {
        let burst = |b: u32| i32::try_from(b).expect("a burst is small");
        let next = plan.next;
        // Only for an app that exists: the foreign key would refuse the others with an error.
        let written = self
            .client()
            .await?
            .execute(
                "INSERT INTO app_plans \
                 (app_id, storage_bytes, burst, next_storage_bytes, next_burst, next_from_period) \
                 SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM apps WHERE id = $1) \
                 ON CONFLICT (app_id) DO UPDATE SET storage_bytes = excluded.storage_bytes, burst = excluded.burst, \
                 next_storage_bytes = excluded.next_storage_bytes, next_burst = excluded.next_burst, \
                 next_from_period = excluded.next_from_period",
                &[
                    &app_id,
                    &to_i64(plan.storage_bytes),
                    &burst(plan.burst),
                    &next.map(|n| to_i64(n.storage_bytes)),
                    &next.map(|n| burst(n.burst)),
                    &next.map(|n| n.from_period),
                ],
            )
            .await
            .map_err(db_error)?;
        Ok(written == 1)
    }

    #[instrument(level = "debug", name = "postgres upsert_device", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "upsert_device"))]
    async fn upsert_device(
        &self,
        stream: StreamId,
        new_id: Uuid,
        name: &str,
        platform: &str,
    ) -> Result<Device, StoreError> {
        let row = self
            .client()
            .await?
            .query_one(
                "INSERT INTO devices (id, app_id, user_id, name, platform) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (app_id, user_id, name) DO UPDATE SET platform = EXCLUDED.platform \
                 RETURNING id, name, platform, created_at",
                &[&new_id, &stream.app_id, &stream.user_id, &name, &platform],
            )
            .await
            .map_err(db_error)?;
        Ok(device(&row))
    }

    #[instrument(level = "debug", name = "postgres devices", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "devices"))]
    async fn devices(&self, stream: StreamId) -> Result<Vec<Device>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT id, name, platform, created_at FROM devices WHERE app_id = $1 AND user_id = $2 \
                 ORDER BY created_at, id",
                &[&stream.app_id, &stream.user_id],
            )
            .await
            .map_err(db_error)?;
        Ok(rows.iter().map(device).collect())
    }

    #[instrument(level = "debug", name = "postgres has_device", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "has_device"))]
    async fn has_device(&self, stream: StreamId, id: Uuid) -> Result<bool, StoreError> {
        // On every push: keep it prepared.
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT 1 FROM devices WHERE id = $1 AND app_id = $2 AND user_id = $3")
            .await
            .map_err(db_error)?;
        let row = client.query_opt(&stmt, &[&id, &stream.app_id, &stream.user_id]).await.map_err(db_error)?;
        Ok(row.is_some())
    }

    #[instrument(level = "debug", name = "postgres delete_device", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "delete_device"))]
    async fn delete_device(&self, stream: StreamId, id: Uuid) -> Result<bool, StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "DELETE FROM devices WHERE id = $1 AND app_id = $2 AND user_id = $3",
                &[&id, &stream.app_id, &stream.user_id],
            )
            .await
            .map_err(db_error)?;
        Ok(n > 0)
    }

    #[instrument(level = "debug", name = "postgres put_key", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "put_key"))]
    async fn put_key(
        &self,
        stream: StreamId,
        envelope: &[u8],
        expected_version: u64,
    ) -> Result<PutKeyOutcome, StoreError> {
        put_key_in(&**self.client().await?, stream, envelope, expected_version).await
    }

    #[instrument(level = "debug", name = "postgres key", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "key"))]
    async fn key(&self, stream: StreamId) -> Result<Option<KeyEnvelope>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT envelope, version FROM key_envelopes WHERE app_id = $1 AND user_id = $2",
                &[&stream.app_id, &stream.user_id],
            )
            .await
            .map_err(db_error)?;
        Ok(row.map(|r| KeyEnvelope { envelope: r.get(0), version: to_u64(r.get(1)) }))
    }

    #[instrument(level = "debug", name = "postgres account_keys", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "account_keys"))]
    async fn account_keys(&self, user_id: Uuid) -> Result<Vec<AppKeyEnvelope>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT app_id, envelope, version FROM key_envelopes WHERE user_id = $1 ORDER BY app_id",
                &[&user_id],
            )
            .await
            .map_err(db_error)?;
        Ok(rows
            .iter()
            .map(|r| AppKeyEnvelope {
                app_id: r.get(0),
                key: KeyEnvelope { envelope: r.get(1), version: to_u64(r.get(2)) },
            })
            .collect())
    }

    #[instrument(level = "debug", name = "postgres secret", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "secret"))]
    async fn secret(&self, name: SecretName, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
        let name = name.as_str();
        let client = self.client().await?;
        let inserted = client
            .query_opt(
                "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING value",
                &[&name, &candidate],
            )
            .await
            .map_err(db_error)?;
        if let Some(row) = inserted {
            return Ok(row.get(0));
        }
        // Another instance stored one first (possibly while this insert waited on it): a new statement sees it.
        let row =
            client.query_one("SELECT value FROM server_secrets WHERE name = $1", &[&name]).await.map_err(db_error)?;
        Ok(row.get(0))
    }

    #[instrument(level = "debug", name = "postgres ping", skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "ping"))]
    async fn ping(&self) -> Result<(), StoreError> {
        <Self as ChangelogStore>::ping(self).await
    }
}
