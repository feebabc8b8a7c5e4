//! Key envelopes from `GET /api/sync/keys`, which a hostile server chooses: [`Envelope::parse`] as the SDK calls it,
//! then the rest of opening (a version 2 envelope) or confirming (version 1) after the key derivation.
//!
//! The derivation is Argon2id at 64 MiB, far too slow to run per input, so the wrapping key of the user's password
//! is derived for the first few salts seen (the seeds' among them) and remembered; other salts get a fixed key,
//! as a wrong password would.
//!
//! The same bytes are also opened as a recovery envelope (version 3, from `POST /api/accounts/recovery`), with the
//! user's recovery key.
//!
//! Checks: only envelopes of the exact length, version and KDF parameters parse; an envelope that opens is byte
//! for byte the sealing of the key it yields under its own header and nonce (nothing else an attacker could send
//! yields a key); a version 1 envelope never confirms another key than the one held; a recovery envelope that opens
//! is byte for byte the sealing of the key it yields under its own nonce, and one that does not is a crypto error.
#![no_main]

use std::collections::HashMap;
use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use synckit::ErrorKind;
use synckit::crypto::{Envelope, KdfParams, SecretKey, derive_key, open_recovery_envelope};
use synckit::fuzzing;
use synckit_fuzz::{APP, PASSWORD, USER, master_key, recovery_key};

/// Salts derived so far, per version (the two versions derive differently).
static DERIVED: Mutex<Option<HashMap<(u8, [u8; 32]), SecretKey>>> = Mutex::new(None);
const MAX_DERIVED: usize = 8;

fn derived(version: u8, salt: &[u8]) -> SecretKey {
    let salt: [u8; 32] = salt.try_into().expect("32 bytes");
    let mut derived = DERIVED.lock().expect("one thread");
    let derived = derived.get_or_insert_with(HashMap::new);
    if let Some(key) = derived.get(&(version, salt)) {
        return key.clone();
    }
    if derived.len() >= MAX_DERIVED {
        return SecretKey::from_bytes(&[0x17; 32]).expect("32 bytes");
    }
    let key = if version == 1 {
        derive_key(PASSWORD, &salt, KdfParams::DEFAULT)
    } else {
        fuzzing::wrapping_key(PASSWORD, &salt)
    }
    .expect("the pinned parameters derive");
    derived.insert((version, salt), key.clone());
    key
}

fuzz_target!(|data: &[u8]| {
    recovery_envelope(data);
    let Ok(envelope) = Envelope::parse(data) else { return };
    assert_eq!(envelope.version(), data[0]);
    assert_eq!(data.len(), if envelope.is_legacy() { 117 } else { 149 });
    let params: Vec<u32> = data[1..13].chunks(4).map(|b| u32::from_le_bytes(b.try_into().unwrap())).collect();
    let KdfParams { memory_kib, iterations, parallelism } = KdfParams::DEFAULT;
    assert_eq!(params, [memory_kib, iterations, parallelism], "an envelope with other KDF parameters parsed");

    let salt = &data[13..45];
    let key = derived(data[0], salt);
    if envelope.is_legacy() {
        match fuzzing::confirm_legacy_envelope(&envelope, &key, APP, USER, &master_key()) {
            Ok(()) => {}
            Err(e) => assert!(matches!(e.kind(), ErrorKind::WrongPassword | ErrorKind::Crypto), "{e}"),
        }
        return;
    }
    match fuzzing::open_envelope(&envelope, &key, APP, USER) {
        Ok(opened) => {
            let nonce: [u8; 24] = data[45..69].try_into().unwrap();
            let sealed = fuzzing::seal_envelope(&opened, &key, &data[..45], &nonce, APP, USER).unwrap();
            assert_eq!(sealed, data, "an envelope opened that is not the sealing of the key it yielded");
        }
        Err(e) => assert!(matches!(e.kind(), ErrorKind::WrongPassword | ErrorKind::Crypto), "{e}"),
    }
});

fn recovery_envelope(data: &[u8]) {
    let key = recovery_key();
    match open_recovery_envelope(data, &key, APP, USER) {
        Ok(opened) => {
            let nonce: [u8; 24] = data[1..25].try_into().unwrap();
            let sealed = fuzzing::seal_recovery_envelope(&opened, &key, &nonce, APP, USER);
            assert_eq!(sealed, data, "a recovery envelope opened that is not the sealing of the key it yielded");
        }
        Err(e) => assert_eq!(e.kind(), ErrorKind::Crypto, "{e}"),
    }
}
