//! The SDK as a sync engine: how fast changes go into the outbox, and how fast a new device catches up.
//!
//! ```sh
//! cargo bench -p synckit --bench outbox
//! ```
//!
//! - **enqueue**: 1000 changes of 256 B (serialised) per `enqueue` call into the default SQLite outbox (WAL,
//!   `synchronous=FULL`: one fsync per call), beside the same calls into the in-memory outbox and the bare sealing
//!   of the 1000 changes, measured in the same run.
//! - **sync**: a new device's `sync` over a history of 100,000 changes of 1 KiB (pushed once, in set-up), with the
//!   default file cursor store (one atomic, synced write per page), beside a plain loop of `pull` and
//!   `save_cursor` over the same history and the bare decryption of as many entries on one thread.
//!
//! The server runs in a second process (this same binary, started with `SYNCKIT_BENCH_SERVE` set) on the embedded
//! default (SQLite), on loopback. Sample sizes are small so the whole run takes about two minutes.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use serde_json::json;
use synckit::crypto::{Keys, SecretKey};
use synckit::keystore::MemoryKeyStore;
use synckit::outbox::MemoryOutboxStore;
use synckit::{ChangeEntry, SyncKitClient, SyncKitConfig};
use synckit_testkit::{TestServer, engine};
use uuid::Uuid;

const PASSWORD: &str = "bench password";
const HISTORY: usize = 100_000;

fn main() {
    if std::env::var_os("SYNCKIT_BENCH_SERVE").is_some() {
        return serve();
    }
    let mut criterion = Criterion::default().configure_from_args();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let server = Server::start();
    enqueue(&mut criterion, &runtime, &server);
    sync(&mut criterion, &runtime, &server);
    criterion.final_summary();
}

/// The child process: a server on the embedded default. Prints its URL and API key, then serves until stdin closes.
fn serve() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let server = TestServer::start(engine::embedded()).await;
        println!("{} {}", server.url, server.api_key);
        tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await.unwrap().unwrap();
    });
}

struct Server {
    child: Child,
    url: String,
    api_key: String,
    dir: tempfile::TempDir,
    email: String,
}

impl Server {
    fn start() -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("SYNCKIT_BENCH_SERVE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let (url, api_key) = line.trim().split_once(' ').expect("the server prints its URL and API key");
        let email = format!("{}@example.com", Uuid::new_v4());
        Self { url: url.into(), api_key: api_key.into(), child, dir: tempfile::tempdir().unwrap(), email }
    }

    /// A signed-in, unlocked device of the bench's user, with its files in a directory of its own.
    async fn device(
        &self,
        name: &str,
        first: bool,
        adjust: impl FnOnce(SyncKitConfig) -> SyncKitConfig,
    ) -> (SyncKitClient, Uuid) {
        let config = SyncKitConfig::new(&self.url, &self.api_key)
            .key_store(Arc::new(MemoryKeyStore::default()))
            .data_dir(self.dir.path().join(name));
        let client = SyncKitClient::new(adjust(config));
        if first {
            client.register(&self.email, PASSWORD).await.unwrap();
        }
        client.authenticate(&self.email, PASSWORD).await.unwrap();
        if first {
            client.setup_encryption_new(PASSWORD).await.unwrap();
        } else {
            client.setup_encryption_existing(PASSWORD).await.unwrap();
        }
        let id = client.register_device(name, "linux").await.unwrap().id;
        (client, id)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// A change whose serialised form is `size` bytes.
fn change(i: usize, size: usize) -> ChangeEntry {
    let mut entry = ChangeEntry::insert("notes", format!("n{i:08}"), json!({"body": ""}));
    let base = serde_json::to_vec(&entry).unwrap().len();
    entry.data = Some(json!({"body": "x".repeat(size.saturating_sub(base))}));
    entry
}

fn enqueue(c: &mut Criterion, runtime: &tokio::runtime::Runtime, server: &Server) {
    let (sqlite, _) = runtime.block_on(server.device("enqueue-sqlite", true, |c| c));
    let (memory, _) = runtime
        .block_on(server.device("enqueue-memory", false, |c| c.outbox_store(Arc::new(MemoryOutboxStore::default()))));
    let changes: Vec<ChangeEntry> = (0..1000).map(|i| change(i, 256)).collect();
    assert_eq!(serde_json::to_vec(&changes[0]).unwrap().len(), 256);

    let mut group = c.benchmark_group("outbox enqueue, 1000 changes of 256 B per call");
    group.throughput(Throughput::Elements(1000)).sample_size(10).warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("SQLite outbox (fsync per call)", |b| {
        b.iter(|| runtime.block_on(sqlite.enqueue(changes.clone())).unwrap())
    });
    group.bench_function("memory outbox", |b| b.iter(|| runtime.block_on(memory.enqueue(changes.clone())).unwrap()));
    let (keys, id) = (Keys::derive(&SecretKey::generate()), Uuid::now_v7());
    group.bench_function("reference: serialise and seal only", |b| {
        b.iter(|| {
            let mut sealer = keys.entry_sealer(id, id);
            for change in &changes {
                let plaintext = serde_json::to_vec(change).unwrap();
                std::hint::black_box(sealer.seal(&plaintext, Uuid::now_v7()));
            }
        })
    });
    group.finish();
}

fn sync(c: &mut Criterion, runtime: &tokio::runtime::Runtime, server: &Server) {
    let (pusher, pusher_id) = runtime.block_on(server.device("history", false, |c| c));
    let started = Instant::now();
    let history: Vec<ChangeEntry> = (0..HISTORY).map(|i| change(i, 1024)).collect();
    runtime.block_on(pusher.push(pusher_id, history)).unwrap();
    eprintln!("set-up: {HISTORY} changes of 1 KiB pushed in {:.1} s", started.elapsed().as_secs_f64());
    let (reader, reader_id) = runtime.block_on(server.device("new-device", false, |c| c));

    let mut group = c.benchmark_group("new device over 100k changes of 1 KiB");
    group.throughput(Throughput::Elements(HISTORY as u64)).sample_size(10).sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(10));
    group.bench_function("sync", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                reader.save_cursor(reader_id, 0).unwrap();
                let started = Instant::now();
                let mut applied = 0usize;
                let report = runtime
                    .block_on(reader.sync(reader_id, |page| {
                        applied += page.changes.len();
                        Ok(())
                    }))
                    .unwrap();
                total += started.elapsed();
                assert_eq!((applied, report.pulled as usize), (HISTORY, HISTORY));
            }
            total
        })
    });
    group.bench_function("reference: pull and save_cursor, one page at a time", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let pulled = runtime.block_on(async {
                    let (mut cursor, mut pulled) = (0, 0);
                    loop {
                        let page = reader.pull(reader_id, cursor).await.unwrap();
                        pulled += page.changes.len();
                        cursor = page.cursor;
                        reader.save_cursor(reader_id, cursor).unwrap();
                        if !page.has_more {
                            return pulled;
                        }
                    }
                });
                total += started.elapsed();
                assert_eq!(pulled, HISTORY);
            }
            total
        })
    });
    let keys = Keys::derive(&SecretKey::generate());
    let id = Uuid::now_v7();
    let sealed = keys.seal_entry(&serde_json::to_vec(&change(0, 1024)).unwrap(), id, id, id);
    group.bench_function("reference: decrypt and parse only, one thread", |b| {
        b.iter(|| {
            for _ in 0..HISTORY {
                let plaintext = keys.open_entry(std::hint::black_box(&sealed), id, id, id).unwrap();
                std::hint::black_box(serde_json::from_slice::<ChangeEntry>(&plaintext).unwrap());
            }
        })
    });
    group.finish();
}
