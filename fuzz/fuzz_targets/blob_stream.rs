//! Encrypted blob streams as a download delivers them: a body from the store, cut into pieces anyhow by the
//! network, under the length the server declared. Opened as the SDK's download opens it (the same cutting into
//! chunks, the same chunk opener and memory sink).
//!
//! Input: `flags ‖ [declared length, u64 LE, unless flags say "the body's own length"] ‖ cuts ‖ body` (see
//! `synckit_fuzz::split` for the cuts).
//!
//! Checks: a hostile stream fails with a crypto error, never a panic, and allocates within a bound whatever length
//! the server declares (the run's malloc limit catches a reservation sized by it); however the
//! body is cut, the outcome is the same; a stream that opens is byte for byte the sealing of what it opened to
//! (no truncation, reordering or tampering gets through).
#![no_main]

use libfuzzer_sys::fuzz_target;
use synckit::ErrorKind;
use synckit::crypto::blob::BlobSealer;
use synckit::fuzzing;
use synckit_fuzz::{blob_id, keys, pieces, split};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let (declared, rest) = if flags & 1 == 0 {
        (None, rest)
    } else {
        let Some((length, rest)) = rest.split_first_chunk::<8>() else { return };
        (Some(u64::from_le_bytes(*length)), rest)
    };
    let (at, body) = split(rest);
    let sealed_size = declared.unwrap_or(body.len() as u64);

    let whole = fuzzing::open_blob(keys(), blob_id(), sealed_size, [body]);
    let cut = fuzzing::open_blob(keys(), blob_id(), sealed_size, pieces(body, &at));
    match (&whole, &cut) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => {
            assert_eq!(a.kind(), ErrorKind::Crypto, "{a}");
            assert_eq!(b.kind(), ErrorKind::Crypto, "{b}");
        }
        _ => panic!("cutting the body differently changed the outcome: {whole:?} / {cut:?}"),
    }
    if let Ok(plain) = whole {
        let sealed = BlobSealer::new(keys(), &blob_id(), plain.len() as u64).seal_all(&plain).unwrap();
        assert_eq!(sealed, body, "a stream opened that is not the sealing of its plaintext");
    }
});
