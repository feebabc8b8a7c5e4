//! The deployment as it runs in production, on this machine: `ops/cluster up` starts 2 ingest, 2 query, 1 blob
//! and 1 auth process on Postgres, NATS and Garage, behind the generated Caddy gateway, and the SDK uses it through
//! the gateway alone. Then one query and one ingest process are killed (SIGKILL, by PID) while devices push and
//! watch in live sync: the watchers carry on through the other query process, the pushes through the other ingest
//! process, and nothing acknowledged is lost or stored twice.
//!
//! Every process of the cluster takes itself down after `SYNCKIT_CLUSTER_LIFETIME_SECS` whatever happens to the
//! test, and a guard runs `ops/cluster down` at the end, on a panic too. Loopback only.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use synckit::{BlobId, BlobSource, ChangeEntry, LiveOptions, SyncKitClient};
use tokio::time::{Instant, sleep};
use uuid::Uuid;

#[path = "../common/sdk_device.rs"]
mod sdk_device;

/// How long any process of the cluster may live: well past this test's minute.
const LIFETIME_SECS: u32 = 240;
/// Changes per push, and the pause between a writer's pushes.
const BATCH: usize = 3;
const PACE: Duration = Duration::from_millis(40);

fn ops_cluster() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ops/cluster")
}

/// A cluster `ops/cluster up` started in a directory of the test's own; `ops/cluster down` when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    info: Value,
}

impl Cluster {
    fn command(dir: &Path, action: &str) -> Command {
        let mut cmd = Command::new(ops_cluster());
        cmd.arg(action)
            .env("SYNCKIT_CLUSTER_DIR", dir)
            .env("SYNCKIT_SERVER_BIN", env!("CARGO_BIN_EXE_synckit-server"))
            .env("SYNCKIT_CLUSTER_LIFETIME_SECS", LIFETIME_SECS.to_string())
            .stdin(Stdio::null());
        cmd
    }

    fn up() -> Self {
        let dir = tempfile::Builder::new().prefix("synckit-cluster-").tempdir().unwrap();
        // Its stderr to a file, not a pipe: nothing a script starts can then hold this test's pipe open.
        let stderr = dir.path().join("up.stderr");
        let out = Self::command(dir.path(), "up")
            .stderr(std::fs::File::create(&stderr).unwrap())
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        if !out.status.success() {
            let stderr = std::fs::read_to_string(&stderr).unwrap_or_default();
            panic!("ops/cluster up failed ({}):\n{stderr}", out.status);
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let info: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("ops/cluster up printed more than one JSON object ({e}):\n{stdout}"));
        Self { dir, info }
    }

    fn gateway(&self) -> &str {
        self.info["gateway"].as_str().unwrap()
    }

    fn api_key(&self) -> &str {
        self.info["api_key"].as_str().unwrap()
    }

    fn process(&self, name: &str) -> &Value {
        let processes = self.info["processes"].as_array().unwrap();
        processes.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no {name} in {}", self.info))
    }

    /// SIGKILL to one process, by its PID: no goodbye to anyone.
    fn kill(&self, name: &str) {
        let pid = self.process(name)["pid"].as_u64().unwrap();
        let status = Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
        assert!(status.success(), "{name} (pid {pid}) was not running");
    }

    /// The last lines of a process's log that are not routine: warnings and errors.
    fn log(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| ["WARN", "ERROR", "\"level\":\"error\"", "\"level\":\"warn\""].iter().any(|w| l.contains(w)))
            .collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn status(&self) -> (Option<i32>, String) {
        let out = Self::command(self.dir.path(), "status").output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn down(&self) -> std::process::Output {
        Self::command(self.dir.path(), "down").output().unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let out = self.down();
        if !out.status.success() {
            eprintln!("ops/cluster down failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// A device of `email` on the gateway (see [`sdk_device::device`]).
async fn device(cluster: &Cluster, email: &str, name: &str, first: bool, dir: &Path) -> (SyncKitClient, Uuid) {
    sdk_device::device(cluster.gateway(), cluster.api_key(), email, first, name, dir).await
}

/// What a live-sync device has been handed.
#[derive(Default)]
struct Seen {
    rows: Vec<String>,
    ended: Option<String>,
}

fn watch(client: SyncKitClient, device: Uuid) -> (Arc<Mutex<Seen>>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    // No fallback polling within the test: a watcher learns of changes through the event stream alone.
    let options = LiveOptions { poll_interval: Duration::from_secs(3600), max_reconnect_delay: Duration::from_secs(1) };
    let mut live = client.live_with(device, 0, options);
    let record = seen.clone();
    let task = tokio::spawn(async move {
        let _client = client;
        loop {
            let next = live.next().await;
            let mut seen = record.lock().unwrap();
            match next {
                Some(Ok(page)) => seen.rows.extend(page.changes.into_iter().map(|c| c.row_id)),
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
    (seen, task)
}

/// Waits until `seen` holds `row`, for up to `within`.
async fn until_seen(seen: &Mutex<Seen>, row: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if seen.lock().unwrap().rows.iter().any(|r| r == row) {
            return true;
        }
        sleep(Duration::from_millis(50)).await;
    }
    false
}

/// What a writer did: rows of acknowledged pushes, with when each push began, and rows of failed ones.
#[derive(Default)]
struct Written {
    acknowledged: Vec<(String, Instant)>,
    failed: Vec<String>,
    errors: Vec<String>,
    /// Each push: when it began, how long it took, whether it was acknowledged.
    pushes: Vec<(Instant, Duration, bool)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_serves_through_its_gateway_and_survives_killed_instances() {
    let began = std::time::Instant::now();
    let cluster = Cluster::up();
    for name in ["auth-1", "ingest-1", "ingest-2", "query-1", "query-2", "blob-1", "gateway"] {
        let process = cluster.process(name);
        assert!(process["pid"].as_u64().is_some() && process["url"].as_str().is_some(), "{process}");
    }
    let (code, table) = cluster.status();
    assert_eq!(code, Some(0), "every process alive and ready:\n{table}");

    // A second `up` on a running cluster is refused, and leaves it running.
    let again = Cluster::command(cluster.dir.path(), "up").output().unwrap();
    assert!(!again.status.success(), "a second up must be refused");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already up"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(again.stdout.is_empty(), "nothing on stdout when refused");

    let http = reqwest::Client::new();
    let health = http.get(format!("{}/healthz", cluster.gateway())).send().await.unwrap();
    assert_eq!(health.status(), 200);

    // Sign up on one device, unlock on others, all through the gateway.
    let devices = tempfile::tempdir().unwrap();
    let email = format!("cluster-{}@example.com", Uuid::new_v4().simple());
    let (writer, writer_id) = device(&cluster, &email, "writer", true, devices.path()).await;
    let (verifier, verifier_id) = device(&cluster, &email, "verifier", false, devices.path()).await;
    // Two watchers in live sync: the gateway deals event streams to the two query processes in turn, so whichever
    // is killed held one of them.
    let mut watchers = Vec::new();
    for n in 0..2 {
        let (client, id) = device(&cluster, &email, &format!("watcher-{n}"), false, devices.path()).await;
        watchers.push(watch(client, id));
    }

    // A push on one device is seen live on the others.
    writer.push(writer_id, [ChangeEntry::insert("notes", "hello", json!({"text": "hi"}))]).await.unwrap();
    for (n, (seen, _)) in watchers.iter().enumerate() {
        assert!(until_seen(seen, "hello", Duration::from_secs(15)).await, "watcher {n} did not see the push live");
    }

    // A blob up on one device and down on another (its bytes go to the object store on signed URLs).
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let blob = writer.upload_blob(BlobSource::bytes(bytes.clone())).await.unwrap();
    writer
        .push(writer_id, [ChangeEntry::insert("photos", "photo", json!({"blob": blob.id.to_string()}))])
        .await
        .unwrap();
    let page = verifier.pull(verifier_id, 0).await.unwrap();
    let photo = page.changes.iter().find(|c| c.row_id == "photo").expect("the change naming the blob");
    let id: BlobId = photo.data.as_ref().unwrap()["blob"].as_str().unwrap().parse().unwrap();
    assert!(verifier.download_blob_bytes(&id).await.unwrap() == bytes, "the blob comes back byte for byte");

    // Pushes in a loop while one query process, then one ingest process, is killed.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let writing = tokio::spawn(async move {
        let mut written = Written::default();
        for push in 0u64.. {
            if *stopped.borrow() {
                break;
            }
            let rows: Vec<String> = (0..BATCH).map(|i| format!("p{push}-{i}")).collect();
            let started = Instant::now();
            let changes = rows.iter().map(|row| ChangeEntry::insert("notes", row, json!({"n": push})));
            let result = writer.push(writer_id, changes).await;
            written.pushes.push((started, started.elapsed(), result.is_ok()));
            match result {
                Ok(_) => written.acknowledged.extend(rows.into_iter().map(|r| (r, started))),
                Err(e) => {
                    written.failed.extend(rows);
                    if written.errors.len() < 3 {
                        written.errors.push(format!("{e:#}"));
                    }
                }
            }
            sleep(PACE).await;
        }
        written
    });

    sleep(Duration::from_secs(2)).await;
    let query_killed = Instant::now();
    cluster.kill("query-1");
    sleep(Duration::from_secs(4)).await;
    let ingest_killed = Instant::now();
    cluster.kill("ingest-1");
    sleep(Duration::from_secs(5)).await;
    stop.send(true).unwrap();
    let written = tokio::time::timeout(Duration::from_secs(30), writing).await.expect("the writer stops").unwrap();

    // The killed processes show in the status; the others are still alive and ready.
    let (code, table) = cluster.status();
    assert_eq!(code, Some(1), "{table}");
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let killed = ["query-1", "ingest-1"].contains(&fields[0]);
        assert_eq!(fields[4] == "yes", !killed, "alive: {line}");
    }

    // Pushes went on after each kill.
    let timeline = || {
        let pushes = written.pushes.iter().map(|(started, took, ok)| {
            let at = started.saturating_duration_since(query_killed).as_secs_f64();
            format!("{at:+.2}s:{:.2}s{}", took.as_secs_f64(), if *ok { "" } else { "!" })
        });
        let slow: Vec<String> = pushes.filter(|p| !p.contains(":0.")).collect();
        format!(
            "pushes slower than 1 s, by start after query-1 was killed (ingest-1 at +{:.1}s): {slow:?}; errors: \
             {:?}\ngateway log:\n{}\ningest-2 log:\n{}",
            ingest_killed.duration_since(query_killed).as_secs_f64(),
            written.errors,
            cluster.log("gateway"),
            cluster.log("ingest-2"),
        )
    };
    let after = |t: Instant| written.acknowledged.iter().filter(|(_, started)| *started > t).count();
    assert!(after(query_killed) > 0, "no push acknowledged after query-1 was killed: {}", timeline());
    let after_ingest_kill = after(ingest_killed + Duration::from_secs(1));
    assert!(after_ingest_kill > 0, "no push acknowledged after ingest-1 was killed: {}", timeline());

    // The stream as a device reads it from the start: every acknowledged change once, nothing twice.
    let mut stored: Vec<String> = Vec::new();
    let mut cursor = 0;
    loop {
        let page = verifier.pull(verifier_id, cursor).await.expect("the verifier pulls");
        assert!(page.undecryptable.is_empty(), "{} entries do not decrypt", page.undecryptable.len());
        stored.extend(page.changes.into_iter().map(|c| c.row_id));
        cursor = page.cursor;
        if !page.has_more {
            break;
        }
    }
    let mut count: HashMap<&str, usize> = HashMap::new();
    for row in &stored {
        *count.entry(row.as_str()).or_default() += 1;
    }
    let lost: Vec<&str> =
        written.acknowledged.iter().map(|(r, _)| r.as_str()).filter(|r| !count.contains_key(r)).collect();
    let duplicated: Vec<(&&str, &usize)> = count.iter().filter(|(_, n)| **n > 1).collect();

    // The watchers hold every stored change, once, through the event stream alone.
    let everything: HashSet<&str> = count.keys().copied().collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut behind = Vec::new();
    for (n, (seen, _)) in watchers.iter().enumerate() {
        loop {
            let (held, ended) = {
                let seen = seen.lock().unwrap();
                (seen.rows.iter().cloned().collect::<HashSet<String>>(), seen.ended.clone())
            };
            let missing = everything.iter().filter(|r| !held.contains(**r)).count();
            if missing == 0 {
                break;
            }
            if Instant::now() >= deadline || ended.is_some() {
                behind.push(format!("watcher {n} misses {missing} changes (ended: {ended:?})"));
                break;
            }
            sleep(Duration::from_millis(100)).await;
        }
        let seen = seen.lock().unwrap();
        let once: HashSet<&String> = seen.rows.iter().collect();
        assert_eq!(once.len(), seen.rows.len(), "watcher {n} was handed changes twice");
    }

    let acknowledged = written.acknowledged.len() / BATCH;
    let slowest = written.pushes.iter().map(|(_, took, _)| *took).max().unwrap_or_default();
    println!(
        "cluster: pushes acknowledged={acknowledged} failed={} lost={} duplicated={} watchers_behind={} \
         slowest_push={:.1}s ({:.1}s)",
        written.failed.len() / BATCH,
        lost.len(),
        duplicated.len(),
        behind.len(),
        slowest.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
    if !(lost.is_empty() && duplicated.is_empty() && behind.is_empty()) {
        for name in ["gateway", "query-1", "query-2", "ingest-1", "ingest-2"] {
            eprintln!("{name} log:\n{}", cluster.log(name));
        }
    }
    assert!(lost.is_empty(), "acknowledged but not stored: {:?}", &lost[..lost.len().min(5)]);
    assert!(duplicated.is_empty(), "stored more than once: {duplicated:?}");
    assert!(behind.is_empty(), "{behind:?}");
    // A kill costs a push one refused attempt and a retry after `Retry-After: 1`, not a wait for a timeout.
    assert!(slowest < Duration::from_secs(5), "a push took {slowest:?}: {}", timeline());
    for (_, task) in &watchers {
        task.abort();
    }

    // Down stops every process it started, and only those.
    let pids: Vec<u64> =
        cluster.info["processes"].as_array().unwrap().iter().map(|p| p["pid"].as_u64().unwrap()).collect();
    let out = cluster.down();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for pid in pids {
        assert!(!Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid), "pid {pid} still runs after down");
    }
    assert_eq!(cluster.status().0, Some(3), "no cluster after down");
}

/// A process that exited but was not reaped yet (its parent is gone or slow): it runs nothing.
fn is_zombie(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')))
}
