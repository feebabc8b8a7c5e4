//! Entry encryption throughput and the cost of key derivation.
//!
//! ```sh
//! cargo bench -p synckit --bench crypto
//! ```

use std::hint::black_box;
use std::time::Duration;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use synckit::crypto::{KdfParams, Keys, SecretKey, derive_key, unwrap_master_key, wrap_master_key};
use uuid::Uuid;

fn entries(c: &mut Criterion) {
    let keys = Keys::derive(&SecretKey::generate());
    let (app, user, change) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    for size in [256usize, 4096] {
        let plaintext = vec![0x5a; size];
        let sealed = keys.seal_entry(&plaintext, app, user, change);
        let mut group = c.benchmark_group(format!("entry {size} B"));
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function("encrypt", |b| b.iter(|| keys.seal_entry(black_box(&plaintext), app, user, change)));
        // Entries sealed as the SDK seals a batch of changes: one sealer, its nonce drawn once, its subkey derived once
        // (the cost per entry of a large batch; a batch of one costs what `encrypt` does).
        let mut sealer = keys.entry_sealer(app, user);
        group.bench_function("encrypt in a batch", |b| b.iter(|| sealer.seal(black_box(&plaintext), change)));
        group.bench_function("decrypt", |b| b.iter(|| keys.open_entry(black_box(&sealed), app, user, change).unwrap()));
        // The reference: the same sealing (a 64-byte associated data, a fresh nonce) with RustCrypto's
        // chacha20poly1305, which the SDK used before, its nonce from the OS.
        let rustcrypto = chacha20poly1305::XChaCha20Poly1305::new(&[9; 32].into());
        let aad = [3u8; 64];
        group.bench_function("reference: RustCrypto encrypt", |b| {
            b.iter(|| {
                let nonce = synckit::crypto::random_bytes::<24>();
                rustcrypto.encrypt(&nonce.into(), Payload { msg: black_box(&plaintext), aad: &aad }).unwrap()
            })
        });
        group.finish();
    }
    // One nonce from the OS's random source, a system call, as `seal_entry` draws it.
    c.bench_function("nonce from the OS", |b| b.iter(synckit::crypto::random_bytes::<24>));
}

fn key_derivation(c: &mut Criterion) {
    let mut group = c.benchmark_group("argon2id 64 MiB, 3 iterations");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    group.bench_function("derive", |b| b.iter(|| derive_key(black_box("correct horse"), &[7; 32], KdfParams::DEFAULT)));
    // Unlocking a device: one Argon2id run (the wrapping key, labelled apart from the login key), the AEAD and the
    // key check. Should match `derive` within noise.
    let (app, user, master) = (Uuid::now_v7(), Uuid::now_v7(), SecretKey::generate());
    let envelope = wrap_master_key(&master, "correct horse", app, user).unwrap();
    group.bench_function("unwrap envelope", |b| {
        b.iter(|| unwrap_master_key(black_box(&envelope), "correct horse", app, user).unwrap())
    });
    group.finish();
}

criterion_group!(benches, entries, key_derivation);
criterion_main!(benches);
