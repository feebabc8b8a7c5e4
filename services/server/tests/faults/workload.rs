//! The clients of a fault scenario, the real SDK: writers that push (or upload a blob and push a change naming it)
//! in a loop, live-sync watchers, and a verifier that reads the whole stream back at the end. Then the counts.
//!
//! Each change's row id is unique (`w<writer>-<push>-<n>`), so the stream read back says how often each change is
//! stored. A change counts as *acknowledged* when the SDK call that pushed it returned `Ok`; a call that failed
//! after the SDK's own retries is counted as failed, and the writer goes on with new changes, as an app would that
//! keeps them for later.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use synckit::{BlobId, BlobSource, ChangeEntry, LiveOptions, SyncKitClient};

use crate::sdk_device::device;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

/// Writers, live-sync watchers and pulling devices per scenario.
const WRITERS: usize = 3;
const WATCHERS: usize = 2;
const PULLERS: usize = 1;
/// A pulling device's pause between rounds of pulls.
const PULL_EVERY: Duration = Duration::from_millis(50);
/// Changes per push.
const BATCH: usize = 4;
/// A writer's pause between pushes: keeps the counts bounded on a shared 2-core machine.
const PACE: Duration = Duration::from_millis(25);
/// How long watchers have, once the writers stop, to hold every stored change.
const CATCH_UP: Duration = Duration::from_secs(20);
/// Bytes per blob in the blob scenario.
const BLOB_BYTES: usize = 4096;

/// What each writer does in a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Push a batch of changes.
    Changes,
    /// Upload a blob, then push one change that names it.
    Blobs,
}

/// One user's devices, each a separate SDK client.
pub struct Fleet {
    writers: Vec<(SyncKitClient, Uuid)>,
    watchers: Vec<(SyncKitClient, Uuid)>,
    pullers: Vec<(SyncKitClient, Uuid)>,
    verifier: (SyncKitClient, Uuid),
    live: LiveOptions,
}

impl Fleet {
    /// Writers on `write_url`; live-sync watchers, pulling devices and the verifier on `read_url`. Live sync
    /// relies on events: its fallback poll is pushed past the scenario, so a watcher catches up only through the
    /// event stream (its hello after a reconnect, or a commit notice). A pulling device pulls on its own, all the
    /// time, the fault included.
    pub async fn new(write_url: &str, read_url: &str, api_key: &str, dir: &Path) -> Self {
        let email = synckit_testkit::email();
        let first = device(write_url, api_key, &email, true, "writer-0", dir).await;
        let mut writers = vec![first];
        for n in 1..WRITERS {
            writers.push(device(write_url, api_key, &email, false, &format!("writer-{n}"), dir).await);
        }
        let mut watchers = Vec::new();
        for n in 0..WATCHERS {
            watchers.push(device(read_url, api_key, &email, false, &format!("watcher-{n}"), dir).await);
        }
        let mut pullers = Vec::new();
        for n in 0..PULLERS {
            pullers.push(device(read_url, api_key, &email, false, &format!("puller-{n}"), dir).await);
        }
        let verifier = device(read_url, api_key, &email, false, "verifier", dir).await;
        let live =
            LiveOptions { poll_interval: Duration::from_secs(3600), max_reconnect_delay: Duration::from_secs(1) };
        Self { writers, watchers, pullers, verifier, live }
    }

    /// Starts every writer and reader.
    pub fn run(self, work: Work) -> Run {
        let (stop, stopped) = watch::channel(false);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let writers = self
            .writers
            .into_iter()
            .enumerate()
            .map(|(n, (client, device))| {
                tokio::spawn(write(n, client, device, work, stopped.clone(), in_flight.clone()))
            })
            .collect();
        let readers = self
            .watchers
            .into_iter()
            .map(|(client, device)| Reader::live(client, device, &self.live))
            .chain(self.pullers.into_iter().map(|(client, device)| Reader::pulling(client, device)))
            .collect();
        Run { work, stop, in_flight, writers, readers, verifier: self.verifier }
    }
}

/// What one writer did.
#[derive(Debug, Default)]
struct Written {
    pushes: u64,
    acknowledged_pushes: u64,
    acknowledged: Vec<String>,
    failed: Vec<String>,
    /// When the last acknowledged push began.
    last_acknowledged_start: Option<Instant>,
    /// The longest a push (or upload and push) took, retries included.
    slowest: Duration,
    /// The first few errors, for a failure message.
    errors: Vec<String>,
}

async fn write(
    n: usize,
    client: SyncKitClient,
    device: Uuid,
    work: Work,
    stop: watch::Receiver<bool>,
    in_flight: Arc<AtomicUsize>,
) -> Written {
    let mut written = Written::default();
    for push in 0u64.. {
        if *stop.borrow() {
            break;
        }
        let rows: Vec<String> = match work {
            Work::Changes => (0..BATCH).map(|i| format!("w{n}-{push}-{i}")).collect(),
            Work::Blobs => vec![format!("w{n}-{push}-0")],
        };
        let started = Instant::now();
        in_flight.fetch_add(1, Ordering::SeqCst);
        let result = match work {
            Work::Changes => {
                client.push(device, rows.iter().map(|row| ChangeEntry::insert("notes", row, json!({"n": push})))).await
            }
            Work::Blobs => match client.upload_blob(BlobSource::bytes(blob_bytes(&rows[0]))).await {
                Ok(blob) => {
                    let change = ChangeEntry::insert("photos", &rows[0], json!({"blob": blob.id.to_string()}));
                    client.push(device, [change]).await
                }
                Err(e) => Err(e),
            },
        };
        in_flight.fetch_sub(1, Ordering::SeqCst);
        written.pushes += 1;
        written.slowest = written.slowest.max(started.elapsed());
        match result {
            Ok(_) => {
                written.acknowledged_pushes += 1;
                written.acknowledged.extend(rows);
                written.last_acknowledged_start = Some(started);
            }
            Err(e) => {
                written.failed.extend(rows);
                if written.errors.len() < 3 {
                    written.errors.push(format!("{e:#}"));
                }
            }
        }
        tokio::time::sleep(PACE).await;
    }
    written
}

/// The content of the blob a row names: unique per row, so every upload is a new blob.
fn blob_bytes(row: &str) -> Vec<u8> {
    row.bytes().cycle().take(BLOB_BYTES).collect()
}

/// A device that reads the stream, recording every change it is handed: in live sync, or pulling on its own.
struct Reader {
    kind: &'static str,
    seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Seen {
    rows: Vec<String>,
    cursor: u64,
    unreadable: usize,
    pulls: u64,
    failed_pulls: u64,
    /// Live sync stopped: an error it could not get over.
    ended: Option<String>,
}

impl Reader {
    fn live(client: SyncKitClient, device: Uuid, options: &LiveOptions) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut live = client.live_with(device, 0, options.clone());
        let record = seen.clone();
        let task = tokio::spawn(async move {
            let _client = client;
            loop {
                let next = live.next().await;
                let mut seen = record.lock().unwrap();
                match next {
                    Some(Ok(page)) => {
                        seen.rows.extend(page.changes.into_iter().map(|c| c.row_id));
                        seen.unreadable += page.undecryptable.len();
                        seen.cursor = page.cursor;
                    }
                    Some(Err(e)) => {
                        seen.ended = Some(format!("{e:#}"));
                        return;
                    }
                    None => {
                        seen.ended = Some("live sync stopped".into());
                        return;
                    }
                }
            }
        });
        Self { kind: "watcher", seen, task }
    }

    /// Pulls from its cursor every [`PULL_EVERY`], page after page; a pull that fails (after the SDK's retries) is
    /// counted and tried again next round.
    fn pulling(client: SyncKitClient, device: Uuid) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let record = seen.clone();
        let task = tokio::spawn(async move {
            let mut cursor = 0;
            loop {
                let page = client.pull(device, cursor).await;
                let more = {
                    let mut seen = record.lock().unwrap();
                    seen.pulls += 1;
                    match page {
                        Ok(page) => {
                            seen.rows.extend(page.changes.into_iter().map(|c| c.row_id));
                            seen.unreadable += page.undecryptable.len();
                            (seen.cursor, cursor) = (page.cursor, page.cursor);
                            page.has_more
                        }
                        Err(_) => {
                            seen.failed_pulls += 1;
                            false
                        }
                    }
                };
                if !more {
                    tokio::time::sleep(PULL_EVERY).await;
                }
            }
        });
        Self { kind: "puller", seen, task }
    }
}

/// A scenario's clients at work.
pub struct Run {
    work: Work,
    stop: watch::Sender<bool>,
    in_flight: Arc<AtomicUsize>,
    writers: Vec<JoinHandle<Written>>,
    readers: Vec<Reader>,
    verifier: (SyncKitClient, Uuid),
}

/// A scenario's counts.
#[derive(Debug)]
pub struct Outcome {
    pub pushes: u64,
    pub acknowledged: u64,
    /// Changes in acknowledged pushes.
    pub changes: usize,
    pub failed: u64,
    /// Changes of failed pushes that were stored anyway (the failure was the answer's, not the push's).
    pub stored_unacknowledged: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub unrecovered: usize,
    /// The longest a push took, retries included: how long the fault held a client up.
    pub slowest_push: Duration,
    /// Pulls by the pulling devices, and how many of them failed after the SDK's retries.
    pub pulls: u64,
    pub failed_pulls: u64,
    /// Why each count is not zero, for the failure message.
    pub problems: Vec<String>,
}

impl Run {
    /// How many pushes (or uploads) are under way right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Waits (up to 5 s) until a push is under way, and says whether one is.
    pub async fn until_in_flight(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.in_flight() == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.in_flight() > 0
    }

    /// Stops the writers, reads the stream back, gives the watchers time to catch up, and counts. `recovered_at` is
    /// when the fault ended: every writer must have had a push acknowledged that began after it.
    pub async fn finish(self, recovered_at: Instant) -> Outcome {
        self.stop.send(true).unwrap();
        let mut written = Vec::new();
        for writer in self.writers {
            written.push(tokio::time::timeout(Duration::from_secs(30), writer).await.expect("a writer stops").unwrap());
        }
        let mut problems = Vec::new();
        let (reader, device) = &self.verifier;

        // The stream as a new device reads it.
        let mut stored: Vec<ChangeEntry> = Vec::new();
        let mut cursor = 0;
        loop {
            let page = reader.pull(*device, cursor).await.expect("the verifier pulls");
            if !page.undecryptable.is_empty() {
                problems.push(format!("{} stored entries do not decrypt", page.undecryptable.len()));
            }
            stored.extend(page.changes);
            cursor = page.cursor;
            if !page.has_more {
                break;
            }
        }
        let status = reader.status().await.expect("the verifier reads the status");
        if status.change_count != stored.len() as u64 || status.cursor != cursor {
            problems.push(format!(
                "status says {} changes up to {}, a pull read {} up to {cursor}",
                status.change_count,
                status.cursor,
                stored.len()
            ));
        }
        let mut count: HashMap<&str, usize> = HashMap::new();
        for change in &stored {
            *count.entry(change.row_id.as_str()).or_default() += 1;
        }

        let acknowledged: Vec<&String> = written.iter().flat_map(|w| &w.acknowledged).collect();
        let lost_rows: Vec<&&String> = acknowledged.iter().filter(|row| !count.contains_key(row.as_str())).collect();
        let mut lost = lost_rows.len();
        if lost > 0 {
            problems.push(format!("acknowledged but not stored: {:?}", &lost_rows[..lost.min(5)]));
        }
        let mut duplicated: usize = count.values().map(|n| n - 1).sum();
        if duplicated > 0 {
            let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).take(5).collect();
            problems.push(format!("stored more than once: {twice:?}"));
        }
        let stored_unacknowledged =
            written.iter().flat_map(|w| &w.failed).filter(|row| count.contains_key(row.as_str())).count();

        // Blobs: every acknowledged one downloads, byte for byte, on another device.
        if self.work == Work::Blobs {
            let acknowledged: HashSet<&str> = acknowledged.iter().map(|r| r.as_str()).collect();
            for change in stored.iter().filter(|c| acknowledged.contains(c.row_id.as_str())) {
                let id: BlobId = change.data.as_ref().and_then(|d| d["blob"].as_str()).unwrap().parse().unwrap();
                match reader.download_blob_bytes(&id).await {
                    Ok(bytes) if bytes == blob_bytes(&change.row_id) => {}
                    Ok(_) => {
                        lost += 1;
                        problems.push(format!("the blob of {} downloads with other bytes", change.row_id));
                    }
                    Err(e) => {
                        lost += 1;
                        problems.push(format!("the blob of {} does not download: {e:#}", change.row_id));
                    }
                }
            }
        }

        // Writers: each got going again after the fault, by itself.
        let mut unrecovered = 0;
        for (n, w) in written.iter().enumerate() {
            if w.last_acknowledged_start.is_none_or(|t| t < recovered_at) {
                unrecovered += 1;
                problems.push(format!("writer {n} had no push acknowledged after the fault: {:?}", w.errors));
            }
        }
        // Readers: each holds every stored change, once, without anyone's help.
        let everything: HashSet<&str> = count.keys().copied().collect();
        let deadline = Instant::now() + CATCH_UP;
        let (mut pulls, mut failed_pulls) = (0, 0);
        for (n, reader) in self.readers.iter().enumerate() {
            let kind = reader.kind;
            loop {
                let caught_up = {
                    let seen = reader.seen.lock().unwrap();
                    seen.cursor >= cursor
                        && everything.is_subset(&seen.rows.iter().map(String::as_str).collect::<HashSet<_>>())
                };
                if caught_up || Instant::now() >= deadline || reader.seen.lock().unwrap().ended.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let seen = reader.seen.lock().unwrap();
            let held: HashSet<&str> = seen.rows.iter().map(String::as_str).collect();
            let missing = everything.difference(&held).count();
            if missing > 0 || seen.cursor < cursor {
                unrecovered += 1;
                problems.push(format!(
                    "{kind} {n} is at {} of {cursor}, missing {missing} changes{}",
                    seen.cursor,
                    seen.ended.as_ref().map(|e| format!(" (live sync ended: {e})")).unwrap_or_default()
                ));
            }
            let twice = seen.rows.len() - held.len();
            if twice > 0 {
                duplicated += twice;
                problems.push(format!("{kind} {n} was handed {twice} changes twice"));
            }
            if seen.unreadable > 0 {
                problems.push(format!("{kind} {n} could not read {} entries", seen.unreadable));
            }
            pulls += seen.pulls;
            failed_pulls += seen.failed_pulls;
        }
        for reader in &self.readers {
            reader.task.abort();
        }

        let pushes = written.iter().map(|w| w.pushes).sum();
        let acknowledged_pushes = written.iter().map(|w| w.acknowledged_pushes).sum();
        Outcome {
            pushes,
            acknowledged: acknowledged_pushes,
            changes: acknowledged.len(),
            failed: pushes - acknowledged_pushes,
            stored_unacknowledged,
            lost,
            duplicated,
            unrecovered,
            slowest_push: written.iter().map(|w| w.slowest).max().unwrap_or_default(),
            pulls,
            failed_pulls,
            problems,
        }
    }
}

impl Outcome {
    /// Prints the scenario's line and fails the test if anything was lost, duplicated or left behind. `detail`
    /// says what the fault was.
    pub fn report(&self, name: &str, detail: &str, took: Duration) {
        println!(
            "fault {name}: pushes={} acknowledged={} lost={} duplicated={} unrecovered={} (changes={} failed={} \
             stored_unacknowledged={} slowest_push={:.1}s pulls={} failed_pulls={} {detail}; {:.1}s)",
            self.pushes,
            self.acknowledged,
            self.lost,
            self.duplicated,
            self.unrecovered,
            self.changes,
            self.failed,
            self.stored_unacknowledged,
            self.slowest_push.as_secs_f64(),
            self.pulls,
            self.failed_pulls,
            took.as_secs_f64()
        );
        assert!(self.acknowledged > 0, "fault {name}: nothing was acknowledged at all");
        assert!(
            self.lost == 0 && self.duplicated == 0 && self.unrecovered == 0 && self.problems.is_empty(),
            "fault {name}: {:#?}",
            self.problems
        );
    }
}
