//! What a pull hands the app: the changes that decrypted, and a report of the entries that did not.
//!
//! An entry that cannot be read is reported and passed over, never fatal. The server is an adversary too, and so is
//! a faulty device holding the user's key: if one bad entry failed its whole page, whoever can write one entry to
//! the stream could stop every device from ever syncing past it. So the page keeps the good changes, lists each
//! unreadable entry as an [`Undecryptable`] (enough to find it again: its `seq`, change id and device), and its
//! cursor moves past both. Nothing is lost on the server: pulling again from before an entry's `seq` returns it again.

use std::fmt;

use serde::{Deserialize, Serialize};
use synckit_protocol::sync::{PullResponse, PulledEntry};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::crypto::Keys;
use crate::model::{ChangeEntry, Session};

/// One page of the user's stream, from [`SyncKitClient::pull`](crate::SyncKitClient::pull).
///
/// ```no_run
/// # async fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
/// let synckit::PullPage { changes, undecryptable, cursor, has_more } = client.pull(device, 0).await?;
/// for skipped in &undecryptable {
///     eprintln!("{skipped}"); // "entry 7 (change …, from device …) skipped: …"
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PullPage {
    /// Other devices' changes, decrypted, oldest first.
    pub changes: Vec<ChangeEntry>,
    /// Entries of other devices that could not be read, oldest first. They are not in `changes`, and `cursor` is
    /// past them: show or log them, since a pull from `cursor` will not report them again.
    pub undecryptable: Vec<Undecryptable>,
    /// The cursor to pass next, past every entry of this page: read, skipped, or the device's own.
    pub cursor: u64,
    /// More entries follow: pull again from `cursor`.
    pub has_more: bool,
}

/// One page of the user's stream as [`sync`](crate::SyncKitClient::sync) hands it to the app: every change that
/// can be read, the syncing device's own included, each with its place in the stream.
///
/// An honest server shows every device the same changes in the same order, so an app that applies each page in
/// order ends with the same data everywhere. Where two devices changed the same row, the change with the larger
/// `seq` is the later one on every device: "last writer wins" compares `seq`, never the devices' clocks. A change
/// the device made and has not pushed yet will land after everything in the stream, so an app that edits rows
/// locally keeps such a row's local content until its own change comes back here (by its change id, which
/// [`enqueue`](crate::SyncKitClient::enqueue) returned); `sdk/examples/notes` shows how.
///
/// The order is the server's word: encryption proves who wrote a change, not where it stands. A hostile server can
/// order changes differently for different devices, or hand over an old change again at a new `seq`, and an app
/// that resolves conflicts by `seq` then takes the old content for the newer (see "Rollback and withholding" in
/// `docs/security.md`).
///
/// ```no_run
/// # async fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
/// // An app that never edits rows locally: the stream, folded in order.
/// let mut rows = std::collections::HashMap::new(); // row id -> (seq, content)
/// client
///     .sync(device, |page| {
///         for synced in page.changes {
///             rows.insert(synced.change.row_id, (synced.seq, synced.change.data));
///         }
///         Ok(())
///     })
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SyncPage {
    /// The changes, oldest first: the syncing device's own too, which tell the app where in the stream its changes
    /// landed.
    pub changes: Vec<SyncedChange>,
    /// Entries that could not be read, oldest first, the device's own included, passed over as
    /// [`PullPage::undecryptable`] says.
    pub undecryptable: Vec<Undecryptable>,
    /// The cursor after this page, which `sync` saves once `apply` accepted the page.
    pub cursor: u64,
}

impl SyncPage {
    /// A page as `sync` would hand it over, for testing an app's `apply`.
    ///
    /// ```
    /// let page = synckit::SyncPage::new(Vec::new(), Vec::new(), 7);
    /// assert_eq!(page.cursor, 7);
    /// ```
    pub fn new(changes: Vec<SyncedChange>, undecryptable: Vec<Undecryptable>, cursor: u64) -> Self {
        Self { changes, undecryptable, cursor }
    }
}

/// A change in the user's stream, where it stands there, and who pushed it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SyncedChange {
    /// Its place in the user's stream, as the server orders it: a later change has a larger `seq`.
    pub seq: u64,
    /// The id it was pushed under (authenticated: it is bound into the encryption).
    pub change_id: Uuid,
    /// The device the server says pushed it. Only as trustworthy as the server: compare `change_id` with the ids
    /// [`enqueue`](crate::SyncKitClient::enqueue) returned to recognise the device's own changes for certain.
    pub device_id: Uuid,
    /// The change itself, decrypted.
    pub change: ChangeEntry,
}

impl SyncedChange {
    /// A change as `sync` would hand it over, for testing an app's `apply`.
    ///
    /// ```
    /// use synckit::{ChangeEntry, SyncedChange};
    /// let synced = SyncedChange::new(3, uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), ChangeEntry::delete("notes", "n1"));
    /// assert_eq!(synced.seq, 3);
    /// ```
    pub fn new(seq: u64, change_id: Uuid, device_id: Uuid, change: ChangeEntry) -> Self {
        Self { seq, change_id, device_id, change }
    }
}

/// What one [`SyncKitClient::sync`](crate::SyncKitClient::sync) did.
///
/// ```no_run
/// # async fn demo(client: &synckit::SyncKitClient, device: uuid::Uuid) -> synckit::Result<()> {
/// let synckit::SyncReport { pushed, pulled, undecryptable, pending, cursor, .. } =
///     client.sync(device, |_page| Ok(())).await?;
/// println!("sent {pushed}, received {pulled}, skipped {}, {pending} waiting, at {cursor}", undecryptable.len());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncReport {
    /// Changes of the outbox the server acknowledged (stored now, or already by an earlier attempt), now gone from
    /// the outbox.
    pub pushed: u64,
    /// Changes of other devices handed to `apply` (it is handed the device's own too, which are not counted here).
    pub pulled: u64,
    /// Entries passed over because they cannot be read, oldest first, as [`PullPage::undecryptable`] reports them
    /// (they were in the pages handed to `apply` too).
    pub undecryptable: Vec<Undecryptable>,
    /// Changes still in the outbox afterwards: enqueued while this sync ran.
    pub pending: u64,
    /// The saved cursor afterwards.
    pub cursor: u64,
}

/// An entry that a pull passed over because it cannot be read, with what it takes to find it: the server keeps it,
/// and a pull from `seq - 1` returns it again.
///
/// ```
/// use synckit::{Undecryptable, UndecryptableReason};
/// let skipped = Undecryptable {
///     seq: 7,
///     change_id: uuid::Uuid::nil(),
///     device_id: uuid::Uuid::nil(),
///     created_at: time::OffsetDateTime::UNIX_EPOCH,
///     reason: UndecryptableReason::Malformed,
/// };
/// assert!(skipped.to_string().starts_with("entry 7 (change 00000000-"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undecryptable {
    /// Its sequence number in the user's stream.
    pub seq: u64,
    /// The change id it was pushed under.
    pub change_id: Uuid,
    /// The device the server says pushed it (as [`list_devices`](crate::SyncKitClient::list_devices) shows it).
    /// Only as trustworthy as the server: the device id is not part of what is encrypted.
    pub device_id: Uuid,
    /// When the server says it stored it.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    /// Why it cannot be read.
    pub reason: UndecryptableReason,
}

/// Why an entry cannot be read. Entries carry no format version of their own, so an entry of a format this SDK does
/// not know shows as [`UnsupportedChange`](Self::UnsupportedChange) when it decrypts.
///
/// ```
/// use synckit::UndecryptableReason;
/// assert_eq!(serde_json::to_string(&UndecryptableReason::AuthenticationFailed).unwrap(), r#""authentication_failed""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UndecryptableReason {
    /// Shorter than a nonce and a tag: not an encrypted entry at all.
    Malformed,
    /// The ciphertext does not authenticate under the user's key for this entry: it was altered, moved from another
    /// entry, user or app, or sealed under another key. The cipher cannot tell these apart, by design. Entries no
    /// device of the user wrote (a forgery by the server, or by anyone who can push to the stream) end here. If every
    /// entry reports this, suspect this device's key rather than the entries, and pull again from before them once
    /// the key is right.
    AuthenticationFailed,
    /// It decrypted, so it was sealed with the user's key, but not to a change this SDK can read: written by a newer
    /// SDK (a new kind of operation, say) or by a faulty device. A newer version of the app may read it.
    UnsupportedChange,
}

impl fmt::Display for UndecryptableReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "it is too short to be an encrypted entry",
            Self::AuthenticationFailed => {
                "it does not decrypt: altered, moved from another entry, or sealed under another key"
            }
            Self::UnsupportedChange => "it decrypts, but not to a change this version of the SDK can read",
        })
    }
}

impl fmt::Display for Undecryptable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "entry {} (change {}, from device {}) skipped: {}",
            self.seq, self.change_id, self.device_id, self.reason
        )
    }
}

/// Decrypts a page for `device_id`: its own entries are left out unread (the app has them), every other entry
/// becomes a change or an [`Undecryptable`], and the cursor is the server's, past all of them.
pub(crate) fn open(page: PullResponse, keys: &Keys, session: &Session, device_id: Uuid) -> PullPage {
    let others = page.entries.into_iter().filter(|e| e.device_id != device_id);
    let (changes, undecryptable) = open_entries(others, keys, session);
    let changes = changes.into_iter().map(|c| c.change).collect();
    PullPage { changes, undecryptable, cursor: page.cursor, has_more: page.has_more }
}

/// Decrypts every entry of a page, the syncing device's own included, for [`sync`](crate::SyncKitClient::sync).
pub(crate) fn open_all(page: PullResponse, keys: &Keys, session: &Session) -> SyncPage {
    let (changes, undecryptable) = open_entries(page.entries.into_iter(), keys, session);
    SyncPage { changes, undecryptable, cursor: page.cursor }
}

fn open_entries(
    entries: impl Iterator<Item = PulledEntry>,
    keys: &Keys,
    session: &Session,
) -> (Vec<SyncedChange>, Vec<Undecryptable>) {
    let mut changes = Vec::with_capacity(entries.size_hint().0);
    let mut undecryptable = Vec::new();
    // A superseded entry's payload was dropped by compaction: a later entry of the stream stands for it.
    for entry in entries.filter(|e| !e.superseded) {
        match open_entry(&entry, keys, session) {
            Ok(change) => changes.push(SyncedChange {
                seq: entry.seq,
                change_id: entry.change_id,
                device_id: entry.device_id,
                change,
            }),
            Err(reason) => {
                tracing::warn!(
                    seq = entry.seq,
                    change_id = %entry.change_id,
                    device_id = %entry.device_id,
                    %reason,
                    "skipping an entry that cannot be read"
                );
                undecryptable.push(Undecryptable {
                    seq: entry.seq,
                    change_id: entry.change_id,
                    device_id: entry.device_id,
                    created_at: entry.created_at,
                    reason,
                });
            }
        }
    }
    (changes, undecryptable)
}

fn open_entry(entry: &PulledEntry, keys: &Keys, session: &Session) -> Result<ChangeEntry, UndecryptableReason> {
    let plaintext = Zeroizing::new(keys.try_open_entry(
        entry.payload.as_bytes(),
        session.app_id,
        session.user_id,
        entry.change_id,
    )?);
    serde_json::from_slice(&plaintext).map_err(|_| UndecryptableReason::UnsupportedChange)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::OffsetDateTime;

    use super::*;
    use crate::crypto::SecretKey;

    fn session() -> Session {
        Session {
            token: String::new(),
            user_id: Uuid::now_v7(),
            app_id: Uuid::now_v7(),
            email: "a@example.com".into(),
            expires_at: OffsetDateTime::UNIX_EPOCH,
            device_id: None,
        }
    }

    fn entry(seq: u64, change_id: Uuid, device_id: Uuid, payload: Vec<u8>) -> PulledEntry {
        PulledEntry {
            seq,
            change_id,
            device_id,
            payload: payload.into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            superseded: false,
        }
    }

    #[test]
    fn each_unreadable_entry_is_reported_with_its_reason_and_the_rest_are_handed_over() {
        let (keys, session) = (Keys::derive(&SecretKey::generate()), session());
        let (me, other) = (Uuid::now_v7(), Uuid::now_v7());
        let seal = |plaintext: &[u8], change: Uuid| keys.seal_entry(plaintext, session.app_id, session.user_id, change);
        let good = ChangeEntry::insert("notes", "n1", json!({"title": "Hi"}));
        let ids: Vec<Uuid> = (0..6).map(|_| Uuid::now_v7()).collect();
        let moved = seal(&serde_json::to_vec(&good).unwrap(), Uuid::now_v7());
        let page = PullResponse {
            entries: vec![
                entry(11, ids[0], other, seal(&serde_json::to_vec(&good).unwrap(), ids[0])),
                entry(12, ids[1], other, vec![7; 39]),
                entry(13, ids[2], other, vec![7; 80]),
                entry(14, ids[3], other, moved),
                entry(15, ids[4], other, seal(br#"{"table":"notes","op":"merge"}"#, ids[4])),
                // The device's own entry is left out unread, even if it would not decrypt.
                entry(16, ids[5], me, vec![0; 3]),
            ],
            cursor: 16,
            has_more: true,
        };

        let opened = open(page, &keys, &session, me);

        assert_eq!(opened.changes, [good]);
        assert_eq!((opened.cursor, opened.has_more), (16, true));
        let reported: Vec<(u64, Uuid, Uuid, UndecryptableReason)> =
            opened.undecryptable.iter().map(|u| (u.seq, u.change_id, u.device_id, u.reason)).collect();
        assert_eq!(
            reported,
            [
                (12, ids[1], other, UndecryptableReason::Malformed),
                (13, ids[2], other, UndecryptableReason::AuthenticationFailed),
                (14, ids[3], other, UndecryptableReason::AuthenticationFailed),
                (15, ids[4], other, UndecryptableReason::UnsupportedChange),
            ]
        );
    }

    #[test]
    fn sync_pages_hold_every_readable_change_with_its_place_and_report_the_device_s_own_bad_entries() {
        let (keys, session) = (Keys::derive(&SecretKey::generate()), session());
        let (me, other) = (Uuid::now_v7(), Uuid::now_v7());
        let seal = |change: &ChangeEntry, id: Uuid| {
            keys.seal_entry(&serde_json::to_vec(change).unwrap(), session.app_id, session.user_id, id)
        };
        let (mine, theirs) = (ChangeEntry::delete("notes", "n1"), ChangeEntry::insert("notes", "n2", json!({})));
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let page = PullResponse {
            entries: vec![
                entry(3, ids[0], me, seal(&mine, ids[0])),
                entry(5, ids[1], other, seal(&theirs, ids[1])),
                // Pushed under this device's id but not sealed by it: reported like any other.
                entry(9, ids[2], me, vec![0; 3]),
            ],
            cursor: 9,
            has_more: false,
        };

        let opened = open_all(page, &keys, &session);

        let got: Vec<(u64, Uuid, Uuid, ChangeEntry)> =
            opened.changes.into_iter().map(|c| (c.seq, c.change_id, c.device_id, c.change)).collect();
        assert_eq!(got, [(3, ids[0], me, mine), (5, ids[1], other, theirs)]);
        let reported: Vec<(u64, UndecryptableReason)> =
            opened.undecryptable.iter().map(|u| (u.seq, u.reason)).collect();
        assert_eq!(reported, [(9, UndecryptableReason::Malformed)]);
        assert_eq!(opened.cursor, 9);
    }

    #[test]
    fn the_report_names_the_entry_and_round_trips_as_json() {
        let skipped = Undecryptable {
            seq: 42,
            change_id: Uuid::now_v7(),
            device_id: Uuid::now_v7(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            reason: UndecryptableReason::AuthenticationFailed,
        };
        let line = skipped.to_string();
        for part in ["entry 42", &skipped.change_id.to_string(), &skipped.device_id.to_string(), "does not decrypt"] {
            assert!(line.contains(part), "{line:?} lacks {part:?}");
        }
        let json = serde_json::to_value(&skipped).unwrap();
        assert_eq!(json["reason"], "authentication_failed");
        assert_eq!(serde_json::from_value::<Undecryptable>(json).unwrap(), skipped);
    }
}
