//! A terminal notes app on SyncKit: the whole integration pattern in one file.
//!
//! Each copy keeps its notes in its own SQLite table, in a profile directory. It signs in on its first start and
//! restores its session and key on the next (from the OS keychain, or from files in the profile where there is
//! none). Every edit goes into the SDK's outbox, which works offline; live sync pushes the outbox and says when
//! other devices pushed; `sync` hands over every change in stream order, which this app applies so that the last
//! writer in sequence order wins.
//!
//! ```sh
//! export SYNCKIT_API_KEY=sk_… NOTES_EMAIL=ada@example.com NOTES_PASSWORD='a long passphrase'
//! cargo run -p synckit-notes -- ~/.notes/laptop      # and in another terminal, ~/.notes/phone
//! ```
//!
//! Commands, one per line: `add TEXT`, `edit ID TEXT`, `rm ID`, `list`, `sync`, `quit`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OptionalExtension, params};
use synckit::keystore::{FileKeyStore, KeyStore, default_key_store};
use synckit::{ChangeEntry, ErrorCode, ErrorKind, LiveOptions, Session, SyncKitClient, SyncKitConfig, SyncPage};
use tokio::io::{AsyncBufReadExt, BufReader};
use uuid::Uuid;

/// The saved session, in the profile directory.
const SESSION: &str = "session.json";

#[tokio::main]
async fn main() -> Result<()> {
    let profile = PathBuf::from(std::env::args().nth(1).context("usage: synckit-notes PROFILE_DIR")?);
    create_private_dir(&profile)?;
    let server = std::env::var("SYNCKIT_SERVER").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let api_key = std::env::var("SYNCKIT_API_KEY").context("set SYNCKIT_API_KEY to the app's API key")?;
    // The OS keychain where there is one; NOTES_KEYS=files keeps the key in the profile instead.
    let keys: Arc<dyn KeyStore> = match std::env::var("NOTES_KEYS").as_deref() {
        Ok("files") => Arc::new(FileKeyStore::new(profile.join("keys"))),
        _ => default_key_store(&profile.join("keys")),
    };
    let client = SyncKitClient::new(SyncKitConfig::new(server, api_key).data_dir(&profile).key_store(keys));
    let device = start(&client, &profile).await?;
    let mut notes = Notes::open(&profile.join("notes.db"))?;

    eprintln!("{}", sync(&client, device, &mut notes).await);
    // Live sync pulls for itself; this app takes each page only as the signal to sync, so that every change, live
    // or not, goes through the one `apply` below.
    let options = LiveOptions { max_reconnect_delay: Duration::from_secs(2), ..Default::default() };
    let mut live = client.live_with(device, client.load_cursor(device)?, options);
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(line) if line.trim() == "quit" => return Ok(()),
                Some(line) => {
                    if let Err(e) = command(&client, device, &mut notes, line.trim()).await {
                        println!("error: {e:#}");
                    }
                }
                None => return Ok(()),
            },
            page = live.next() => match page {
                Some(Ok(_)) => eprintln!("{}", sync(&client, device, &mut notes).await),
                Some(Err(e)) if e.kind() == ErrorKind::Unauthorized => {
                    std::fs::remove_file(profile.join(SESSION))?;
                    bail!("the session ended ({e}): start again to sign in");
                }
                Some(Err(e)) => bail!("live sync stopped: {e}"),
                None => return Ok(()),
            },
        }
    }
}

/// Restores the saved session and the cached key, or signs in (creating the account on first use) and registers
/// this profile as a device. Returns the device's id.
async fn start(client: &SyncKitClient, profile: &Path) -> Result<Uuid> {
    let saved = profile.join(SESSION);
    if let Ok(json) = std::fs::read(&saved) {
        let session: Session = serde_json::from_slice(&json).context("the saved session is damaged")?;
        let device = session.device_id.context("the saved session has no device")?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        if session.expires_at.unix_timestamp() > now as i64 {
            client.restore_session(session);
            if client.try_load_key_from_keychain().await.is_ok() {
                return Ok(device);
            }
        }
    }
    let email = std::env::var("NOTES_EMAIL").context("first start: set NOTES_EMAIL and NOTES_PASSWORD")?;
    let password = std::env::var("NOTES_PASSWORD").context("first start: set NOTES_PASSWORD")?;
    match client.register(&email, &password).await {
        Err(e) if e.code() != Some(ErrorCode::EmailTaken) => return Err(e.into()),
        _ => {}
    }
    client.authenticate(&email, &password).await?;
    if client.try_load_key_from_keychain().await.is_ok() {
        // This device has the key cached already.
    } else if client.has_server_key().await? {
        client.setup_encryption_existing(&password).await?;
    } else {
        client.setup_encryption_new(&password).await?;
    }
    let name = profile.file_name().map_or("notes".into(), |n| n.to_string_lossy().into_owned());
    let device = client.register_device(&name, std::env::consts::OS).await?;
    let session = client.session().context("signed in")?;
    synckit::fs::write_atomic(&saved, &serde_json::to_vec(&session)?)?;
    Ok(device.id)
}

async fn command(client: &SyncKitClient, device: Uuid, notes: &mut Notes, line: &str) -> Result<()> {
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    let (id, text) = rest.split_once(' ').unwrap_or((rest, ""));
    match verb {
        "add" if rest.is_empty() => bail!("add what? add TEXT"),
        "add" => {
            let id = Uuid::new_v4().simple().to_string()[..16].to_owned();
            edit(client, notes, ChangeEntry::insert("notes", &id, serde_json::json!({ "text": rest }))).await?;
            println!("added {id}");
        }
        "edit" | "rm" if !notes.exists(id)? => bail!("no note {id:?}"),
        "edit" => {
            edit(client, notes, ChangeEntry::upsert("notes", id, serde_json::json!({ "text": text }))).await?;
            println!("edited {id}");
        }
        "rm" => {
            edit(client, notes, ChangeEntry::delete("notes", id)).await?;
            println!("removed {id}");
        }
        "list" => {
            let all = notes.list()?;
            for (id, text) in &all {
                println!("{id}  {text}");
            }
            println!("{} notes", all.len());
        }
        "sync" => println!("{}", sync(client, device, notes).await),
        "" => {}
        _ => bail!("unknown command {verb:?}: add TEXT, edit ID TEXT, rm ID, list, sync, quit"),
    }
    Ok(())
}

/// A local edit: into the outbox (encrypted, on disk, online or not), then into the table, marked as this
/// device's edit that the server has not handed back yet.
async fn edit(client: &SyncKitClient, notes: &mut Notes, change: ChangeEntry) -> Result<()> {
    let change_id = client.enqueue([change.clone()]).await?[0];
    notes.edit(&change, change_id)
}

/// Pushes the outbox and applies everything new; says what happened. Offline, the edits wait in the outbox.
async fn sync(client: &SyncKitClient, device: Uuid, notes: &mut Notes) -> String {
    match client.sync(device, |page| Ok(notes.apply(page)?)).await {
        Ok(report) => {
            for skipped in &report.undecryptable {
                eprintln!("{skipped}");
            }
            // Everything sent came back (or was reported unreadable): no edit of this device is on its way.
            if report.pending == 0
                && let Err(e) = notes.settle()
            {
                return format!("synced, but the notes could not be updated: {e}");
            }
            format!("synced: pushed {}, pulled {}", report.pushed, report.pulled)
        }
        Err(e) if e.is_retryable() => {
            let waiting = client.pending().await.unwrap_or_default();
            format!("offline ({e}): {waiting} edits wait in the outbox")
        }
        Err(e) => format!("sync failed: {e}"),
    }
}

/// The app's own store: one table of notes.
struct Notes(Connection);

impl Notes {
    fn open(path: &Path) -> Result<Self> {
        let db = Connection::open(path)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS notes (
                 id TEXT PRIMARY KEY,
                 text TEXT,                       -- NULL: removed here, and the server does not know yet
                 seq INTEGER NOT NULL DEFAULT 0,  -- where the version shown stands in the stream
                 pending TEXT                     -- the change id of this device's edit not yet handed back
             );",
        )?;
        Ok(Self(db))
    }

    fn exists(&self, id: &str) -> Result<bool> {
        let q = "SELECT 1 FROM notes WHERE id = ?1 AND text IS NOT NULL";
        Ok(self.0.query_row(q, [id], |_| Ok(())).optional()?.is_some())
    }

    fn list(&self) -> Result<Vec<(String, String)>> {
        let mut q = self.0.prepare("SELECT id, text FROM notes WHERE text IS NOT NULL ORDER BY id")?;
        let rows = q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn edit(&mut self, change: &ChangeEntry, change_id: Uuid) -> Result<()> {
        self.0.execute(
            "INSERT INTO notes (id, text, pending) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET text = ?2, pending = ?3",
            params![change.row_id, text(change), change_id.to_string()],
        )?;
        Ok(())
    }

    /// One page, in one transaction, in stream order. The later change to a note wins: every change pulled so far
    /// is earlier than an edit of this device still on its way, so a note with such an edit keeps it until the
    /// edit itself comes back; otherwise the change replaces the note, unless the note is already at a later
    /// place (a page handed over again after a crash).
    fn apply(&mut self, page: SyncPage) -> rusqlite::Result<()> {
        let tx = self.0.transaction()?;
        for synced in page.changes {
            let id = &synced.change.row_id;
            let seq = i64::try_from(synced.seq).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
            let pending: Option<String> =
                tx.query_row("SELECT pending FROM notes WHERE id = ?1", [id], |r| r.get(0)).optional()?.flatten();
            match pending {
                Some(mine) if mine == synced.change_id.to_string() => {
                    tx.execute("UPDATE notes SET pending = NULL, seq = ?2 WHERE id = ?1", params![id, seq])?;
                    tx.execute("DELETE FROM notes WHERE id = ?1 AND text IS NULL", [id])?;
                }
                Some(_) => {}
                None => {
                    match text(&synced.change) {
                        Some(text) => tx.execute(
                            "INSERT INTO notes (id, text, seq) VALUES (?1, ?2, ?3)
                             ON CONFLICT (id) DO UPDATE SET text = ?2, seq = ?3 WHERE seq < ?3",
                            params![id, text, seq],
                        )?,
                        None => tx.execute("DELETE FROM notes WHERE id = ?1 AND seq < ?2", params![id, seq])?,
                    };
                }
            }
        }
        tx.commit()
    }

    /// Once nothing of this device is on its way, no note waits for its own change: the markers left are of
    /// changes that will not come back readable, and the notes removed here are gone.
    fn settle(&mut self) -> rusqlite::Result<()> {
        self.0.execute_batch("UPDATE notes SET pending = NULL; DELETE FROM notes WHERE text IS NULL;")
    }
}

/// A note's text after `change`; `None` once removed.
fn text(change: &ChangeEntry) -> Option<String> {
    let data = change.data.as_ref()?;
    Some(data.get("text").and_then(|t| t.as_str()).unwrap_or_default().to_owned())
}

/// The profile holds the notes in clear: only its owner may read it.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use synckit::SyncedChange;

    use super::*;

    fn note(id: &str, text: &str) -> ChangeEntry {
        ChangeEntry::upsert("notes", id, serde_json::json!({ "text": text }))
    }

    fn page(changes: Vec<SyncedChange>) -> SyncPage {
        let cursor = changes.last().map_or(0, |c| c.seq);
        SyncPage::new(changes, Vec::new(), cursor)
    }

    fn shown(notes: &Notes) -> Vec<(String, String)> {
        notes.list().unwrap()
    }

    fn one(id: &str, text: &str) -> Vec<(String, String)> {
        vec![(id.to_owned(), text.to_owned())]
    }

    #[test]
    fn an_unsent_edit_outlives_earlier_changes_until_it_comes_back_then_later_ones_win() {
        let mut notes = Notes::open(Path::new(":memory:")).unwrap();
        let (me, other, mine) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        notes.edit(&note("n1", "mine"), mine).unwrap();

        // Another device's edit, pushed while this one was offline: earlier in the stream than this one's.
        notes.apply(page(vec![SyncedChange::new(4, Uuid::now_v7(), other, note("n1", "theirs, earlier"))])).unwrap();
        assert_eq!(shown(&notes), one("n1", "mine"));
        let back = SyncedChange::new(5, mine, me, note("n1", "mine"));
        let later = SyncedChange::new(6, Uuid::now_v7(), other, note("n1", "theirs, later"));
        notes.apply(page(vec![back, later])).unwrap();
        assert_eq!(shown(&notes), one("n1", "theirs, later"));
    }

    #[test]
    fn a_page_handed_over_again_changes_nothing_and_an_unmarked_own_change_is_applied() {
        let mut notes = Notes::open(Path::new(":memory:")).unwrap();
        let (me, other) = (Uuid::now_v7(), Uuid::now_v7());
        // The app enqueued this one and crashed before it marked the note: it comes back like any other change.
        let crashed = SyncedChange::new(3, Uuid::now_v7(), me, note("n1", "written before a crash"));
        let removed = SyncedChange::new(4, Uuid::now_v7(), other, ChangeEntry::delete("notes", "n2"));
        notes.apply(page(vec![SyncedChange::new(2, Uuid::now_v7(), other, note("n2", "gone soon"))])).unwrap();
        let again = page(vec![crashed, removed]);
        notes.apply(again.clone()).unwrap();
        assert_eq!(shown(&notes), one("n1", "written before a crash"));
        notes.apply(again).unwrap();
        assert_eq!(shown(&notes), one("n1", "written before a crash"));
    }

    #[test]
    fn settling_releases_notes_whose_own_change_will_not_come_back() {
        let mut notes = Notes::open(Path::new(":memory:")).unwrap();
        let other = Uuid::now_v7();
        // Both changes came back unreadable, say: nothing will ever clear their markers but settling.
        notes.edit(&note("n1", "mine"), Uuid::now_v7()).unwrap();
        notes.edit(&note("n2", "doomed"), Uuid::now_v7()).unwrap();
        notes.edit(&ChangeEntry::delete("notes", "n2"), Uuid::now_v7()).unwrap();
        notes.settle().unwrap();
        assert_eq!(shown(&notes), one("n1", "mine"));
        notes.apply(page(vec![SyncedChange::new(9, Uuid::now_v7(), other, note("n1", "theirs"))])).unwrap();
        assert_eq!(shown(&notes), one("n1", "theirs"));
    }
}
