//! What an app syncs.

use serde::{Deserialize, Serialize};

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
    pub op: ChangeOp,
    /// The row's id in the app's schema.
    pub row_id: String,
    /// When the change was made on the device, in milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The row's new content; `None` for a delete.
    pub data: Option<serde_json::Value>,
}

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    Insert,
    Update,
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

/// A stream's size and newest cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Changes stored for this user in this app.
    pub change_count: u64,
    /// The newest change's cursor.
    pub cursor: u64,
}

/// A signed-in session, to save and restore across runs (it holds a bearer token: store it privately).
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
    pub token: String,
    pub user_id: uuid::Uuid,
    pub app_id: uuid::Uuid,
    pub email: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: time::OffsetDateTime,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.user_id)
            .field("app_id", &self.app_id)
            .field("email", &self.email)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}
