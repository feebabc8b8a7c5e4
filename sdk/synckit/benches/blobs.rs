//! A large file through the SDK: upload and download throughput, and the SDK process's peak memory.
//!
//! ```text
//! cargo bench -p synckit --bench blobs -- [--store garage|local] [--mib 500]
//! ```
//!
//! The server runs in a second process (this same binary, started with `SYNCKIT_BENCH_SERVE` set), so the peak
//! resident memory read here (`VmHWM`) is the SDK's alone. The peak is reset after set-up, which derives keys with
//! Argon2id's 64 MiB, and again between the upload and the download. With `--store garage` (the default) blobs go
//! to the test Garage that `ops/ensure-garage` starts; with `--store local`, to the server's own directory.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use synckit::keystore::MemoryKeyStore;
use synckit::{BlobOptions, BlobSource, SyncKitClient, SyncKitConfig};
use synckit_testkit::{Engine, TestServer, engine};

const PASSWORD: &str = "bench password";
const MIB: u64 = 1024 * 1024;

fn main() {
    if std::env::var_os("SYNCKIT_BENCH_SERVE").is_some() {
        return serve();
    }
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let store = flag("--store").unwrap_or_else(|| "garage".to_owned());
    let mib: u64 = flag("--mib").map_or(500, |m| m.parse().expect("--mib takes a number"));
    assert!(store == "garage" || store == "local", "--store is garage or local");

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(bench(&store, mib));
}

/// The child process: a server on the embedded default, with blobs in Garage unless told otherwise. Prints its URL
/// and API key, then serves until stdin closes (the parent exited).
fn serve() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let garage = std::env::var("SYNCKIT_BENCH_SERVE").unwrap() == "garage";
        let server = TestServer::start(Engine { garage, ..engine::embedded() }).await;
        println!("{} {}", server.url, server.api_key);
        tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await.unwrap().unwrap();
    });
}

async fn bench(store: &str, mib: u64) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("SYNCKIT_BENCH_SERVE", store)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let (url, api_key) = line.trim().split_once(' ').expect("the server prints its URL and API key");

    let dir = tempfile::tempdir().unwrap();
    let (original, copy) = (dir.path().join("original"), dir.path().join("copy"));
    write_file(&original, mib);

    // Two devices of one account.
    let email = format!("{}@example.com", uuid::Uuid::new_v4());
    let client = || {
        let config =
            SyncKitConfig::new(url, api_key).key_store(Arc::new(MemoryKeyStore::default())).data_dir(dir.path());
        SyncKitClient::new(config)
    };
    let (uploader, downloader) = (client(), client());
    uploader.register(&email, PASSWORD).await.unwrap();
    uploader.authenticate(&email, PASSWORD).await.unwrap();
    uploader.setup_encryption_new(PASSWORD).await.unwrap();
    uploader.register_device("uploader", "linux").await.unwrap();
    downloader.authenticate(&email, PASSWORD).await.unwrap();
    downloader.setup_encryption_existing(PASSWORD).await.unwrap();
    downloader.register_device("downloader", "linux").await.unwrap();

    println!("{mib} MiB through the SDK, blobs in {store}:");
    reset_peak_memory();
    // The steps of `upload_blob`, timed apart: two passes over the file for the id and the checksum, then the
    // transfer, which seals the file again as it streams.
    let start = Instant::now();
    let blob = uploader.prepare_blob(BlobSource::file(&original)).await.unwrap();
    let prepared = start.elapsed();
    let target = uploader.blob_upload_url(&blob).await.unwrap();
    assert!(!target.already_exists);
    uploader.blob_upload(&blob, &target, BlobOptions::default()).await.unwrap();
    uploader.blob_confirm(&blob).await.unwrap();
    report("upload", mib, start);
    println!("            of which {:.2} s to compute the id and the checksum", prepared.as_secs_f64());

    // The upload left the disk with writes to flush, which the download's own fsync would wait for.
    Command::new("sync").status().expect("sync runs");
    reset_peak_memory();
    let start = Instant::now();
    downloader.download_blob(&blob.id(), &copy).await.unwrap();
    report("download", mib, start);

    assert_eq!(sha256_of(&original), sha256_of(&copy), "the download is the file");
    drop(child.stdin.take());
    child.wait().unwrap();
}

fn report(what: &str, mib: u64, start: Instant) {
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "  {what:8}  {seconds:6.2} s  {:7.1} MiB/s  peak RSS {:5.1} MiB (now {:5.1} MiB)",
        mib as f64 / seconds,
        memory_kib("VmHWM:") as f64 / 1024.0,
        memory_kib("VmRSS:") as f64 / 1024.0,
    );
}

/// A file of `mib` MiB of pseudo-random bytes, written 1 MiB at a time.
fn write_file(path: &Path, mib: u64) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut chunk = vec![0u8; MIB as usize];
    for _ in 0..mib {
        for word in chunk.chunks_exact_mut(8) {
            // xorshift64: cheap, and nothing the encryption could make smaller.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        file.write_all(&chunk).unwrap();
    }
    file.into_inner().unwrap().sync_all().unwrap();
}

fn sha256_of(path: &Path) -> [u8; 32] {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path).unwrap(), &mut hasher).unwrap();
    hasher.finalize().into()
}

/// Resets this process's peak resident set size (Linux: `5` in `/proc/self/clear_refs`).
fn reset_peak_memory() {
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak RSS (Linux only)");
}

/// A `Vm…:` line of `/proc/self/status`, in KiB.
fn memory_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).expect("the field is in /proc/self/status");
    line[field.len()..].trim().trim_end_matches(" kB").parse().unwrap()
}
