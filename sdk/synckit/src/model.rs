//! What an app syncs.

use serde::{Deserialize, Serialize};

/// What [`SyncKitClient::register_device`](crate::SyncKitClient::register_device) and
/// [`SyncKitClient::list_devices`](crate::SyncKitClient::list_devices) return. Its `id` names the device in
/// [`push`](crate::SyncKitClient::push) and [`pull`](crate::SyncKitClient::pull).
///
/// ```no_run
/// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
/// let device: synckit::Device = client.register_device("MacBook", "macos").await?;
/// let page = client.pull(device.id, client.load_cursor(device.id)?).await?;
/// # Ok(()) }
/// ```
// Docs on a re-export are allowed: rustdoc shows them before the protocol crate's own docs on `Device`'s page,
// and runs the example with the others.
pub use synckit_protocol::devices::Device;

/// One change to one row of the app's own schema. The whole entry is encrypted on the device; the server sees
/// none of its fields.
///
/// ```
/// use synckit::{ChangeEntry, ChangeOp};
/// let note = ChangeEntry::upsert("notes", "n1", serde_json::json!({"title": "Hi"}));
/// assert_eq!(note.op, ChangeOp::Update);
/// let gone = ChangeEntry::delete("notes", "n1");
/// assert!(gone.data.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeEntry {
    /// The app's table (or collection, or type) name.
    pub table: String,
    /// Whether the row was inserted, updated or deleted.
    pub op: ChangeOp,
    /// The row's id in the app's schema.
    pub row_id: String,
    /// When the change was made on the device, in milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The row's new content; `None` for a delete.
    pub data: Option<serde_json::Value>,
}

/// What a change does. It is serialised in lowercase.
///
/// ```
/// use synckit::ChangeOp;
/// assert_eq!(serde_json::to_string(&ChangeOp::Delete).unwrap(), r#""delete""#);
/// assert_eq!(serde_json::from_str::<ChangeOp>(r#""insert""#).unwrap(), ChangeOp::Insert);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    /// A new row.
    Insert,
    /// New content for a row (what [`ChangeEntry::upsert`] makes).
    Update,
    /// The row is gone; the entry carries no data.
    Delete,
}

impl ChangeEntry {
    /// A change made now.
    ///
    /// ```
    /// use synckit::{ChangeEntry, ChangeOp};
    /// let e = ChangeEntry::new("notes", ChangeOp::Insert, "n1", Some(serde_json::json!({"title": "Hi"})));
    /// assert!(e.timestamp > 0);
    /// ```
    pub fn new(
        table: impl Into<String>,
        op: ChangeOp,
        row_id: impl Into<String>,
        data: Option<serde_json::Value>,
    ) -> Self {
        let timestamp = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        Self { table: table.into(), op, row_id: row_id.into(), timestamp, data }
    }

    /// An insert made now.
    ///
    /// ```
    /// let e = synckit::ChangeEntry::insert("notes", "n1", serde_json::json!({"title": "Hi"}));
    /// assert_eq!(e.op, synckit::ChangeOp::Insert);
    /// ```
    pub fn insert(table: impl Into<String>, row_id: impl Into<String>, data: serde_json::Value) -> Self {
        Self::new(table, ChangeOp::Insert, row_id, Some(data))
    }

    /// An update made now.
    ///
    /// ```
    /// let e = synckit::ChangeEntry::upsert("notes", "n1", serde_json::json!({"title": "Hello"}));
    /// assert_eq!(e.op, synckit::ChangeOp::Update);
    /// ```
    pub fn upsert(table: impl Into<String>, row_id: impl Into<String>, data: serde_json::Value) -> Self {
        Self::new(table, ChangeOp::Update, row_id, Some(data))
    }

    /// A delete made now.
    ///
    /// ```
    /// let e = synckit::ChangeEntry::delete("notes", "n1");
    /// assert_eq!(e.op, synckit::ChangeOp::Delete);
    /// ```
    pub fn delete(table: impl Into<String>, row_id: impl Into<String>) -> Self {
        Self::new(table, ChangeOp::Delete, row_id, None)
    }
}

/// A stream's size and newest cursor, from [`SyncKitClient::status`](crate::SyncKitClient::status).
///
/// ```no_run
/// # async fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
/// let status = client.status().await?;
/// let caught_up = client.load_cursor(device)? >= status.cursor;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Changes stored for this user in this app.
    pub change_count: u64,
    /// The newest change's cursor.
    pub cursor: u64,
}

/// What [`SyncKitClient::supersede`](crate::SyncKitClient::supersede) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Compacted {
    /// Entries superseded now (not those superseded before).
    pub superseded: u64,
    /// Payload bytes the server no longer stores.
    pub freed_bytes: u64,
}

/// A signed-in session, to save and restore across runs (it holds a bearer token: store it privately).
///
/// After [`authenticate`](crate::SyncKitClient::authenticate) it holds a short-lived sign-in token, which sets up
/// encryption and registers a device; [`register_device`](crate::SyncKitClient::register_device) replaces it with
/// the device's own token, which syncs. Save the session after registering, so a restarted client keeps syncing.
///
/// ```
/// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
/// let saved = serde_json::to_string(&client.session().expect("signed in")).unwrap();
/// // … next run …
/// client.restore_session(serde_json::from_str(&saved).unwrap());
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The bearer token (left out of `Debug` output).
    pub token: String,
    /// The signed-in user.
    pub user_id: uuid::Uuid,
    /// The app the token is for.
    pub app_id: uuid::Uuid,
    /// The email the user signed in with, trimmed and lowercased.
    pub email: String,
    /// When the token stops working; sign in again after that.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: time::OffsetDateTime,
    /// The device the token acts as, once one is registered; `None` for a sign-in token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<uuid::Uuid>,
}

impl Session {
    /// The sign-in session a sign-in (or a recovery) answered, for `email` as the user typed it.
    pub(crate) fn signed_in(auth: synckit_protocol::accounts::AuthResponse, email: &str) -> Self {
        Self {
            token: auth.token,
            user_id: auth.user_id,
            app_id: auth.app_id,
            email: email.trim().to_lowercase(),
            expires_at: auth.expires_at,
            device_id: None,
        }
    }

    /// The sign-in session a browser sign-in's token answered.
    pub(crate) fn from_token(token: synckit_protocol::oauth::TokenResponse) -> Self {
        let lifetime = time::Duration::seconds(i64::try_from(token.expires_in).unwrap_or(i64::MAX));
        Self {
            token: token.access_token,
            user_id: token.user_id,
            app_id: token.app_id,
            email: token.email.trim().to_lowercase(),
            expires_at: time::OffsetDateTime::now_utc().saturating_add(lifetime),
            device_id: None,
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.user_id)
            .field("app_id", &self.app_id)
            .field("email", &self.email)
            .field("expires_at", &self.expires_at)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}
