//! Crash safety of the outbox: a child process enqueues in a loop and reports each call's change ids once it
//! returned; the test kills it (SIGKILL) at random moments, again and again, on one outbox file. A fresh client then
//! syncs: every change a call returned for is on the server exactly once, each call's changes arrived whole or not
//! at all, in the order enqueued, and nothing was pushed twice.
//!
//! The child is this test binary itself, started on the ignored test `child_enqueues_until_killed` with the
//! environment telling it where to enqueue; run alone, that test does nothing useful, so it is ignored.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use synckit::keystore::MemoryKeyStore;
use synckit::{ChangeEntry, Session, SyncKitClient, SyncKitConfig};
use synckit_testkit::{TestServer, email, on_each_engine};

use crate::live::device;

on_each_engine!(every_returned_enqueue_survives_kills_and_arrives_once);

const CHILD_ENV: &str = "SYNCKIT_TEST_OUTBOX_CHILD";
const KILLS: usize = 6;
/// The child stops by itself after this many calls, should the parent be gone without killing it.
const MAX_CALLS: usize = 20_000;

/// How many changes the child's call number `call` enqueues: known to both sides, so the test can tell a call's
/// changes apart from the next call's.
fn call_size(call: usize) -> usize {
    1 + call % 7
}

/// What the child needs, passed through its environment as JSON.
#[derive(serde::Serialize, serde::Deserialize)]
struct ChildArgs {
    url: String,
    api_key: String,
    data_dir: std::path::PathBuf,
    session: Session,
    device: uuid::Uuid,
    /// Which child this is, written into each change.
    run: usize,
}

fn app(url: &str, api_key: &str, data_dir: &std::path::Path) -> SyncKitClient {
    SyncKitClient::new(
        SyncKitConfig::new(url, api_key).key_store(Arc::new(MemoryKeyStore::default())).data_dir(data_dir),
    )
}

#[test]
#[ignore = "the child process of every_returned_enqueue_survives_kills_and_arrives_once, started by it"]
fn child_enqueues_until_killed() {
    let Ok(args) = std::env::var(CHILD_ENV) else { return };
    let args: ChildArgs = serde_json::from_str(&args).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let client = app(&args.url, &args.api_key, &args.data_dir);
        client.restore_session(args.session);
        client.setup_encryption_existing("pw").await.unwrap();
        let mut stdout = std::io::stdout();
        writeln!(stdout, "ready").unwrap();
        stdout.flush().unwrap();
        let mut i = 0;
        for call in 0..MAX_CALLS {
            let changes: Vec<ChangeEntry> = (i..i + call_size(call))
                .map(|i| ChangeEntry::insert("crash", format!("{}-{i}", args.run), json!({"run": args.run, "i": i})))
                .collect();
            i += changes.len();
            let ids = client.enqueue(changes).await.unwrap();
            let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
            // A closed pipe (the parent is gone) ends the child here.
            writeln!(stdout, "ids {}", ids.join(",")).unwrap();
            stdout.flush().unwrap();
        }
    });
}

/// A random number below `n`.
fn below(n: u64) -> u64 {
    u64::from_le_bytes(synckit::crypto::random_bytes()) % n
}

async fn every_returned_enqueue_survives_kills_and_arrives_once(server: TestServer) {
    let email = email();
    let (laptop, laptop_id) = device(&server, &email, true, "laptop").await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut reported: Vec<uuid::Uuid> = Vec::new();

    for run in 0..KILLS {
        let args = ChildArgs {
            url: server.url.clone(),
            api_key: server.api_key.clone(),
            data_dir: data_dir.path().to_owned(),
            session: laptop.session().unwrap(),
            device: laptop_id,
            run,
        };
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "outbox_crash::child_enqueues_until_killed", "--ignored", "--nocapture"])
            .env(CHILD_ENV, serde_json::to_string(&args).unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Lines are read on a thread of their own, so this runtime keeps serving the child's requests.
        let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        // Kill it after a random number of returned calls, at a random moment of the call in flight.
        let calls_before_kill = 1 + below(60);
        let mut seen = 0;
        while seen < calls_before_kill {
            let line = tokio::time::timeout(Duration::from_secs(60), lines.recv())
                .await
                .expect("the child keeps enqueueing")
                .expect("the child is running");
            if let Some(ids) = line.strip_prefix("ids ") {
                reported.extend(ids.split(',').map(|id| id.parse::<uuid::Uuid>().unwrap()));
                seen += 1;
            }
        }
        tokio::time::sleep(Duration::from_micros(below(3000))).await;
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        while let Ok(line) = lines.try_recv() {
            if let Some(ids) = line.strip_prefix("ids ") {
                reported.extend(ids.split(',').map(|id| id.parse::<uuid::Uuid>().unwrap()));
            }
        }
    }
    // `reported` holds the ids of every call the child saw return: those read before the kill and those still in
    // the pipe.
    assert!(!reported.is_empty());

    let fresh = app(&server.url, &server.api_key, data_dir.path());
    fresh.restore_session(laptop.session().unwrap());
    fresh.setup_encryption_existing("pw").await.unwrap();
    let report = fresh.sync(laptop_id, |_| Ok(())).await.unwrap();
    assert_eq!(report.pending, 0);

    let stored = server.pull_all(&laptop.session().unwrap().token, 0).await;
    let stored_ids: Vec<uuid::Uuid> = stored.iter().map(|(_, id, _)| *id).collect();
    let distinct: HashSet<uuid::Uuid> = stored_ids.iter().copied().collect();
    assert_eq!(distinct.len(), stored_ids.len(), "no change id is stored twice");
    for id in &reported {
        assert!(distinct.contains(id), "change {id}, whose enqueue returned, is on the server");
    }
    assert_eq!(report.pushed as usize, stored_ids.len(), "what was pushed is what the server holds");
    assert_eq!(laptop.status().await.unwrap().change_count as usize, stored_ids.len());

    // Read as another device: per child, changes 0..n exactly once, in order, n at the end of a whole call.
    let (phone, phone_id) = device(&server, &email, false, "phone").await;
    let mut runs: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    phone
        .sync(phone_id, |page| {
            for synced in page.changes {
                let data = synced.change.data.unwrap();
                runs.entry(data["run"].as_u64().unwrap()).or_default().push(data["i"].as_u64().unwrap());
            }
            Ok(())
        })
        .await
        .unwrap();
    let mut boundaries = HashSet::from([0u64]);
    let mut end = 0;
    for call in 0..MAX_CALLS {
        end += call_size(call) as u64;
        boundaries.insert(end);
    }
    for (run, got) in &runs {
        let n = got.len() as u64;
        assert_eq!(*got, (0..n).collect::<Vec<_>>(), "child {run}: every change once, in order");
        assert!(boundaries.contains(&n), "child {run}: its last call arrived whole ({n} changes)");
    }
    assert_eq!(runs.values().map(Vec::len).sum::<usize>(), stored_ids.len());
}
