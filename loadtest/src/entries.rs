//! Changes as the SDK makes them: a [`ChangeEntry`] serialised to JSON and sealed whole under the account's entry key,
//! bound to its (app, user, change id); and pulled pages opened the same way, so that a payload the server altered,
//! moved or truncated fails the run.

use serde_json::json;
use synckit::ChangeEntry;
use synckit_protocol::sync::{PulledEntry, PushEntry};
use uuid::Uuid;

use crate::api::{Failure, failure};
use crate::device::Account;

/// `count` new changes whose serialised plaintext is `plaintext_bytes` long (or as short as an entry gets), sealed.
pub(crate) fn seal(account: &Account, count: usize, plaintext_bytes: usize) -> Vec<PushEntry> {
    let mut sealer = account.keys.entry_sealer(account.app_id, account.user_id);
    (0..count)
        .map(|_| {
            let change_id = Uuid::now_v7();
            let plaintext = change(change_id, plaintext_bytes);
            let payload = sealer.seal(&plaintext, change_id);
            PushEntry { change_id, payload: payload.into() }
        })
        .collect()
}

/// A note whose body pads the serialised entry to `plaintext_bytes`.
fn change(row: Uuid, plaintext_bytes: usize) -> Vec<u8> {
    let mut entry = ChangeEntry::insert("notes", row.to_string(), json!({"body": ""}));
    let bare = serde_json::to_vec(&entry).expect("an entry serialises").len();
    entry.data = Some(json!({"body": "x".repeat(plaintext_bytes.saturating_sub(bare))}));
    serde_json::to_vec(&entry).expect("an entry serialises")
}

/// Opens every entry of a pulled page and reads it back as a [`ChangeEntry`]; returns how many it opened.
pub(crate) fn open(account: &Account, entries: &[PulledEntry]) -> Result<usize, Failure> {
    let mut opened = 0;
    for entry in entries.iter().filter(|e| !e.superseded) {
        let plaintext = account
            .keys
            .open_entry(entry.payload.as_bytes(), account.app_id, account.user_id, entry.change_id)
            .map_err(|e| failure(format!("pulled entry {} does not decrypt: {e}", entry.seq)))?;
        serde_json::from_slice::<ChangeEntry>(&plaintext)
            .map_err(|e| failure(format!("pulled entry {} is no change: {e}", entry.seq)))?;
        opened += 1;
    }
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use synckit::crypto::{Keys, SecretKey};

    use super::*;

    #[test]
    fn sealed_changes_have_the_size_asked_for_and_open_again() {
        let account = Account::for_tests(Keys::derive(&SecretKey::generate()));
        let sealed = seal(&account, 3, 1024);
        assert!(sealed.iter().all(|e| e.payload.as_bytes().len() == 1024 + synckit::crypto::ENTRY_OVERHEAD));
        let pulled: Vec<PulledEntry> = sealed
            .into_iter()
            .enumerate()
            .map(|(i, e)| PulledEntry {
                seq: i as u64 + 1,
                change_id: e.change_id,
                device_id: Uuid::nil(),
                payload: e.payload,
                created_at: time::OffsetDateTime::UNIX_EPOCH,
                superseded: false,
            })
            .collect();
        assert_eq!(open(&account, &pulled).unwrap(), 3);
        let mut moved = pulled.clone();
        moved[0].change_id = pulled[1].change_id;
        assert!(open(&account, &moved).is_err(), "a payload moved to another change id must not open");
    }
}
