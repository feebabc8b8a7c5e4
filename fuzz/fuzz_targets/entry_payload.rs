//! Entry payloads from `POST /api/sync/pull`, which a hostile server or a faulty device chooses: the SDK's framing
//! (nonce ‖ ciphertext ‖ tag) opened by `Keys::try_open_entry`, and the page a pull makes of the entry.
//!
//! Checks: a payload that opens is byte for byte the sealing of what it opened to, under its own nonce, for this
//! (app, user, change); the page reports the entry exactly once, as a change only if it opened to a change entry
//! and otherwise as undecryptable with the reason the opening gave, and its cursor still moves past it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synckit::fuzzing;
use synckit::{ChangeEntry, UndecryptableReason};
use synckit_fuzz::{APP, CHANGE, DEVICE, OTHER_DEVICE, USER, keys};
use synckit_protocol::sync::PulledEntry;
use time::OffsetDateTime;

fuzz_target!(|payload: &[u8]| {
    let opened = keys().try_open_entry(payload, APP, USER, CHANGE);
    if let Ok(plaintext) = &opened {
        let nonce: [u8; 24] = payload[..24].try_into().expect("an opened payload holds a nonce");
        let sealed = fuzzing::seal_entry(keys(), plaintext, &nonce, APP, USER, CHANGE);
        assert_eq!(sealed, payload, "a payload opened that is not the sealing of its plaintext");
    }

    let entry = PulledEntry {
        seq: 7,
        change_id: CHANGE,
        device_id: OTHER_DEVICE,
        payload: payload.into(),
        created_at: OffsetDateTime::UNIX_EPOCH,
        superseded: false,
    };
    let page = fuzzing::open_page(keys(), APP, USER, DEVICE, vec![entry]);
    assert_eq!(page.cursor, 7);
    match opened {
        Err(reason) => {
            assert!(page.changes.is_empty());
            assert_eq!(page.undecryptable.len(), 1);
            assert_eq!(page.undecryptable[0].reason, reason);
        }
        Ok(plaintext) => match serde_json::from_slice::<ChangeEntry>(&plaintext) {
            Ok(change) => {
                assert_eq!(page.changes, [change]);
                assert!(page.undecryptable.is_empty());
            }
            Err(_) => {
                assert!(page.changes.is_empty());
                assert_eq!(page.undecryptable.len(), 1);
                assert_eq!(page.undecryptable[0].reason, UndecryptableReason::UnsupportedChange);
            }
        },
    }
});
